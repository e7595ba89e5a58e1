"""The built-in synthetic videos: determinism, splits, labels that match the pixels,
smooth motion, per-video appearance, sources, the on-disk writer and the viz helpers."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from keypointgan.config import load_config
from keypointgan.data.base import DataError, LabelledSource, PoseSource, VideoSource
from keypointgan.data.synthetic import (ACTIVITIES, PART_NAMES, SynthParams, SyntheticWorld, synthetic_sources,
                                        write_synthetic_dataset)
from keypointgan.data.synthetic.raster import Parts, render_parts
from keypointgan.data.synthetic.scene import occlusion
from keypointgan.pose.coords import normalized_to_pixels
from keypointgan.pose.skeleton import get_skeleton, load_skeleton
from keypointgan.viz import draw_skeleton, make_grid

S = 32
T = 16
SMALL = SynthParams(num_videos=14, num_frames=T, seed=3)


@pytest.fixture(scope="module")
def world() -> SyntheticWorld:
    return SyntheticWorld(SMALL)


@pytest.fixture(scope="module")
def rendered(world):
    """Every video at 32 px: {vid: (uint8 frames (T,3,S,S), part ids (T,S,S))}."""
    return {v.vid: world.render(v.vid, range(T), S) for v in world.videos}


def test_same_seed_same_pixels_other_seed_other_pixels(world, rendered):
    again = SyntheticWorld(SMALL)
    img, ids = again.render(5, range(T), S)
    assert torch.equal(img, rendered[5][0]) and torch.equal(ids, rendered[5][1])
    assert np.array_equal(again.keypoints(5), world.keypoints(5))
    other = SyntheticWorld(SynthParams(num_videos=14, num_frames=T, seed=4))
    assert not torch.equal(other.render(5, [0], S)[0], rendered[5][0][:1])
    # a frame drawn alone or among others, with other videos, is the same frame
    mixed, _ = world.render_many([7, 5, 7], [3, 9, 0], S)
    assert torch.equal(mixed[1], rendered[5][0][9]) and torch.equal(mixed[2], rendered[7][0][0])


def test_splits_are_disjoint_by_video_and_content(world, rendered):
    ids = {s: set(world.ids(s)) for s in ("train", "prior", "test")}
    assert all(ids.values())
    assert not (ids["train"] & ids["prior"]) and not (ids["train"] & ids["test"]) and not (ids["prior"] & ids["test"])
    assert set.union(*ids.values()) == set(range(SMALL.num_videos))
    names = [v.name for v in world.videos]
    assert len(set(names)) == len(names)
    # content: no two videos share a pose sequence or a first frame
    kps = [world.keypoints(v).round(4).tobytes() for v in range(SMALL.num_videos)]
    assert len(set(kps)) == len(kps)
    firsts = [rendered[v][0][0].numpy().tobytes() for v in range(SMALL.num_videos)]
    assert len(set(firsts)) == len(firsts)


def test_split_fractions_and_activities_are_stratified():
    w = SyntheticWorld(SynthParams(num_videos=70, num_frames=2))
    for split, frac in zip(("train", "prior", "test"), (0.6, 0.2, 0.2)):
        vids = w.ids(split)
        assert abs(len(vids) - 70 * frac) <= 1
        assert {w.videos[v].category for v in vids} == set(ACTIVITIES)
    with pytest.raises(DataError):
        SynthParams(num_videos=2)
    with pytest.raises(DataError):
        SyntheticWorld(SynthParams(num_videos=3, split=(1.0, 0.0, 0.0)))


def test_keypoints_lie_in_the_image_on_the_figure(world, rendered):
    sk = world.skeleton
    on_figure = np.zeros(sk.num_keypoints)
    n = 0
    for v in range(SMALL.num_videos):
        kp = world.keypoints(v)
        assert kp.shape == (T, sk.num_keypoints, 2)
        assert np.abs(kp).max() < 0.98  # inside the image, with a margin
        px = np.clip(np.rint(normalized_to_pixels(kp, S)).astype(int), 0, S - 1)
        ids = rendered[v][1].numpy()
        front = ids[np.arange(T)[:, None], px[..., 1], px[..., 0]]
        on_figure += (front >= 0).sum(0)
        n += T
    frac = on_figure / n
    assert frac.min() > 0.9, dict(zip(sk.keypoint_names, frac.round(3)))
    assert frac[sk.index("r_wrist")] > 0.95 and frac[sk.index("l_wrist")] > 0.95


def test_figure_pixels_differ_from_the_background(world, rendered):
    """Where the figure is drawn the pixels change; elsewhere they are the background."""
    v = world.ids("test")[0]
    img, ids = rendered[v]
    bg = (world.background(v, S) * 255 + 0.5).to(torch.uint8)
    fig = ids >= 0
    near = torch.nn.functional.max_pool2d(fig[:, None].float(), 3, 1, 1)[:, 0] > 0  # + anti-aliased edge
    same = (img == bg[None]).all(1)
    assert same[~near].all()
    assert (~same[fig]).float().mean() > 0.8


def test_motion_is_smooth(world):
    steps, jumps = [], []
    for v in range(SMALL.num_videos):
        kp = world.keypoints(v)
        steps.append(np.linalg.norm(np.diff(kp, axis=0), axis=-1).mean())
        jumps.append(np.linalg.norm(kp - world.keypoints((v + 1) % SMALL.num_videos)[::-1], axis=-1).mean())
        assert np.linalg.norm(np.diff(kp, axis=0), axis=-1).max() < 0.15  # < 2.4 px at 32 px per frame
    assert np.mean(steps) < 0.15 * np.mean(jumps)
    # ... but it does move: poses change over a video
    spread = np.mean([world.keypoints(v).std(0).mean() for v in range(SMALL.num_videos)])
    assert spread > 0.01


def test_each_video_has_its_own_appearance(world, rendered):
    means = []
    for v in range(SMALL.num_videos):
        img, ids = rendered[v]
        fig = (ids >= 0)[:, None].expand_as(img)
        means.append(img[fig].view(-1).float().mean().item())
        # the background is the same in every frame of a video (static camera)
        bg = torch.nn.functional.max_pool2d((ids >= 0)[:, None].float(), 3, 1, 1).amax((0, 1)) == 0
        assert torch.equal(img[0][:, bg], img[-1][:, bg])
    assert np.std(means) > 5.0
    backgrounds = {(world.background(v, S) * 255).round().to(torch.uint8).numpy().tobytes()
                   for v in range(SMALL.num_videos)}
    assert len(backgrounds) == SMALL.num_videos


def test_the_image_is_not_its_skeleton(world):
    """The figure's area is several times that of its skeleton drawn with 1 px lines."""
    sk, size = world.skeleton, 64
    for v in world.ids("test"):
        px = normalized_to_pixels(world.keypoints(v), size)
        _, ids = world.render(v, [0, T // 2], size)
        for n, f in enumerate((0, T // 2)):
            links = sum(np.linalg.norm(px[f, i] - px[f, j]) for i, j in sk.edges)
            area = int((ids[n] >= 0).sum())
            assert area > 3 * links, (v, f, area, links)


def test_resolution_independent(world):
    v = world.ids("train")[0]
    big, _ = world.render(v, [4], 64)
    small, _ = world.render(v, [4], 32)
    down = torch.nn.functional.avg_pool2d(big.float(), 2)
    assert (down - small.float()).abs().mean() < 20  # same picture (edges, grain aside)


def test_sources_conform_and_agree(world, tmp_path):
    cfg = load_config("cpu", [f"data.synthetic_videos={SMALL.num_videos}", f"data.synthetic_frames={T}",
                              f"data.synthetic_seed={SMALL.seed}", f"data.cache_dir={tmp_path}"])
    src = synthetic_sources(cfg.data, S)
    assert isinstance(src.train, VideoSource) and isinstance(src.test, LabelledSource)
    assert isinstance(src.prior, PoseSource)
    assert src.train.image_size == S and src.test.image_size == S
    assert len(src.train) == len(world.ids("train")) and src.train.num_frames(0) == T
    x = src.train.frame(1, 7)
    assert x.shape == (3, S, S) and x.dtype == torch.float32 and -1 <= x.min() and x.max() <= 1
    assert torch.equal(src.train.frames([1, 0], [7, 2])[0], x)
    vid = world.ids("train")[1]
    assert torch.equal(((x + 1) * 127.5).round().to(torch.uint8), world.render(vid, [7], S)[0][0])
    assert src.train.video_name(1) == world.videos[vid].name
    with pytest.raises(IndexError):
        src.train.frame(0, T)
    # test items: image, normalised keypoints, labels
    stride = cfg.data.synthetic_test_stride
    assert len(src.test) == len(world.ids("test")) * len(range(0, T, stride))
    it = src.test.item(len(src.test) - 1)
    assert it["image"].shape == (3, S, S) and it["keypoints"].shape == (15, 2)
    assert it["visible"].all() and it["occluded"].dtype == torch.bool
    assert it["category"] in ACTIVITIES and it["video"].startswith(it["category"])
    assert torch.allclose(it["keypoints"], torch.from_numpy(world.keypoints(world.ids("test")[-1])[it["frame_index"]]).float())
    # prior: every frame of the prior videos, none of the train/test poses
    poses = src.prior.poses()
    assert poses.shape == (len(world.ids("prior")) * T, 15, 2) and len(src.prior) == poses.shape[0]
    assert src.prior.to_prior().subset(5).poses().shape == (5, 15, 2)
    # the cache: written once, read back identically by a new source (no pickle)
    files = list(tmp_path.glob("*.npz"))
    assert len(files) == 2
    again = synthetic_sources(cfg.data, S)
    assert torch.equal(again.train.frame(1, 7), x)
    np.load(files[0], allow_pickle=False)["frames"]
    # lazy storage draws the same frames
    lazy = synthetic_sources(SMALL, S, storage="lazy")
    assert lazy.train.store.storage == "lazy"
    assert torch.equal(lazy.train.frames([1, 3], [7, 0]), src.train.frames([1, 3], [7, 0]))


def test_writer_output_reads_back(tmp_path):
    params = SynthParams(num_videos=8, num_frames=6, seed=1, test_stride=2)
    out = tmp_path / "synth"
    summary = write_synthetic_dataset(out, params, image_size=S)
    world = SyntheticWorld(params)
    sk = get_skeleton("synth_humanoid")
    for v in world.ids("train"):
        files = sorted((out / "train" / world.videos[v].name).glob("*.png"))
        assert [f.name for f in files] == [f"{i:06d}.png" for i in range(6)]
        assert Image.open(files[0]).size == (S, S)
    assert summary["train_frames"] == 6 * len(world.ids("train"))
    for name, n_img in (("prior.json", 6 * len(world.ids("prior"))), ("test.json", 3 * len(world.ids("test")))):
        coco = json.loads((out / name).read_text())
        assert coco["categories"][0] == sk.to_coco_category()
        assert len(coco["images"]) == len(coco["annotations"]) == n_img
        ids = {im["id"] for im in coco["images"]}
        for im, ann in zip(coco["images"], coco["annotations"]):
            assert ann["image_id"] in ids and im["width"] == im["height"] == S
            kp = np.array(ann["keypoints"], dtype=float).reshape(-1, 3)
            assert kp.shape == (15, 3) and set(kp[:, 2]) <= {1.0, 2.0}
            assert (kp[:, :2] >= -0.5).all() and (kp[:, :2] <= S - 0.5).all()
            assert {"video", "frame_index", "category"} <= set(im)
            if name == "prior.json":
                assert (kp[:, 2] == 2).all()
            else:
                assert (out / "test" / im["file_name"]).is_file()
                assert im["file_name"] == f"{im['video']}/{im['frame_index']:06d}.png"
                v = next(x.vid for x in world.videos if x.name == im["video"])
                want = normalized_to_pixels(world.keypoints(v)[im["frame_index"]], S)
                assert np.allclose(kp[:, :2], want, atol=1e-3)
                png = np.asarray(Image.open(out / "test" / im["file_name"]))
                assert np.array_equal(png, world.render(v, [im["frame_index"]], S)[0][0].permute(1, 2, 0).numpy())
    assert not ({json.loads((out / "prior.json").read_text())["images"][0]["video"]}
                & {world.videos[v].name for v in world.ids("train") + world.ids("test")})
    assert load_skeleton(out / "skeleton.yaml").keypoint_names == sk.keypoint_names
    assert Image.open(out / "preview.png").size[0] > 4 * S
    with pytest.raises(DataError):
        write_synthetic_dataset(out, params, image_size=S)


def test_rasteriser_draws_the_nearer_part_on_top():
    def parts(depth: list[float]) -> Parts:
        B, P, J = 1, 2, 1
        z = lambda *s: torch.zeros(*s)  # noqa: E731
        return Parts(a=torch.tensor([[[4.0, 10.0], [10.0, 4.0]]]), b=torch.tensor([[[16.0, 10.0], [10.0, 16.0]]]),
                     ra=torch.full((B, P), 2.5), rb=torch.full((B, P), 2.5), depth=torch.tensor([depth]),
                     box=torch.tensor([False, True]), color=torch.tensor([[[1.0, 0, 0], [0, 0, 1.0]]]),
                     color2=torch.tensor([[[1.0, 0, 0], [0, 0, 1.0]]]), waves=z(B, P, J, 3), wave_amp=z(B, P, J),
                     cap_color=z(B, P, 3), cap_dir=z(B, P, 2), cap_thresh=torch.full((B, P), 1e4),
                     light=torch.tensor([[0.0, 0.0, 1.0]]), ambient=torch.ones(B))
    bg = torch.full((1, 3, 20, 20), 0.5)
    img, ids = render_parts(parts([0.0, 1.0]), bg)
    assert ids[0, 10, 10] == 1 and torch.allclose(img[0, :, 10, 10], torch.tensor([0.0, 0, 1]))
    assert ids[0, 10, 5] == 0 and ids[0, 0, 0] == -1 and torch.allclose(img[0, :, 0, 0], bg[0, :, 0, 0])
    img, ids = render_parts(parts([1.0, 0.0]), bg)
    assert ids[0, 10, 10] == 0 and torch.allclose(img[0, :, 10, 10], torch.tensor([1.0, 0, 0]))


def test_occlusion_flags_keypoints_covered_by_other_parts(world):
    sk = world.skeleton
    ids = torch.full((1, S, S), PART_NAMES.index("torso"), dtype=torch.int8)
    occ = occlusion(world.scene(0), [0], ids, sk)[0]
    assert occ[sk.index("r_wrist")] and occ[sk.index("l_knee")]
    assert not occ[sk.index("pelvis")] and not occ[sk.index("r_shoulder")]
    assert not occlusion(world.scene(0), [0], torch.full((1, S, S), -1, dtype=torch.int8), sk).any()


def test_some_frames_have_self_occlusion():
    w = SyntheticWorld(SynthParams(num_videos=14, num_frames=8, seed=0))
    hidden = 0
    for v in range(14):
        _, ids = w.render(v, range(8), S)
        hidden += occlusion(w.scene(v), range(8), ids, w.skeleton).sum()
    assert hidden > 0


def test_config_fields_reach_the_params():
    cfg = load_config("cpu", ["data.synthetic_videos=21", "data.synthetic_activities=[walk, wave, squat]",
                              "data.synthetic_split=[0.5, 0.25, 0.25]", "data.synthetic_test_stride=5"])
    p = SynthParams.from_config(cfg.data)
    assert (p.num_videos, p.activities, p.split, p.test_stride) == (21, ("walk", "wave", "squat"),
                                                                    (0.5, 0.25, 0.25), 5)
    assert SynthParams.from_config(load_config("cpu").data) == SynthParams()
    with pytest.raises(DataError):
        SynthParams(activities=("moonwalk",))


def test_viz_helpers():
    img = np.zeros((16, 16, 3), np.uint8)
    out = draw_skeleton(img, np.array([[2.0, 2.0], [12.0, 12.0]]), [(0, 1)], color=(255, 0, 0), radius=0)
    assert out.shape == img.shape and out[7, 7, 0] == 255 and out[2, 13].sum() == 0
    big = draw_skeleton(img, np.array([[2.0, 2.0], [12.0, 12.0]]), [(0, 1)], scale=4)
    assert big.shape == (64, 64, 3) and big.any()
    grid = make_grid([img, img, img], ncols=2, pad=1)
    assert grid.shape == (2 * 16 + 3, 2 * 16 + 3, 3)


def test_a_damaged_cache_file_is_redrawn(tmp_path):
    world = SyntheticWorld(SynthParams(num_videos=6, num_frames=4))
    from keypointgan.data.synthetic import SyntheticVideos

    first = SyntheticVideos(world, S, cache_dir=tmp_path).prepare()
    (cache,) = tmp_path.glob("*.npz")
    cache.write_bytes(b"not a zip")
    again = SyntheticVideos(world, S, cache_dir=tmp_path).prepare()
    assert torch.equal(first.frame(0, 1), again.frame(0, 1))
    np.load(cache, allow_pickle=False).close()  # rewritten, readable


def test_plain_background_blackens_the_background_only(world, rendered):
    """data.synthetic_background=plain: the same figures, pixel for pixel, on black; the
    cache key of the default is the one it had before the option."""
    plain = SyntheticWorld(replace(SMALL, background="plain"))
    img, ids = plain.render(0, range(4), S)
    ref, ref_ids = rendered[0][0][:4], rendered[0][1][:4]
    assert torch.equal(ids, ref_ids)
    bg = ids < 0
    black = lambda im: float((im.permute(0, 2, 3, 1)[bg].amax(-1) == 0).float().mean())  # noqa: E731
    assert black(img) > 0.9 and black(ref) < 0.05  # (antialiased figure edges are not all black)
    assert float(img.float().permute(0, 2, 3, 1)[~bg].mean()) > 20  # the figure is still drawn
    assert SMALL.key(S) != plain.params.key(S)
    cfg = load_config("cpu", ["data.synthetic_background=plain"])
    assert SynthParams.from_config(cfg.data).background == "plain"
    with pytest.raises(DataError, match="background"):
        SynthParams(background="green")
