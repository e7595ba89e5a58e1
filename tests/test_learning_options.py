"""Options that target mode collapse (issue: learn the pose, not the mean pose): each one
changes what it claims to change."""

import pytest
import torch

from keypointgan.config import load_config
from keypointgan.data.build import build_data
from keypointgan.data.pairs import PairSampler, WarpedPairSampler
from keypointgan.data.tps import TPSParams, scaled
from keypointgan.models.discriminator import MinibatchStd, MultiScaleDiscriminator
from keypointgan.pose import get_skeleton
from keypointgan.pose.stats import pose_spread
from keypointgan.train.trainer import Trainer

from test_train import TINY, series, tiny

TINY_ARGS = TINY + ["train.iterations=1", "train.eta_pretrain_iterations=0"]


def test_pose_spread_is_zero_for_one_pose_and_centering_removes_position():
    g = torch.Generator().manual_seed(0)
    pose = torch.rand(1, 5, 2, generator=g) * 2 - 1
    same = pose.repeat(8, 1, 1)
    assert float(pose_spread(same)) == pytest.approx(0.0, abs=1e-7)
    shifted = same + torch.rand(8, 1, 2, generator=g)  # one shape, moved around
    assert float(pose_spread(shifted)) == pytest.approx(0.0, abs=1e-6)
    assert float(pose_spread(shifted, centered=False)) > 0.05
    varied = torch.rand(8, 5, 2, generator=g) * 2 - 1
    assert float(pose_spread(varied)) > 0.3
    with pytest.raises(ValueError, match="B, K, 2"):
        pose_spread(torch.zeros(8, 5))


def test_trainer_logs_the_collapse_signal(tmp_path):
    tr = Trainer(tiny(tmp_path, "train.eta_pretrain_iterations=0", "train.iterations=2"), progress=False)
    tr.train()
    ratio = [v for _, v in series(tmp_path, "joint", "spread_ratio")]
    prior = [v for _, v in series(tmp_path, "joint", "prior_spread")]
    assert len(ratio) == 2 and all(p > 0 for p in prior) and all(r >= 0 for r in ratio)


def _sources(tmp_path, *extra):
    cfg = tiny(tmp_path, *extra)
    return cfg, build_data(cfg, get_skeleton(cfg.skeleton))


def test_pair_warp_warps_both_frames_reproducibly(tmp_path):
    cfg, data = _sources(tmp_path, "data.pair_warp=tps", "data.warp_scale=2.0")
    assert isinstance(data.pairs, WarpedPairSampler)
    plain = PairSampler(data.train, cfg.train.batch_size, cfg.data.frame_gap, seed=cfg.train.seed)
    a, b = data.pair_batch(3), plain.batch(3)
    assert a["x"].shape == b["x"].shape
    assert not torch.allclose(a["x"], b["x"]) and not torch.allclose(a["x_app"], b["x_app"])
    again = data.pair_batch(3)
    assert torch.equal(a["x"], again["x"]) and torch.equal(a["x_app"], again["x_app"])
    # scale 0 is the identity warp: the plain frame pairs, pixel for pixel (up to resampling)
    ident = WarpedPairSampler(plain, scaled(TPSParams(), 0.0)).batch(3)
    assert torch.allclose(ident["x"], b["x"], atol=1e-5) and torch.allclose(ident["x_app"], b["x_app"], atol=1e-5)


def test_pair_warp_bad_value_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="pair_warp"):
        _sources(tmp_path, "data.pair_warp=rotate")


def test_minibatch_std_tells_a_repeated_pose_from_varied_ones_without_mixing_halves():
    torch.manual_seed(0)
    layer = MinibatchStd(4)
    same = torch.randn(1, 3, 5, 5).repeat(8, 1, 1, 1)
    out = layer(same)
    assert out.shape == (8, 4, 5, 5) and float(out[:, -1].abs().max()) < 1e-3
    varied = layer(torch.randn(8, 3, 5, 5))
    assert float(varied[:, -1].min()) > 0.5
    d = MultiScaleDiscriminator(32, [1.0, 0.5], ndf=8, n_layers=1, minibatch_std=4).eval()
    real, fake = torch.randn(4, 1, 32, 32), torch.randn(4, 1, 32, 32)
    s1 = d(torch.cat([real, fake]))
    s2 = d(torch.cat([real, fake[:1].repeat(4, 1, 1, 1)]))  # only the fake half changes
    assert all(torch.equal(a[:4], b[:4]) for a, b in zip(s1, s2))
    assert not all(torch.allclose(a[4:], b[4:]) for a, b in zip(s1, s2))


