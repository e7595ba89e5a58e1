"""Inference: predict (images, folders, videos -> COCO JSON + overlays), export parity, transfer, edit.

One tiny checkpoint (32 px, a few iterations) is trained once per session: these
tests check plumbing, coordinate mapping and parity, not accuracy.
"""

import json
import threading
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image

from fixtures import write_mp4
from keypointgan.cli import main
from keypointgan.config import load_config
from keypointgan.data.base import DataError
from keypointgan.data.coco import read_coco_keypoints
from keypointgan.data.transforms import center_box, to_tensor_batch
from keypointgan.infer.export import check_parity, load_detector
from keypointgan.data.video import read_image
from keypointgan.infer import predict as predict_mod
from keypointgan.infer.predict import VideoReader, VideoWriter, collect_inputs, load_model, overlay, predict
from keypointgan.infer.transfer import Move, apply_moves, edit, edit_image, parse_move, transfer, transfer_images

TINY = ["model.image_size=32", "model.base_width=8", "model.max_width=32", "model.disc_layers=1",
        "model.disc_width=8", "data.synthetic_videos=12", "data.synthetic_frames=16", "train.batch_size=4",
        "train.log_every=1", "train.image_every=0", "train.checkpoint_every=0", "train.threads=1"]


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory) -> Path:
    """A run folder with a tiny trained checkpoint (2 eta pre-training + 2 joint iterations)."""
    from keypointgan.train.trainer import Trainer

    out = tmp_path_factory.mktemp("tiny_run")
    cfg = load_config("cpu", TINY + [f"out_dir={out}", "train.eta_pretrain_iterations=2", "train.iterations=2"])
    tr = Trainer(cfg, progress=False)
    try:
        tr.pretrain_eta()
        tr.train()
        tr.save()
    finally:
        tr.close()
    return out


@pytest.fixture(scope="session")
def tm(run_dir):
    return load_model(run_dir)


