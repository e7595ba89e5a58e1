"""data.background_swap: Phi reads x in front of another video's background; the target stays x."""

import numpy as np
import pytest
import torch
from PIL import Image

from keypointgan.config import ConfigError, load_config
from keypointgan.data.base import DataError
from keypointgan.data.background import BackgroundSwapSampler, foreground_mask, median_background
from keypointgan.data.build import build_data
from keypointgan.data.pairs import PairSampler, WarpedPairSampler
from keypointgan.pose import get_skeleton
from keypointgan.train.trainer import Trainer

from test_train import tiny


def _data(tmp_path, *extra):
    cfg = tiny(tmp_path, *extra)
    return cfg, build_data(cfg, get_skeleton(cfg.skeleton))


def test_median_recovers_a_fixed_background_behind_a_moving_square():
    g = torch.Generator().manual_seed(0)
    bg = torch.rand(3, 16, 16, generator=g) * 2 - 1
    frames = bg.repeat(9, 1, 1, 1)
    for t in range(9):  # a white square sweeping across: no pixel is covered in more than 3 frames
        frames[t, :, 6:10, t + 1:t + 4] = 1.0
    assert torch.allclose(median_background(frames), bg)
    m = foreground_mask(frames[4:5], bg[None], dilate=0)
    assert m.sum() == 12 and m[0, 0, 6:10, 5:8].all()


def test_swap_changes_the_background_only_and_keeps_x(tmp_path):
    cfg, data = _data(tmp_path, "data.background_swap=1.0")
    assert isinstance(data.pairs, BackgroundSwapSampler)
    plain = PairSampler(data.train, cfg.train.batch_size, cfg.data.frame_gap, seed=cfg.train.seed)
    a, b = data.pair_batch(3), plain.batch(3)
    assert torch.equal(a["x"], b["x"]) and torch.equal(a["x_app"], b["x_app"])  # the target is untouched
    plan = data.pairs.plan(3)
    for i, (v, t, other, _, flip) in enumerate(plan):
        assert other >= 0 and other != v and t == data.pairs.pairs.indices(3)[i][1]
        own = data.pairs.backgrounds(v)
        fg = foreground_mask(b["x"][i:i + 1], own[None], dilate=0)[0, 0].bool()
        assert 0 < fg.float().mean() < 0.6  # a figure, not the whole frame
        # the figure's pixels are x's; background pixels away from it are the other video's
        assert torch.allclose(a["x_phi"][i][:, fg], b["x"][i][:, fg], atol=1e-6)
        new = data.pairs.backgrounds(other)
        new = new.flip(-1) if flip else new
        far = ~foreground_mask(b["x"][i:i + 1], own[None], dilate=1)[0, 0].bool()
        assert torch.allclose(a["x_phi"][i][:, far], new[:, far], atol=1e-6)
        assert not torch.allclose(a["x_phi"][i], b["x"][i], atol=1e-3)
    again = data.pair_batch(3)
    assert torch.equal(a["x_phi"], again["x_phi"])  # a pure function of (seed, step)


def test_fraction_zero_is_the_plain_sampler_and_warps_move_x_phi_with_x(tmp_path):
    cfg, data = _data(tmp_path)
    assert isinstance(data.pairs, PairSampler) and "x_phi" not in data.pair_batch(1)
    none = BackgroundSwapSampler(data.pairs, 0.0).batch(1)
    assert torch.equal(none["x_phi"], none["x"])
    cfg, data = _data(tmp_path, "data.background_swap=1.0", "data.pair_warp=tps")
    assert isinstance(data.pairs, WarpedPairSampler)
    b = data.pair_batch(2)
    assert b["x_phi"].shape == b["x"].shape and not torch.allclose(b["x_phi"], b["x"])
    with pytest.raises(ConfigError, match="background_swap"):
        _data(tmp_path, "data.background_swap=0.5", "data.tps=true")
    with pytest.raises(ConfigError, match="background_swap"):
        _data(tmp_path, "data.background_swap=1.5")


def test_phi_reads_x_phi_and_the_target_is_x(tmp_path):
    tr = Trainer(tiny(tmp_path, "data.background_swap=1.0", "train.iterations=1",
                      "train.eta_pretrain_iterations=0", "loss.equivariance_weight=0"), progress=False)
    seen = []
    tr.model.phi.register_forward_hook(lambda m, inp, out: seen.append(inp[0].detach().float()))
    batch = tr.data.pair_batch(1)
    tr.train()
    assert len(seen) == 1
    assert torch.allclose(seen[0], batch["x_phi"].float(), atol=1e-2)
    assert not torch.allclose(seen[0], batch["x"].float(), atol=1e-2)