def test_minibatch_std_trains(tmp_path):
    tr = Trainer(tiny(tmp_path, "model.disc_minibatch_std=2", "train.eta_pretrain_iterations=0",
                      "train.iterations=2"), progress=False)
    assert any(isinstance(m, MinibatchStd) for m in tr.disc.modules())
    tr.train()
    assert len(series(tmp_path, "joint", "d")) == 2


@pytest.mark.parametrize("override,match", [("train.batch_size=0", "batch_size must be >= 1"),
                                            ("train.minutes=-3", "minutes must be > 0"),
                                            ("model.disc_minibatch_std=1", "disc_minibatch_std"),
                                            ("data.warp_scale=-1", "warp_scale"),
                                            ("render.psi_sigmas=[0.5,0]", "psi_sigmas")])
def test_bad_numeric_options_are_refused_before_anything_is_written(tmp_path, override, match):
    from keypointgan.config import ConfigError

    with pytest.raises(ConfigError, match=match):
        Trainer(tiny(tmp_path / "run", override), progress=False)
    assert not (tmp_path / "run").exists()


def test_resume_without_a_checkpoint_is_an_error_not_a_fresh_run(tmp_path):
    from keypointgan.cli import main

    assert main(["train", "--out", str(tmp_path / "typo"), "--resume", "-q", *TINY_ARGS]) == 2
    assert not (tmp_path / "typo" / "checkpoints").exists()


def test_negative_minutes_on_the_command_line_are_refused(capsys):
    from keypointgan.cli import main

    with pytest.raises(SystemExit) as e:
        main(["demo", "--minutes", "-3"])
    assert e.value.code == 2 and "must be > 0" in capsys.readouterr().err


def test_d_augment_moves_the_discriminators_real_poses(tmp_path):
    seen = {}
    for flag in ("false", "true"):
        tr = Trainer(tiny(tmp_path / flag, f"train.d_augment={flag}", "train.precision=fp32"), progress=False)
        prior, _ = tr._prior(1)
        rendered = []
        tr.model.render = lambda kp, vis=None, _r=tr.model.renderer: rendered.append(kp.clone()) or _r(kp, vis)
        y = tr.model.phi(tr.runtime.tensor(tr.data.pair_batch(1)["x"]))
        tr.discriminator_step(y, prior)
        seen[flag] = (prior, rendered[0])
    assert torch.equal(seen["false"][0], seen["false"][1])
    assert not torch.allclose(seen["true"][0], seen["true"][1])


def test_psi_pose_skips_feed_the_skeleton_past_the_bottleneck():
    from keypointgan.models.psi import ConditionalDecoder

    torch.manual_seed(0)
    y = torch.randn(2, 1, 16, 16)
    x_app = torch.randn(2, 3, 16, 16)
    for skips in (False, True):
        psi = ConditionalDecoder(4, 2, 16, pose_skips=skips).eval()
        with torch.no_grad():  # cut the pose encoder: only the skips can carry y*
            last = [m for m in psi.pose_encoder.modules() if isinstance(m, torch.nn.Conv2d)][-1]
            last.weight.zero_()
            if last.bias is not None:
                last.bias.zero_()
        yg = y.clone().requires_grad_(True)
        out = psi(yg, x_app)
        assert out.shape == (2, 3, 16, 16)
        out.square().sum().backward()
        reached = float(yg.grad.abs().sum())
        assert (reached > 0) == skips, (skips, reached)