def noise_image(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A smooth random picture (so a lossy video codec keeps it recognisable)."""
    rng = np.random.default_rng(seed)
    low = rng.integers(0, 256, (max(2, h // 8), max(2, w // 8), 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(low).resize((w, h), Image.BILINEAR))


def save_png(path: Path, img: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path)
    return path


# -- predict ------------------------------------------------------------------------------
def test_predict_video_and_folder_write_valid_coco_with_overlays(run_dir, tm, tmp_path):
    k = tm.skeleton.num_keypoints
    video = write_mp4(tmp_path / "in" / "clip.mp4", [noise_image(40, 48, i) for i in range(6)])
    folder = tmp_path / "in" / "pics"
    sizes = [(40, 64), (70, 30), (32, 32)]  # (H, W): landscape, portrait, square
    for i, (h, w) in enumerate(sizes):
        save_png(folder / f"img{i}.png", noise_image(h, w, 10 + i))
    out = tmp_path / "out"
    path = predict(run_dir, [folder, video], out, batch_size=4, video_overlay=True, progress=False)

    assert path == out / "keypoints.json"
    coco = read_coco_keypoints(path, tm.skeleton, out_of_image="error")  # validates; inside every image
    assert len(coco.images) == len(coco) == 3 + 6
    assert coco.keypoints.shape == (9, k, 2) and (coco.visibility == 2).all()
    for im, (h, w) in zip(coco.images[:3], sizes):
        assert (im.height, im.width) == (h, w) and im.frame_index is None
    frames = coco.images[3:]
    assert [im.frame_index for im in frames] == list(range(6))
    assert all(im.video == "clip" and (im.width, im.height) == (48, 40) for im in frames)
    # inside the centre crop, hence inside the original image
    for a in range(len(coco)):
        im = coco.image_of(a)
        box = center_box(im.width, im.height)
        x, y = coco.keypoints[a, :, 0], coco.keypoints[a, :, 1]
        assert (x >= box.x0).all() and (x <= box.x0 + box.size).all()
        assert (y >= box.y0).all() and (y <= box.y0 + box.size).all()
    assert coco.scores is not None and (coco.scores >= 0).all() and (coco.scores <= 1).all()
    doc = json.loads(path.read_text())
    assert doc["categories"][0]["keypoints"] == list(tm.skeleton.keypoint_names)
    assert all(abs(a["score"] - np.mean(a["keypoint_scores"])) < 1e-9 for a in doc["annotations"])

    for i in range(3):
        assert (out / "overlays" / f"img{i}.png").is_file()
    assert sorted(p.name for p in (out / "overlays" / "clip").iterdir()) == [f"{i:06d}.png" for i in range(6)]
    with av.open(str(out / "overlays" / "clip.mp4")) as c:
        assert sum(1 for _ in c.decode(video=0)) == 6


def _overlay_inputs(tmp_path: Path) -> tuple[Path, Path]:
    """A folder of 3 images of different sizes and a 6-frame video."""
    folder = tmp_path / "in" / "pics"
    for i, (h, w) in enumerate([(40, 64), (70, 30), (32, 32)]):
        save_png(folder / f"img{i}.png", noise_image(h, w, 10 + i))
    return folder, write_mp4(tmp_path / "in" / "clip.mp4", [noise_image(40, 48, i) for i in range(6)])


def _no_overlay_thread_left() -> bool:
    return not any(t.name.startswith("keypointgan-overlays") for t in threading.enumerate())


@pytest.mark.parametrize("queue", [None, 1])  # default bound (batch_size) and the tightest one
def test_background_overlays_match_inline_drawing(run_dir, tm, tmp_path, monkeypatch, queue):
    """Same keypoints.json bytes and PNG bytes as overlays drawn inline, and as overlay() drawn directly."""
    folder, video = _overlay_inputs(tmp_path)
    outs = {}
    for mode, depth in (("inline", 0), ("background", queue)):
        monkeypatch.setattr(predict_mod, "OVERLAY_QUEUE", depth)
        outs[mode] = tmp_path / mode
        predict(run_dir, [folder, video], outs[mode], batch_size=4, video_overlay=True, progress=False)
    assert _no_overlay_thread_left()
    a, b = outs["inline"], outs["background"]
    assert (a / "keypoints.json").read_bytes() == (b / "keypoints.json").read_bytes()
    pngs = sorted(q.relative_to(a) for q in (a / "overlays").rglob("*.png"))
    assert len(pngs) == 3 + 6 and pngs == sorted(q.relative_to(b) for q in (b / "overlays").rglob("*.png"))
    assert all((a / q).read_bytes() == (b / q).read_bytes() for q in pngs)

    doc = json.loads((b / "keypoints.json").read_text())
    kp = [np.asarray(ann["keypoints"], dtype=np.float64).reshape(-1, 3)[:, :2] for ann in doc["annotations"]]
    originals = [read_image(folder / f"img{i}.png") for i in range(3)] + list(VideoReader(video))
    names = [f"img{i}.png" for i in range(3)] + [f"clip/{i:06d}.png" for i in range(6)]
    for img, k, name in zip(originals, kp, names):
        np.testing.assert_array_equal(np.asarray(Image.open(b / "overlays" / name)), overlay(img, k, tm))


def test_overlay_save_error_propagates_and_leaves_no_json(run_dir, tmp_path, monkeypatch):
    """An error in the background writer is raised by predict as is; no keypoints.json, no thread left."""
    folder, video = _overlay_inputs(tmp_path)
    real_save, calls = predict_mod._save_png, []
    error = OSError(28, "No space left on device")

    def failing_save(path, image):
        calls.append(threading.current_thread().name)
        if len(calls) == 5:  # the second image of the video: after some saves succeeded
            raise error
        real_save(path, image)

    monkeypatch.setattr(predict_mod, "_save_png", failing_save)
    out = tmp_path / "out"
    with pytest.raises(OSError) as info:
        predict(run_dir, [folder, video], out, batch_size=2, video_overlay=True, progress=False)
    assert info.value is error
    assert calls and all(name.startswith("keypointgan-overlays") for name in calls)  # off the main thread
    assert not (out / "keypoints.json").exists()
    assert _no_overlay_thread_left()

    def failing_write(self, frame):
        raise RuntimeError("encoder broke")

    monkeypatch.setattr(predict_mod, "_save_png", real_save)
    monkeypatch.setattr(VideoWriter, "write", failing_write)
    with pytest.raises(RuntimeError, match="encoder broke"):
        predict(run_dir, [video], tmp_path / "out2", overlays=False, video_overlay=True, progress=False)
    assert not (tmp_path / "out2" / "keypoints.json").exists()
    assert _no_overlay_thread_left()


def test_a_main_thread_error_still_writes_the_overlays_handed_over(run_dir, tmp_path):
    folder, _ = _overlay_inputs(tmp_path)
    bad_video = tmp_path / "in" / "broken.mp4"
    bad_video.write_bytes(b"\x00" * 100)
    out = tmp_path / "out"
    with pytest.raises(DataError, match="broken.mp4"):
        predict(run_dir, [folder, bad_video], out, batch_size=2, progress=False)
    assert sorted(q.name for q in (out / "overlays").iterdir()) == [f"img{i}.png" for i in range(3)]
    assert not (out / "keypoints.json").exists() and _no_overlay_thread_left()


def test_video_overlay_frames_are_written_in_order_before_close(run_dir, tmp_path, monkeypatch):
    """Each video's frames reach its writer in frame order, then it is closed; the mp4 shows them in order."""
    clips = [write_mp4(tmp_path / "in" / f"clip{v}.mp4", [noise_image(40, 48, 10 * v + i) for i in range(5)])
             for v in range(2)]
    events, real_write, real_close = [], VideoWriter.write, VideoWriter.close

    def write(self, frame):
        events.append((self.path.name, "write", frame.copy(), threading.current_thread().name))
        real_write(self, frame)

    def close(self):
        if self._out is not None:
            events.append((self.path.name, "close", None, threading.current_thread().name))
        real_close(self)

    monkeypatch.setattr(VideoWriter, "write", write)
    monkeypatch.setattr(VideoWriter, "close", close)
    out = tmp_path / "out"
    predict(run_dir, clips, out, batch_size=2, video_overlay=True, progress=False)  # batches of 2, 2, 1
    assert all(thread.startswith("keypointgan-overlays") for *_, thread in events)
    for v in range(2):
        mine = [e for e in events if e[0] == f"clip{v}.mp4"]
        assert [kind for _, kind, *_ in mine] == ["write"] * 5 + ["close"]
        pngs = [np.asarray(Image.open(out / "overlays" / f"clip{v}" / f"{i:06d}.png")) for i in range(5)]
        for i, (_, _, frame, _) in enumerate(mine[:5]):
            np.testing.assert_array_equal(frame, pngs[i])
        with av.open(str(out / "overlays" / f"clip{v}.mp4")) as c:  # lossy: each frame nearest its own PNG
            decoded = [f.to_ndarray(format="rgb24").astype(np.float64) for f in c.decode(video=0)]
        assert len(decoded) == 5
        for i, d in enumerate(decoded):
            assert int(np.argmin([((d - p) ** 2).mean() for p in pngs])) == i


def test_predicted_pixels_follow_the_crop(run_dir, tmp_path):
    """An image padded by the same amount on both sides has the same centre crop: keypoints shift by the pad."""
    img = noise_image(40, 64, 3)
    padded = np.pad(img, ((0, 0), (10, 10), (0, 0)))  # W 64 -> 84; the centred 40x40 crop keeps its content
    save_png(tmp_path / "a" / "a.png", img)
    save_png(tmp_path / "b" / "b.png", padded)
    kp = []
    for name in ("a", "b"):
        p = predict(run_dir, [tmp_path / name / f"{name}.png"], tmp_path / f"out_{name}", overlays=False,
                    progress=False)
        kp.append(np.asarray(json.loads(p.read_text())["annotations"][0]["keypoints"]).reshape(-1, 3)[:, :2])
    np.testing.assert_allclose(kp[1] - kp[0], np.broadcast_to([10.0, 0.0], kp[0].shape), atol=1e-4)


def test_crop_box_maps_normalised_to_original_pixels():
    box = center_box(64, 40)  # the centred 40x40 square: columns 12..51
    uv = np.array([[0.0, 0.0], [-1.0, -1.0], [1.0, 1.0], [-1 + 1 / 40, -1 + 1 / 40]])
    np.testing.assert_allclose(box.to_pixels(uv), [[31.5, 19.5], [11.5, -0.5], [51.5, 39.5], [12.0, 0.0]], atol=1e-9)


def test_bad_inputs_are_clear_errors_naming_the_file(run_dir, tmp_path, capsys):
    missing = tmp_path / "nope.png"
    with pytest.raises(DataError, match="nope.png: input not found"):
        collect_inputs([missing])
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"this is not a png")
    with pytest.raises(DataError, match="junk.png: unreadable image"):
        predict(run_dir, [junk], tmp_path / "o1", progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="empty: no images"):
        collect_inputs([tmp_path / "empty"])
    bad_video = tmp_path / "broken.mp4"
    bad_video.write_bytes(b"\x00" * 100)
    with pytest.raises(DataError, match="broken.mp4"):
        predict(run_dir, [bad_video], tmp_path / "o2", progress=False)
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DataError, match="notes.txt: not an image"):
        collect_inputs([tmp_path / "notes.txt"])
    assert main(["predict", str(run_dir), str(missing), "--out", str(tmp_path / "o3"), "-q"]) == 2
    assert "nope.png: input not found" in capsys.readouterr().err
    assert not (tmp_path / "o1" / "keypoints.json").exists()


