"""Tests of keypointgan.losses: LSGAN, perceptual (VGG-19 loaders), fallbacks, eta losses."""

from __future__ import annotations

from pathlib import Path

import kornia
import numpy as np
import pytest
import scipy.io
import torch
import torch.nn.functional as F

from keypointgan.config import ConfigError, LossConfig
from keypointgan.losses import (
    FEATURE_NAMES,
    L1SSIMLoss,
    LaplacianPyramidLoss,
    PerceptualLoss,
    VGG19Features,
    WeightsError,
    build_reconstruction_loss,
    eta_cycle_loss,
    eta_prior_loss,
    laplacian_pyramid,
    load_vgg19_state_dict,
    lsgan_discriminator_loss,
    lsgan_generator_loss,
)

from fixtures_vgg import (
    CONVS,
    RGB_MEAN,
    matconvnet_layers,
    random_torchvision_state_dict,
    write_matconvnet,
    write_torchvision,
)

SIZE = 16


def images(n: int = 2, seed: int = 0, size: int = SIZE) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=gen) * 2 - 1


# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """16 px images gain nothing from threads, and on a shared 2-core machine two
    spinning OpenMP threads made this file ~5x slower; restored after the module."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def state() -> dict[str, torch.Tensor]:
    return random_torchvision_state_dict(seed=1)


@pytest.fixture(scope="module")
def weight_files(tmp_path_factory, state) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("vgg")
    return {
        "pth": write_torchvision(d / "vgg19.pth", state),
        "safetensors": write_torchvision(d / "vgg19.safetensors", state),
        "mat": write_matconvnet(d / "imagenet-vgg-verydeep-19.mat", state),
        "mat_legacy": write_matconvnet(d / "legacy-verydeep-19.mat", state, legacy=True),
    }


@pytest.fixture(scope="module")
def loaded(weight_files) -> dict[str, tuple[dict[str, torch.Tensor], str]]:
    return {kind: load_vgg19_state_dict(path) for kind, path in weight_files.items()}