def test_psi_pose_skips_option_builds_and_trains(tmp_path):
    tr = Trainer(tiny(tmp_path, "model.psi_pose_skips=true", "train.eta_pretrain_iterations=0",
                      "train.iterations=2"), progress=False)
    assert tr.model.psi.pose_skips and hasattr(tr.model.psi, "levels")
    before = [p.detach().clone() for p in tr.model.psi.levels.parameters()]
    tr.train()
    assert any(not torch.equal(a, b) for a, b in zip(before, tr.model.psi.levels.parameters()))


def test_equivariance_term_is_logged_reproducible_and_off_in_the_papers_presets(tmp_path):
    assert load_config("paper").loss.equivariance_weight == 0 and load_config("release").loss.equivariance_weight == 0
    assert load_config("cpu").loss.equivariance_weight > 0  # on in the cpu/demo presets (docs/results.md)
    assert load_config("cpu").loss.equivariance_flip == 0.5 and load_config("paper").loss.equivariance_flip == 0
    off = Trainer(tiny(tmp_path / "off", *TINY_ARGS[len(TINY):], "loss.equivariance_weight=0"), progress=False)
    off.train()
    assert not series(tmp_path / "off", "joint", "g_equiv")
    tr = Trainer(tiny(tmp_path / "on", "train.iterations=2", "train.eta_pretrain_iterations=0",
                      "loss.equivariance_weight=1.0"), progress=False)
    x = torch.rand(3, 1, 16, 16)
    w1, w2, w3 = tr.equivariance_warp(5, 3), tr.equivariance_warp(5, 3), tr.equivariance_warp(6, 3)
    assert torch.equal(w1(x), w2(x)) and not torch.allclose(w1(x), w3(x))  # a pure function of the step
    tr.train()
    eq = [v for _, v in series(tmp_path / "on", "joint", "g_equiv")]
    assert len(eq) == 2 and all(v > 0 for v in eq)


def test_equivariance_term_pulls_phi_toward_moving_with_the_image(tmp_path):
    """Only the equivariance term on Phi: a few steps lower |Phi(T x) - T(Phi(x))|^2 on a
    held-out batch and warps (what the option claims), and its gradient reaches Phi."""
    cfg = tiny(tmp_path, *TINY_ARGS[len(TINY):], "loss.equivariance_weight=1.0", "loss.equivariance_warp_scale=4.0")
    tr = Trainer(cfg, progress=False)
    phi = tr.model.phi
    x_eval = tr.data.pair_batch(1000)["x"]
    warp_eval = tr.equivariance_warp(1000, x_eval.shape[0])

    def error(x, warp):
        return torch.mean((phi(warp(x)) - warp(phi(x))) ** 2)

    phi.train()
    with torch.no_grad():
        before = float(error(x_eval, warp_eval))
    opt = torch.optim.Adam(phi.parameters(), lr=1e-3)
    for step in range(1, 31):
        x = tr.data.pair_batch(step)["x"]
        loss = error(x, tr.equivariance_warp(step, x.shape[0]))
        opt.zero_grad()
        loss.backward()
        assert step > 1 or sum(float(p.grad.abs().sum()) for p in phi.parameters() if p.grad is not None) > 0
        opt.step()
    with torch.no_grad():
        after = float(error(x_eval, warp_eval))
    assert after < 0.7 * before, (before, after)