# -- export -------------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_export_onnx_and_torchscript_match_pytorch(run_dir, tmp_path, capsys):
    out = tmp_path / "export"
    assert main(["export", str(run_dir), "--out", str(out)]) == 0
    assert "OK" in capsys.readouterr().out
    meta = json.loads((out / "detector.json").read_text())
    assert meta["parity"]["ok"] and meta["image_size"] == 32
    det, tm = load_detector(run_dir)
    x = to_tensor_batch([noise_image(32, 32, s) for s in range(5)])  # a batch size not used to trace
    rep = check_parity(det, out / "detector.pt", out / "detector.onnx", x=x)
    assert set(rep.keypoints) == {"torchscript", "onnx"}
    assert rep.ok and max(rep.keypoints.values()) < 1e-4 and max(rep.confidence.values()) < 1e-4
    with torch.no_grad():
        kp, conf = torch.jit.load(str(out / "detector.pt"))(x)
    assert kp.shape == (5, tm.skeleton.num_keypoints, 2) and conf.shape == (5, tm.skeleton.num_keypoints)


# -- transfer / edit -------------------------------------------------------------------------
def test_transfer_writes_the_grid(run_dir, tm, tmp_path):
    pose = [save_png(tmp_path / f"p{i}.png", noise_image(40, 48, 20 + i)) for i in range(2)]
    app = [save_png(tmp_path / f"a{i}.png", noise_image(36, 36, 30 + i)) for i in range(3)]
    gen, kp = transfer_images(tm, to_tensor_batch([noise_image(32, 32, i) for i in range(2)]),
                              to_tensor_batch([noise_image(32, 32, i) for i in range(3)]))
    assert gen.shape == (3, 2, 3, 32, 32) and kp.shape == (2, tm.skeleton.num_keypoints, 2)
    assert torch.isfinite(gen).all()
    grid = transfer(run_dir, pose, app, tmp_path / "out")
    w, h = Image.open(grid).size
    assert (w, h) == (3 * 128 + 4 * 2, 4 * 128 + 5 * 2)  # header + 2 poses; header + 3 appearances
    assert json.loads((tmp_path / "out" / "transfer.json").read_text())["columns_pose"] == [str(p) for p in pose]