def tiny(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Same keys, 1-element 4-D/1-D tensors: cheap files for errors caught before shapes matter."""
    return {k: torch.zeros((1, 1, 1, 1) if v.dim() == 4 else (1,)) for k, v in state.items()}


@pytest.fixture(scope="module")
def vgg_random() -> VGG19Features:
    return VGG19Features.random(seed=0)


# --------------------------------------------------------------------- LSGAN


def test_lsgan_hand_computed():
    real = [torch.tensor([[1.0, 0.5]]), torch.zeros(1, 1, 2, 2)]
    fake = [torch.tensor([[0.0, 1.0]]), torch.full((1, 1, 2, 2), 0.5)]
    # scale 1: 0.5 * ((0 + 0.25) / 2 + (0 + 1) / 2) = 0.3125; scale 2: 0.5 * (1 + 0.25) = 0.625
    assert lsgan_discriminator_loss(real, fake).item() == pytest.approx((0.3125 + 0.625) / 2)
    # scale 1: ((1 + 0) / 2) = 0.5; scale 2: 0.25
    assert lsgan_generator_loss(fake).item() == pytest.approx(0.375)


def test_lsgan_bf16_single_tensor_and_errors():
    fake = torch.full((2, 1, 4, 4), 0.25, dtype=torch.bfloat16, requires_grad=True)
    g = lsgan_generator_loss(fake)
    assert g.dtype == torch.float32 and g.item() == pytest.approx(0.5625)
    g.backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0
    d = lsgan_discriminator_loss(torch.ones(2, 1, 4, 4, dtype=torch.bfloat16),
                                 [torch.zeros(2, 1, 4, 4, dtype=torch.bfloat16)])
    assert d.dtype == torch.float32 and d.item() == 0.0
    with pytest.raises(ValueError, match="scales"):
        lsgan_discriminator_loss([torch.ones(1)], [torch.ones(1), torch.ones(1)])
    with pytest.raises(ValueError):
        lsgan_generator_loss([])


# ----------------------------------------------------------------------- eta


def test_eta_prior_loss():
    pred = torch.zeros(2, 3, 2)
    prior = torch.zeros(2, 3, 2)
    prior[0, 0] = torch.tensor([0.6, 0.8])  # squared error 1 over 12 coordinates
    assert eta_prior_loss(pred, prior).item() == pytest.approx(1.0 / 12)
    visible = torch.ones(2, 3)
    visible[0, 0] = 0
    assert eta_prior_loss(pred, prior, visible).item() == 0.0
    with pytest.raises(ValueError):
        eta_prior_loss(pred, prior[:, :2])


def test_eta_cycle_loss_detaches_target():
    rendered = torch.full((2, 1, 8, 8), 0.5, requires_grad=True)
    skeleton = torch.zeros(2, 1, 8, 8, requires_grad=True)
    loss = eta_cycle_loss(rendered, skeleton)
    assert loss.item() == pytest.approx(0.25)
    loss.backward()
    assert rendered.grad is not None and skeleton.grad is None


# ----------------------------------------------------------------- perceptual


def reference_features(state: dict[str, torch.Tensor], x_pre: torch.Tensor, relu: bool) -> list[torch.Tensor]:
    """VGG-19 by block structure (not by index layout): taps after convX_2, pools after blocks."""
    feats, h = [x_pre], x_pre
    for block in range(1, 6):
        for name, idx, _, _ in CONVS:
            if name.startswith(f"conv{block}_"):
                h = F.conv2d(h, state[f"features.{idx}.weight"], state[f"features.{idx}.bias"], padding=1)
                h = F.relu(h) if relu else h
                if name.endswith("_2"):
                    feats.append(h)
        if block < 5:
            h = F.max_pool2d(h, 2)
        else:
            break
    return feats


@pytest.mark.parametrize("relu", [True, False])
def test_vgg_taps_match_reference(state, relu):
    vgg = VGG19Features(relu=relu, preprocessing="torchvision")
    vgg.load_state_dict(state, strict=False)  # classifier keys are not ours
    x = images(1, seed=3)
    got = vgg(x)
    want = reference_features(state, vgg.preprocess(x), relu)
    assert len(got) == len(FEATURE_NAMES) == len(want)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-4)
    if relu:
        assert all((f >= 0).all() for f in got[1:])
    else:  # the release's bug: pre-activation features, negatives survive
        assert all((f < 0).any() for f in got[1:])


def test_preprocessing_per_source():
    x = images(1)
    unit = (x + 1) / 2
    mc = VGG19Features(preprocessing="matconvnet").preprocess(x)
    tv = VGG19Features(preprocessing="torchvision").preprocess(x)
    mean = torch.tensor(RGB_MEAN).view(1, 3, 1, 1)
    torch.testing.assert_close(mc, unit * 255 - mean)
    m = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    s = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    torch.testing.assert_close(tv, (unit - m) / s)
    with pytest.raises(ValueError):
        VGG19Features(preprocessing="caffe-bgr")


def test_perceptual_zero_positive_and_gradients(vgg_random):
    loss = PerceptualLoss(vgg_random)
    a, b = images(seed=0), images(seed=1)
    assert loss(a, a.clone()).item() == 0.0
    pred = b.clone().requires_grad_()
    value = loss(pred, a)
    assert value.item() > 0 and value.dtype == torch.float32
    value.backward()
    assert pred.grad is not None and torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0
    assert all(not p.requires_grad and p.grad is None for p in vgg_random.parameters())
    loss.train()
    assert not loss.vgg.training


def test_running_mean_normalisation(vgg_random):
    loss = PerceptualLoss(vgg_random, momentum=0.9)
    a, b, c, d = (images(seed=s) for s in range(4))
    v1 = loss.raw_terms(a, b).detach()
    v2 = loss.raw_terms(c, d).detach()
    assert (v1 > 0).all() and not torch.allclose(v1, v2)
    # First call initialises each running mean to its own value: every term is 1.
    assert loss(a, b).item() == pytest.approx(1.0, abs=1e-6)
    torch.testing.assert_close(loss.running_mean, v1)
    # Second call: update first (0.9 * v1 + 0.1 * v2), then divide.
    rm = 0.9 * v1 + 0.1 * v2
    assert loss(c, d).item() == pytest.approx((v2 / rm).mean().item(), rel=1e-5)
    torch.testing.assert_close(loss.running_mean, rm)
    # Eval mode uses the running means without updating them.
    loss.eval()
    assert loss(a, b).item() == pytest.approx((v1 / rm).mean().item(), rel=1e-5)
    torch.testing.assert_close(loss.running_mean, rm)
    # Only the running means are checkpointed; they restore into a fresh loss.
    sd = loss.state_dict()
    assert set(sd) == {"running_mean", "initialized"}
    fresh = PerceptualLoss(VGG19Features.random(seed=0), momentum=0.9).eval()
    fresh.load_state_dict(sd)
    assert fresh(a, b).item() == pytest.approx((v1 / rm).mean().item(), rel=1e-5)


def test_running_mean_waits_for_nonzero_value(vgg_random):
    loss = PerceptualLoss(vgg_random)
    a, b = images(seed=0), images(seed=1)
    assert loss(a, a).item() == 0.0  # identical images first: nothing to normalise by yet
    assert not loss.initialized.any()
    assert loss(a, b).item() == pytest.approx(1.0, abs=1e-6)
    assert loss.initialized.all()


def test_perceptual_bf16_autocast_channels_last_close_to_fp32(vgg_random):
    loss = PerceptualLoss(vgg_random).eval()
    a, b = images(seed=0), images(seed=1)
    ref = loss.raw_terms(b, a)
    pred = b.contiguous(memory_format=torch.channels_last).requires_grad_()
    target = a.contiguous(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        terms = loss.raw_terms(pred, target)
        value = loss(pred, target)
    assert terms.dtype == torch.float32 and value.dtype == torch.float32
    torch.testing.assert_close(terms, ref, rtol=5e-2, atol=0.0)
    value.backward()
    assert pred.grad is not None and torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0


def test_small_and_odd_sizes(vgg_random):
    loss = PerceptualLoss(vgg_random)
    for h, w in ((16, 16), (21, 37)):
        a = torch.rand(1, 3, h, w) * 2 - 1
        assert torch.isfinite(loss(a, torch.zeros_like(a)))
    with pytest.raises(ValueError, match="16"):
        loss(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 8))


# --------------------------------------------------------------------- loaders


def test_loaders_read_all_layouts_identically(loaded, state):
    for kind, (sd, pre) in loaded.items():
        assert pre == ("matconvnet" if kind.startswith("mat") else "torchvision")
        assert len(sd) == 32 and not any(k.startswith("classifier") for k in sd)
        for key, value in sd.items():
            assert value.dtype == torch.float32
            assert torch.equal(value, state[key]), (kind, key)


def test_same_weights_same_features_across_formats(loaded):
    x = images(2, seed=5)
    feats = {}
    for kind, (sd, _) in loaded.items():
        vgg = VGG19Features(preprocessing="matconvnet")  # same weights + same input mapping
        vgg.load_state_dict(sd)
        feats[kind] = vgg(x)
    for kind in ("safetensors", "mat", "mat_legacy"):
        for f_ref, f in zip(feats["pth"], feats[kind]):
            torch.testing.assert_close(f, f_ref, rtol=1e-5, atol=1e-5)


def test_mat_spatial_transpose_matters(tmp_path, weight_files, state):
    """A file whose filters were stored W x H (not H x W) must not load as the same net."""
    data = scipy.io.loadmat(str(weight_files["mat"]))
    layers = data["layers"]
    w = layers[0, 0]["weights"][0, 0]
    w[0, 0] = np.ascontiguousarray(w[0, 0].transpose(1, 0, 2, 3))
    mat = tmp_path / "swapped.mat"
    scipy.io.savemat(str(mat), {"layers": layers})
    sd, _ = load_vgg19_state_dict(mat)
    assert not torch.equal(sd["features.0.weight"], state["features.0.weight"])
    torch.testing.assert_close(sd["features.0.weight"], state["features.0.weight"].transpose(2, 3))


def test_missing_file_and_unknown_suffix(tmp_path):
    with pytest.raises(WeightsError, match="nope.pth.*not found"):
        load_vgg19_state_dict(tmp_path / "nope.pth")
    odd = tmp_path / "weights.h5"
    odd.write_bytes(b"x")
    with pytest.raises(WeightsError, match="weights.h5.*unknown weights format"):
        load_vgg19_state_dict(odd)
    assert issubclass(WeightsError, ValueError)


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_torchvision_missing_key_and_wrong_shape(tmp_path, state, suffix):
    bad = {k: v for k, v in tiny(state).items() if k != "features.34.weight"}
    path = write_torchvision(tmp_path / f"vgg{suffix}", bad)
    with pytest.raises(WeightsError, match=rf"vgg\{suffix}: missing key features\.34\.weight"):
        load_vgg19_state_dict(path)
    bad = tiny(state)
    bad["features.0.weight"] = torch.zeros(3, 3, 3, 64)  # MatConvNet order by mistake
    path = write_torchvision(tmp_path / f"shape{suffix}", bad)
    with pytest.raises(WeightsError, match=r"expected shape \(64, 3, 3, 3\) for features\.0\.weight "
                                           r"\(conv1_1\), got \(3, 3, 3, 64\)") as err:
        load_vgg19_state_dict(path)
    assert f"shape{suffix}" in str(err.value)


def test_wrong_shape_deep_layer(tmp_path, state):
    bad = dict(state)
    bad["features.34.weight"] = torch.zeros(512, 256, 3, 3)
    path = write_torchvision(tmp_path / "deep.safetensors", bad)
    with pytest.raises(WeightsError, match=r"deep\.safetensors: expected shape \(512, 512, 3, 3\) "
                                           r"for features\.34\.weight \(conv5_4\), got \(512, 256, 3, 3\)"):
        load_vgg19_state_dict(path)


def test_matconvnet_missing_layer_and_wrong_shape(tmp_path, state):
    layers = matconvnet_layers(tiny(state))
    names = [str(layers[0, i]["name"]) for i in range(layers.shape[1])]
    keep = [i for i, n in enumerate(names) if n != "conv5_4"]
    path = tmp_path / "short.mat"
    scipy.io.savemat(str(path), {"layers": layers[:, keep]})
    with pytest.raises(WeightsError, match=r"short\.mat: missing layer conv5_4"):
        load_vgg19_state_dict(path)
    bad = tiny(state)
    bad["features.0.weight"] = torch.zeros(3, 3, 64, 3)  # on disk (H, W, in, out) = (64, 3, 3, 3)
    path = write_matconvnet(tmp_path / "shape.mat", bad)
    with pytest.raises(WeightsError, match=r"shape\.mat: expected filters of shape \(3, 3, 3, 64\) "
                                           r"\(H, W, in, out\) for conv1_1, got \(64, 3, 3, 3\)"):
        load_vgg19_state_dict(path)
    path = tmp_path / "nolayers.mat"
    scipy.io.savemat(str(path), {"something": np.zeros(3)})
    with pytest.raises(WeightsError, match=r"nolayers\.mat: no 'layers'"):
        load_vgg19_state_dict(path)


@pytest.mark.parametrize("name", ["garbage.pth", "garbage.safetensors", "garbage.mat"])
def test_garbage_files(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(WeightsError, match=rf"{name}: cannot read"):
        load_vgg19_state_dict(path)


_UNPICKLED = []


def _side_effect() -> list:
    _UNPICKLED.append(True)
    return []


class _Evil:
    def __reduce__(self):
        return (_side_effect, ())


def test_pth_never_unpickles_arbitrary_objects(tmp_path, state):
    path = tmp_path / "evil.pth"
    torch.save({**tiny(state), "extra": _Evil()}, path)
    with pytest.raises(WeightsError, match="evil.pth: cannot read"):
        load_vgg19_state_dict(path)
    assert not _UNPICKLED


def test_torchvision_wrong_layouts(tmp_path, state):
    path = tmp_path / "list.pth"
    torch.save([state["features.0.weight"]], path)
    with pytest.raises(WeightsError, match="list.pth: expected a state dict"):
        load_vgg19_state_dict(path)
    path = write_torchvision(tmp_path / "prefixed.pth", {f"module.{k}": v for k, v in tiny(state).items()})
    with pytest.raises(WeightsError, match="prefixed.pth: missing key .*prefixed with 'module.'"):
        load_vgg19_state_dict(path)
    path = write_torchvision(tmp_path / "bn.pth", {**tiny(state), "features.1.running_mean": torch.zeros(64)})
    with pytest.raises(WeightsError, match="bn.pth: .*batch-norm"):
        load_vgg19_state_dict(path)
    nan = dict(state)
    nan["features.0.bias"] = torch.full((64,), float("nan"))
    path = write_torchvision(tmp_path / "nan.safetensors", nan)
    with pytest.raises(WeightsError, match="nan.safetensors: features.0.bias contains NaN"):
        load_vgg19_state_dict(path)


def test_checkpoint_excludes_and_keeps_vgg(vgg_random):
    loss = PerceptualLoss(vgg_random)
    loss(images(seed=0), images(seed=1))
    sd = loss.state_dict()
    assert set(sd) == {"running_mean", "initialized"}
    other = PerceptualLoss(VGG19Features.random(seed=1))
    before = other.vgg.features[0].weight.clone()
    other.load_state_dict(sd)  # strict, though the checkpoint has no VGG weights
    assert torch.equal(other.vgg.features[0].weight, before)
    torch.testing.assert_close(other.running_mean, loss.running_mean)
    assert other.initialized.all()


# ------------------------------------------------------------------- fallbacks


def test_laplacian_pyramid_collapses_back():
    x = torch.rand(2, 3, 16, 24)
    bands = laplacian_pyramid(x, 5)
    assert len(bands) == 5 and bands[-1].shape[-2:] == (1, 2)
    rec = bands[-1]
    for band in reversed(bands[:-1]):
        rec = band + F.interpolate(rec, size=band.shape[-2:], mode="bilinear", align_corners=False)
    torch.testing.assert_close(rec, x)
    assert len(laplacian_pyramid(torch.rand(1, 1, 4, 4), 5)) == 3


def test_laplacian_loss_value():
    a = torch.full((1, 3, 16, 16), -1.0)
    b = torch.full((1, 3, 16, 16), 1.0)
    # Constant images: all band-pass levels are 0, the residual differs by 1 in [0, 1] units.
    assert LaplacianPyramidLoss(levels=5)(a, b).item() == pytest.approx(1.0 / 5)
    assert LaplacianPyramidLoss(levels=5, weights=[0, 0, 0, 0, 1])(a, b).item() == pytest.approx(1.0)


def test_l1_ssim_components():
    a, b = images(seed=0), images(seed=1)
    l1 = ((a - b).abs() / 2).mean()
    assert L1SSIMLoss(alpha=0.0)(a, b).item() == pytest.approx(l1.item(), rel=1e-6)
    dssim = kornia.losses.ssim_loss((a + 1) / 2, (b + 1) / 2, window_size=11)
    assert L1SSIMLoss(alpha=1.0)(a, b).item() == pytest.approx(dssim.item(), rel=1e-6)
    assert L1SSIMLoss()(a, a).item() == pytest.approx(0.0, abs=1e-6)


def test_fallbacks_ignore_autocast():
    a = images(seed=0).requires_grad_()
    b = images(seed=1)
    for loss in (L1SSIMLoss(), LaplacianPyramidLoss()):
        ref = loss(a, b)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            got = loss(a.contiguous(memory_format=torch.channels_last), b)
        assert got.dtype == torch.float32
        torch.testing.assert_close(got, ref)


# --------------------------------------------------------------------- factory


@pytest.mark.parametrize("choice, cls", [("l1_ssim", L1SSIMLoss), ("laplacian", LaplacianPyramidLoss),
                                         ("vgg_random", PerceptualLoss), ("auto", LaplacianPyramidLoss)])
def test_build_fallbacks(choice, cls):
    loss = build_reconstruction_loss(LossConfig(reconstruction=choice))
    assert type(loss) is cls
    a = images(1, seed=0, size=16).requires_grad_()
    b = images(1, seed=1, size=16)
    value = loss(a, b)
    assert value.dim() == 0 and value.item() > 0
    value.backward()
    assert a.grad is not None and a.grad.abs().sum() > 0
    assert loss(b, b).item() == pytest.approx(0.0, abs=1e-6)


def test_build_auto_fallback_choice():
    loss = build_reconstruction_loss(LossConfig(reconstruction="auto", fallback="l1_ssim"))
    assert isinstance(loss, L1SSIMLoss)
    with pytest.raises(ConfigError, match="loss.fallback"):
        build_reconstruction_loss(LossConfig(reconstruction="auto", fallback="perceptual"))


def test_build_vgg_random_is_fixed_and_leaves_global_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    one = build_reconstruction_loss(LossConfig(reconstruction="vgg_random", vgg_relu=False,
                                               running_mean_momentum=0.5))
    assert torch.equal(torch.rand(3), expected)
    two = build_reconstruction_loss(LossConfig(reconstruction="vgg_random"))
    assert torch.equal(one.vgg.features[34].weight, two.vgg.features[34].weight)
    assert one.vgg.relu is False and two.vgg.relu is True and one.momentum == 0.5


def test_build_perceptual(weight_files):
    cfg = LossConfig(reconstruction="perceptual", vgg_weights=str(weight_files["pth"]), vgg_relu=False,
                     running_mean_momentum=0.9)
    loss = build_reconstruction_loss(cfg)
    assert isinstance(loss, PerceptualLoss) and loss.momentum == 0.9
    assert loss.vgg.preprocessing == "torchvision" and loss.vgg.relu is False
    assert loss.vgg.source == str(weight_files["pth"])
    loss = build_reconstruction_loss(LossConfig(reconstruction="auto", vgg_weights=str(weight_files["mat"])))
    assert isinstance(loss, PerceptualLoss)
    assert loss.vgg.preprocessing == "matconvnet" and loss.vgg.relu is True
    x = images(1, seed=0)
    assert loss(x, x).item() == 0.0


def test_build_errors(tmp_path, weight_files):
    with pytest.raises(ConfigError, match=r"loss\.vgg_weights=PATH.*loss\.reconstruction="):
        build_reconstruction_loss(LossConfig(reconstruction="perceptual"))
    with pytest.raises(WeightsError, match="missing.mat"):
        build_reconstruction_loss(LossConfig(reconstruction="auto", vgg_weights=str(tmp_path / "missing.mat")))
    with pytest.raises(ConfigError, match="unknown 'vgg'"):
        build_reconstruction_loss(LossConfig(reconstruction="vgg"))
    with pytest.warns(UserWarning, match="vgg_weights"):
        build_reconstruction_loss(LossConfig(reconstruction="laplacian", vgg_weights=str(weight_files["pth"])))


def test_normalized_laplacian_fallback_sits_near_one_and_checkpoints():
    from keypointgan.losses import LaplacianPyramidLoss

    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(2, 3, 32, 32, generator=g) * 2 - 1, torch.rand(2, 3, 32, 32, generator=g) * 2 - 1
    loss = LaplacianPyramidLoss(levels=3, normalize=True)
    assert float(loss(a, b)) == pytest.approx(1.0, abs=1e-5)  # first call: each level / itself
    assert float(loss(a, a)) == pytest.approx(0.0, abs=1e-7)
    raw = LaplacianPyramidLoss(levels=3)
    assert float(raw(a, b)) < 0.5  # unnormalised: raw pixel units
    state = loss.state_dict()
    assert set(state) == {"running_mean", "initialized"} and bool(state["initialized"].all())