def test_equivariance_flip_mirrors_the_warps_and_penalises_a_skeleton_drawn_beside_the_figure(tmp_path):
    """``loss.equivariance_flip``: the same TPS warps, mirrored left-right; a "Phi" that draws
    the true skeleton shifted sideways (the stuck runs) is charged far more with the flips,
    a Phi that draws it in place nothing."""
    from keypointgan.pose.render import render_skeleton

    def trainer(p, name):
        return Trainer(tiny(tmp_path / name, *TINY_ARGS[len(TINY):], "loss.equivariance_weight=1.0",
                            f"loss.equivariance_flip={p}"), progress=False)

    off, on, half = trainer(0.0, "off"), trainer(1.0, "on"), trainer(0.5, "half")
    x = torch.rand(6, 1, 32, 32)
    assert torch.allclose(on.equivariance_warp(3, 6)(x), off.equivariance_warp(3, 6)(x).flip(-1), atol=1e-6)
    h, o = half.equivariance_warp(3, 6)(x), off.equivariance_warp(3, 6)(x)
    mirrored = [torch.allclose(h[i], o[i].flip(-1), atol=1e-6) for i in range(6)]
    kept = [torch.equal(h[i], o[i]) for i in range(6)]
    assert all(m != k for m, k in zip(mirrored, kept)) and any(mirrored) and any(kept)
    sk = get_skeleton("synth_humanoid")
    g = torch.Generator().manual_seed(0)
    kp = torch.rand(8, sk.num_keypoints, 2, generator=g) - 0.5
    y = render_skeleton(kp, sk.edges, 32)  # a perfect Phi: image = its own skeleton, Phi = identity
    beside = lambda im: torch.roll(im, 5, dims=-1)  # noqa: E731  (the skeleton 5 px to the right)
    costs = {}
    for name, tr in (("off", off), ("on", on)):
        warp = tr.equivariance_warp(7, 8)
        assert float(torch.mean((warp(y) - warp(y)) ** 2)) == 0.0
        costs[name] = float(torch.mean((beside(warp(y)) - warp(beside(y))) ** 2))
    assert costs["on"] > 2 * costs["off"], costs


@pytest.mark.parametrize("option", ["loss.equivariance_weight=-1", "loss.equivariance_warp_scale=0",
                                    "loss.equivariance_fraction=0", "loss.equivariance_fraction=1.5",
                                    "loss.equivariance_flip=-0.1", "loss.equivariance_flip=2"])
def test_bad_equivariance_options_are_refused_at_start_up(tmp_path, option):
    from keypointgan.config import ConfigError

    with pytest.raises(ConfigError, match=option.split("=")[0]):
        Trainer(tiny(tmp_path, *TINY_ARGS[len(TINY):], option), progress=False)


@pytest.mark.parametrize("fraction,expected", [(1.0, 4), (0.5, 2), (0.01, 1)])
def test_equivariance_fraction_warps_only_that_share_of_the_batch(tmp_path, fraction, expected):
    """Phi's one forward of a generator step reads the batch plus the warped share of it
    (the option's cost), and the term is still computed and logged."""
    tr = Trainer(tiny(tmp_path, "train.iterations=1", "train.eta_pretrain_iterations=0", "train.batch_size=4",
                      "loss.equivariance_weight=1.0", f"loss.equivariance_fraction={fraction}"), progress=False)
    assert tr.equivariance_n(4) == expected
    seen = []
    hook = tr.model.phi.register_forward_hook(lambda m, i, o: seen.append(i[0].shape[0]))
    batch = tr.data.pair_batch(1)
    losses, out = tr.generator_step(tr.runtime.tensor(batch["x"]), tr.runtime.tensor(batch["x_app"]))
    hook.remove()
    assert seen == [4 + expected] and out.y_warped.shape[0] == expected and out.y.shape[0] == 4
    assert float(losses["g_equiv"]) > 0


@pytest.mark.parametrize("impl,flag", [("auto", "fused"), ("fused", "fused"), ("foreach", "foreach")])
def test_adam_impl_picks_torchs_implementation(tmp_path, impl, flag):
    tr = Trainer(tiny(tmp_path, *TINY_ARGS[len(TINY):], f"train.adam_impl={impl}"), progress=False)
    for opt in (tr.opt_g, tr.opt_d, tr.opt_eta):
        assert opt.defaults[flag] is True