def test_parse_move_syntaxes_and_errors():
    assert parse_move("l_wrist=+0.1,-0.2") == Move("l_wrist", 0.1, -0.2, False, False, "l_wrist=+0.1,-0.2")
    m = parse_move("head=@12px, 3.5px")
    assert (m.name, m.x, m.y, m.absolute, m.pixels) == ("head", 12.0, 3.5, True, True)
    for bad in ("l_wrist", "l_wrist=1", "l_wrist=1px,2", "l_wrist=a,b", "=1,2"):
        with pytest.raises(ValueError, match="bad keypoint move"):
            parse_move(bad)


def test_edit_moves_the_keypoint_and_changes_the_skeleton_there(run_dir, tm, tmp_path, capsys):
    sk = tm.skeleton
    j = sk.keypoint_names.index("l_wrist")
    img = noise_image(40, 60, 5)
    signed = tm.model.renderer.signed
    unit = (lambda y: (y + 1) / 2) if signed else (lambda y: y)

    base = edit_image(tm, img, [])
    before = unit(base.skeleton_before[0])
    pix = [(4, 4), (4, 27), (27, 4), (27, 27)]  # (row, col) near the corners; targets at their centres
    centre = lambda i: -1 + (2 * i + 1) / 32  # noqa: E731 - pixel centre in normalised units
    r, c = min(pix, key=lambda rc: float(before[rc]))  # the emptiest corner
    target = (centre(c), centre(r))
    dx, dy = target[0] - float(base.keypoints[j, 0]), target[1] - float(base.keypoints[j, 1])

    res = edit_image(tm, img, [f"l_wrist={dx},{dy}"])
    expect = base.keypoints.clone()
    expect[j] = torch.tensor(target)
    torch.testing.assert_close(res.keypoints, base.keypoints)
    torch.testing.assert_close(res.edited, expect, atol=1e-5, rtol=0)
    after = unit(res.skeleton_after[0])
    assert float(before[r, c]) < 0.5 and float(after[r, c]) > 0.95  # a link now ends at the target
    torch.testing.assert_close(res.skeleton_before, base.skeleton_before)
    assert torch.isfinite(res.regenerated).all() and res.regenerated.shape == (3, 32, 32)

    # pixel offsets are in the original image: the crop is 40 px wide, so 10 px = 0.5 normalised
    moved = apply_moves(base.keypoints, ["l_wrist=10px,-4px"], sk, base.box)
    torch.testing.assert_close(moved[j] - base.keypoints[j], torch.tensor([0.5, -0.2]), atol=1e-5, rtol=0)

    src = save_png(tmp_path / "me.png", img)
    grid = edit(run_dir, src, ["l_wrist=@0.5,0.5"], tmp_path / "out")
    assert Image.open(grid).size == (5 * 128 + 6 * 2, 128 + 2 * 2)
    info = json.loads((tmp_path / "out" / "edit.json").read_text())
    assert info["edited_normalized"][j] == pytest.approx([0.5, 0.5])
    assert (tmp_path / "out" / "edited.png").is_file()

    assert main(["edit", str(run_dir), str(src), "--move", "l_thumb=1,1", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "unknown keypoint 'l_thumb'" in err and "l_wrist" in err and "head" in err


def test_loaded_model_is_folded_channels_last_and_detects_as_the_trained_one(run_dir, tm):
    """Inference runs channels_last with the BatchNorms folded; the keypoints stay those of
    the checkpoint's weights in the training layout (NCHW, BatchNorms in place)."""
    from keypointgan.infer.loading import load_trained
    from keypointgan.infer.predict import resolve_checkpoint
    from keypointgan.models import build_models
    from keypointgan.core import checkpoint as ckpt

    assert tm.runtime.channels_last
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in tm.model.modules())
    nchw = load_trained(resolve_checkpoint(run_dir), precision="fp32", channels_last=False)
    assert not nchw.runtime.channels_last
    weights, _, _ = ckpt.load_checkpoint(resolve_checkpoint(run_dir))
    ref, _ = build_models(tm.cfg, tm.skeleton)
    ckpt.load_module_state(ref, tm.weights, weights, "test")
    ref.eval()
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in ref.modules())
    x = torch.rand(3, 3, tm.model.image_size, tm.model.image_size) * 2 - 1
    with torch.no_grad():
        want = ref.detect(x).keypoints
        got = nchw.model.detect(x).keypoints
        got_cl = load_trained(resolve_checkpoint(run_dir), precision="fp32").model.detect(
            x.contiguous(memory_format=torch.channels_last)).keypoints
    assert torch.allclose(got, want, atol=1e-5) and torch.allclose(got_cl, want, atol=1e-5)