def _folder_videos(root, bg_root, n=12, size=16):
    """Two frame-folder videos of a white square on textured backgrounds that move with a
    tracked crop (one background per frame); per-frame backgrounds under ``bg_root``."""
    rng = np.random.default_rng(0)
    walls = [rng.integers(0, 120, (size, 3 * size, 3), dtype=np.uint8) for _ in range(2)]
    for v, wall in enumerate(walls):
        for t in range(n):
            bg = wall[:, t:t + size].copy()  # the crop slides along the wall
            fr = bg.copy()
            fr[5:11, 2 + t % 8:6 + t % 8] = 255
            for folder, img in ((root / f"v{v}", fr), (bg_root / f"v{v}", bg)):
                folder.mkdir(parents=True, exist_ok=True)
                Image.fromarray(img).save(folder / f"{t:06d}.png")


def test_folder_backgrounds_per_frame_swap_behind_tracked_crops(tmp_path):
    root, bgs = tmp_path / "train", tmp_path / "bgs"
    _folder_videos(root, bgs)
    (bgs / "v2").mkdir()  # a background folder of no training video: ignored
    from keypointgan.data.folder import FolderVideos

    src = FolderVideos(root, 16, background_root=bgs)
    pairs = PairSampler(src, 8, [1, 4], seed=0)
    s = BackgroundSwapSampler(pairs, 1.0)
    assert s.dilate == 1 and not s.backgrounds.exact  # files are estimates in general
    b = s.batch(0)
    for i, (v, t, other, t2, flip) in enumerate(s.plan(0)):
        own, new = src.backgrounds.get(v, t), src.backgrounds.get(other, t2)
        assert other == 1 - v and torch.equal(own, src.backgrounds.get(v, t))
        new = new.flip(-1) if flip else new
        fig = torch.zeros(16, 16, dtype=torch.bool)
        fig[5:11, 2 + t % 8:6 + t % 8] = True
        assert torch.allclose(b["x_phi"][i][:, fig], b["x"][i][:, fig])  # the figure is x's
        far = ~torch.nn.functional.max_pool2d(fig[None, None].float(), 3, 1, 1)[0, 0].bool()
        assert torch.allclose(b["x_phi"][i][:, far], new[:, far], atol=1e-6)  # the rest: that frame's background
    # the per-video median would be wrong here (the background moves): a tracked crop needs per-frame files
    med = BackgroundSwapSampler(PairSampler(FolderVideos(root, 16), 8, [1, 4], seed=0), 1.0)
    assert not torch.allclose(med.backgrounds(0), src.backgrounds.get(0, 0), atol=0.1)


def test_folder_backgrounds_single_image_missing_videos_and_errors(tmp_path):
    root, bgs = tmp_path / "train", tmp_path / "bgs"
    _folder_videos(root, bgs)
    from keypointgan.data.folder import FolderVideos

    cfg = load_config("cpu", [f"data.root={root}", "data.source=folder", f"data.background_root={bgs}"])
    assert cfg.data.background_root == str(bgs)
    # one image for a whole video; v1 without any: never swapped, and not a donor
    one = tmp_path / "one"
    one.mkdir()
    Image.open(bgs / "v0" / "000000.png").save(one / "v0.png")
    src = FolderVideos(root, 16, background_root=one)
    assert src.backgrounds.has(0) and not src.backgrounds.has(1)
    assert torch.equal(src.backgrounds.get(0, 7), src.backgrounds.get(0, 0)) and src.backgrounds.get(1, 0) is None
    with pytest.raises(DataError, match="at least 2 training videos with a background"):
        BackgroundSwapSampler(PairSampler(src, 4, [1, 4], seed=0), 0.5)
    for f in sorted((bgs / "v1").iterdir())[-3:]:
        f.unlink()
    with pytest.raises(DataError, match=r"v1: 9 background images for the 12 frames"):
        FolderVideos(root, 16, background_root=bgs)
    with pytest.raises(DataError, match="background_root not found"):
        FolderVideos(root, 16, background_root=tmp_path / "nope")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="no background for any training video"):
        FolderVideos(root, 16, background_root=empty)