def test_fused_adam_steps_like_the_for_loop_and_bad_names_are_refused(tmp_path):
    """Same algorithm, other rounding: one step of the fused and the for-loop Adam agree."""
    from keypointgan.config import ConfigError
    from keypointgan.train.trainer import adam_flags

    g = torch.Generator().manual_seed(0)
    start, grads = torch.randn(50, 7, generator=g), [torch.randn(50, 7, generator=g) for _ in range(3)]
    out = {}
    for impl in ("fused", "forloop"):
        p = torch.nn.Parameter(start.clone())
        opt = torch.optim.Adam([p], lr=1e-2, betas=(0.5, 0.999), **adam_flags(impl))
        for gr in grads:
            p.grad = gr.clone()
            opt.step()
        out[impl] = p.detach()
    assert not torch.equal(out["fused"], start) and torch.allclose(out["fused"], out["forloop"], atol=1e-6)
    with pytest.raises(ConfigError, match="train.adam_impl"):
        Trainer(tiny(tmp_path, *TINY_ARGS[len(TINY):], "train.adam_impl=sgd"), progress=False)


def test_psi_sigmas_give_a_far_keypoint_a_gradient_through_psis_input():
    """render.psi_sigmas: the wide drawings move the pose image far from the line, the thin
    one does not, so a reconstruction error there reaches the keypoints only with them."""
    from keypointgan.pose.render import render_skeleton

    kp = torch.tensor([[[-0.5, -0.5], [-0.5, 0.5]]], requires_grad=True)  # one vertical link at x = -0.5
    img = render_skeleton(kp, [(0, 1)], 32, sigma=(0.2, 0.5), signed=True)
    assert img.shape == (1, 2, 32, 32)
    thin = render_skeleton(kp, [(0, 1)], 32, sigma=0.2, signed=True)
    assert torch.equal(img[:, :1], thin)  # channel 0 is beta's image
    far = torch.zeros(32, 32)
    far[12:20, 18:22] = 1.0  # pixels around x = +0.25: 0.75 units (12 px) from the link
    for channel, reaches in ((0, False), (1, True)):
        kp.grad = None
        (img[0, channel] * far).sum().backward(retain_graph=True)
        g = float(kp.grad.abs().sum())
        assert (g > 1e-3) == reaches, (channel, g)


def test_psi_sigmas_widen_psis_pose_input_and_train(tmp_path):
    tr = Trainer(tiny(tmp_path, "render.psi_sigmas=[0.5]", "train.eta_pretrain_iterations=0", "train.iterations=2"),
                 progress=False)
    m = tr.model
    kp = torch.rand(3, m.num_keypoints, 2) * 1.6 - 0.8
    pose = m.psi_pose(kp)
    assert pose.shape[1] == 2 and torch.equal(pose[:, :1], m.render(kp))
    assert not torch.allclose(pose[:, 1], pose[:, 0])  # the wide drawing differs from beta's
    x = torch.rand(3, 3, m.image_size, m.image_size) * 2 - 1
    assert m.reconstruct(pose, x).shape == x.shape
    with pytest.raises(ValueError, match="psi_pose"):
        m.reconstruct(m.render(kp), x)  # a 1-channel skeleton is refused with the fix in the message
    out = m(x, x)
    assert out.y_star.shape[1] == 1  # pictures and the cycle keep beta's image
    tr.train()
    assert load_config("cpu").render.psi_sigmas == []  # the paper's Psi by default


def test_motion_weights_single_out_what_moved_between_the_frames():
    from keypointgan.losses import motion_weights

    x = torch.zeros(2, 3, 32, 32)
    x_app = x.clone()
    x_app[0, :, 4:10, 20:26] = 1.0  # image 0: a patch moved; image 1: identical frames
    w = motion_weights(x, x_app, 4.0)
    assert w.shape == (2, 1, 32, 32)
    assert torch.allclose(w.mean((2, 3)), torch.ones(2, 1), atol=1e-5)  # mean 1 per image
    assert float(w[0, 0, 7, 23]) > 3 * float(w[0, 0, 25, 5])  # the patch weighs more than still pixels
    assert torch.allclose(w[1], torch.ones(1, 32, 32))  # nothing moved: plain loss


