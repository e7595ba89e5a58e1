"""data.background_swap: Phi reads x in front of another video's background; the target stays x."""

import pytest
import torch

from keypointgan.config import ConfigError
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
    for i, (v, other, flip) in enumerate(plan):
        assert other >= 0 and other != v
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