@pytest.mark.parametrize("kind", ["laplacian", "vgg_random"])
def test_weighted_reconstruction_counts_errors_where_the_weight_is(kind):
    from keypointgan.config import LossConfig
    from keypointgan.losses import build_reconstruction_loss

    loss = build_reconstruction_loss(LossConfig(reconstruction=kind)).eval()
    torch.manual_seed(0)
    target = torch.rand(1, 3, 32, 32) * 2 - 1
    pred = target.clone()
    pred[..., 2:10, 2:10] += 0.5  # an error in the top-left corner only
    # un-normalised terms (the perceptual loss divides by running means, 1 on a first call)
    raw = (lambda *a: loss.raw_terms(*a).sum()) if hasattr(loss, "raw_terms") else loss
    ones = torch.ones(1, 1, 32, 32)
    assert torch.allclose(raw(pred, target, ones), raw(pred, target), rtol=1e-5)
    there, elsewhere = ones.clone() * 0.2, ones.clone() * 0.2
    there[..., :12, :12] = 5.0
    elsewhere[..., 20:, 20:] = 5.0
    assert float(raw(pred, target, there)) > 2 * float(raw(pred, target, elsewhere))


def test_motion_weight_changes_the_generators_reconstruction_and_is_checked(tmp_path):
    from keypointgan.config import ConfigError

    recs = {}
    for mw in (0.0, 4.0):
        tr = Trainer(tiny(tmp_path / str(mw), f"loss.motion_weight={mw}", "train.eta_pretrain_iterations=0",
                          "train.iterations=1", "train.ema_decay=0", "loss.normalize_fallback=false"), progress=False)
        tr.train()
        recs[mw] = series(tmp_path / str(mw), "joint", "g_rec")[0][1]
    assert recs[0.0] != pytest.approx(recs[4.0], rel=1e-4)  # same seed, same batch: only the weighting differs
    with pytest.raises(ConfigError, match="motion_weight"):
        Trainer(tiny(tmp_path / "bad", "loss.motion_weight=-1"), progress=False)
    with pytest.raises(ConfigError, match="l1_ssim"):
        Trainer(tiny(tmp_path / "bad2", "loss.motion_weight=2", "loss.reconstruction=l1_ssim"), progress=False)



def test_compile_trains_like_eager_and_keeps_checkpoint_keys(tmp_path):
    """train.compile: Phi, Psi, eta and D run compiled in the training steps, with the eager
    step's losses (same seed, same batch; inductor reorders float sums), the same state-dict
    keys (checkpoints unchanged), and an EMA copy that stays eager."""
    args = [*TINY_ARGS[len(TINY):], "train.precision=fp32", "train.channels_last=false",
            "train.compile_backend=aot_eager"]  # inductor: the same graphs, minutes of C++ builds
    from torch._dynamo.utils import counters

    runs, graphs = {}, {}
    for flag in ("false", "true"):
        torch._dynamo.reset()
        counters.clear()
        tr = Trainer(tiny(tmp_path / flag, *args, f"train.compile={flag}"), progress=False)
        runs[flag] = (tr, tr.train_step()[0])
        graphs[flag] = counters["stats"]["unique_graphs"]
    assert graphs["false"] == 0 and graphs["true"] >= 4  # Phi, Psi, eta and D were traced
    (eager, le), (comp, lc) = runs["false"], runs["true"]
    assert comp.model.phi._compiled_call_impl is not None and comp.disc._compiled_call_impl is not None
    assert eager.model.phi._compiled_call_impl is None
    assert list(comp.model.state_dict()) == list(eager.model.state_dict())
    assert list(comp.disc.state_dict()) == list(eager.disc.state_dict())
    for k in ("g_adv", "g_rec", "d", "eta_prior"):
        assert lc[k] == pytest.approx(le[k], rel=1e-3, abs=1e-5), k
    comp._freeze_pretrained_eta()
    assert comp.eta_frozen._compiled_call_impl is None
    from keypointgan.train.ema import ModelEMA

    ema = ModelEMA(comp.model, 0.9)
    assert all(getattr(m, "_compiled_call_impl", None) is None for m in ema.module.modules())
    from keypointgan.config import ConfigError

    with pytest.raises(ConfigError, match="train.compile_backend"):
        Trainer(tiny(tmp_path / "bad", *args, "train.compile=true", "train.compile_backend=nonesuch"), progress=False)
