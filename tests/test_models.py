"""Phi, Psi, eta, D and their composition (eq. 3): shapes, gradients, init, bf16, counts."""

from __future__ import annotations

import pytest
import torch

from keypointgan.config import Config, ModelConfig, RenderConfig, load_config
from keypointgan.models import (ConditionalDecoder, ImageEncoder, KeypointGAN, MultiScaleDiscriminator,
                                SkeletonRegressor, build_discriminator, build_models, patchgan_output_size)
from keypointgan.models.summary import format_parameter_table, parameter_counts
from keypointgan.pose import SkeletonError, get_skeleton, heatmaps_to_keypoints

# The numbers written in docs/architecture.md.
PAPER_COUNTS = {
    "h36m": {"phi": 3_134_081, "psi": 4_825_635, "eta": 1_181_184, "discriminator": 8_288_067,
             "total": 17_428_967},
    "synth_humanoid": {"phi": 3_134_081, "psi": 4_825_635, "eta": 1_176_815, "discriminator": 8_288_067,
                       "total": 17_424_598},
}
CPU_COUNTS_SYNTH = {"phi": 3_134_081, "psi": 4_825_635, "eta": 1_176_815, "discriminator": 1_982_787,
                    "total": 11_119_318}


def small_config(size: int = 32, width: int = 8, disc_layers: int = 1, **model) -> Config:
    cfg = load_config("cpu")
    cfg.model.image_size, cfg.model.base_width, cfg.model.disc_layers = size, width, disc_layers
    for k, v in model.items():
        setattr(cfg.model, k, v)
    return cfg


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.mark.parametrize("size,width,layers", [(32, 8, 1), (64, 8, 2), (128, 4, 3)])
def test_output_shapes(size: int, width: int, layers: int) -> None:
    gan, disc = build_models(small_config(size, width, layers))
    k = gan.num_keypoints
    x, xa = torch.randn(2, 3, size, size), torch.randn(2, 3, size, size)
    out = gan(x, xa)
    assert out.y.shape == (2, 1, size, size)
    assert out.heatmaps.shape == (2, k, size // 8, size // 8)
    assert out.keypoints.shape == (2, k, 2) and out.keypoints.abs().max() <= 1
    assert out.y_star.shape == (2, 1, size, size) and out.y_star.dtype == torch.float32
    assert out.x_hat.shape == (2, 3, size, size)
    torch.testing.assert_close(out.keypoints, heatmaps_to_keypoints(out.heatmaps))
    scores = disc(out.y)
    assert [tuple(s.shape) for s in scores] == [(2, 1, n, n) for n in disc.output_sizes()]
    det = gan.detect(x)
    torch.testing.assert_close(det.keypoints, out.keypoints)


def test_paper_discriminator_matches_fig20() -> None:
    d = MultiScaleDiscriminator(128, [1.0, 0.5, 0.25], ndf=8, n_layers=3)
    assert d.output_sizes() == [14, 6, 2]  # fig. 20: 128 -> 64 -> 32 -> 16 -> 15 -> 14
    assert [tuple(s.shape[-2:]) for s in d(torch.randn(1, 1, 128, 128))] == [(14, 14), (6, 6), (2, 2)]
    assert patchgan_output_size(16, 3) < 1 and patchgan_output_size(16, 2) == 2


@pytest.mark.parametrize("depth", [2, 3, 4])
def test_heatmap_resolution(depth: int) -> None:
    eta = SkeletonRegressor(7, base_width=4, depth=depth)
    kp, hm = eta(torch.randn(2, 1, 64, 64))
    assert hm.shape == (2, 7, 64 // 2**depth, 64 // 2**depth) and kp.shape == (2, 7, 2)


def test_image_size_must_fit_depth() -> None:
    with pytest.raises(ValueError, match="multiple of 2\\*\\*depth"):
        ImageEncoder(base_width=4, depth=3)(torch.randn(1, 3, 36, 36))
    gan, _ = build_models(small_config(32))
    with pytest.raises(ValueError, match="x_app must be"):
        gan(torch.randn(1, 3, 32, 32), torch.randn(1, 3, 64, 64))
    assert gan.detect(torch.randn(1, 3, 48, 48)).heatmaps.shape[-1] == 6  # any multiple of 8


def test_gradient_flows_through_bottleneck() -> None:
    """A loss on x_hat reaches Phi's first conv only via eta and beta (Psi sees y_star, not y)."""
    gan, _ = build_models(small_config(32))
    x, xa = torch.randn(2, 3, 32, 32), torch.randn(2, 3, 32, 32)
    out = gan(x, xa)
    loss = (out.x_hat - x).square().mean()
    g_kp, g_y = torch.autograd.grad(loss, [out.keypoints, out.y], retain_graph=True)
    assert g_kp.abs().sum() > 0 and g_y.abs().sum() > 0
    loss.backward()
    first = gan.phi.encoder.stem[0][0].weight
    assert first.grad is not None and torch.isfinite(first.grad).all() and first.grad.abs().sum() > 0
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in gan.eta.parameters())

    # Cut the bottleneck: Phi then gets no gradient from x_hat at all.
    gan.zero_grad(set_to_none=True)
    y = gan.phi(x)
    x_hat = gan.reconstruct(gan.render(gan.eta(y).keypoints.detach()), xa)
    x_hat.square().mean().backward()
    assert first.grad is None


def test_frozen_eta_passes_gradient() -> None:
    gan, _ = build_models(small_config(32))
    gan.set_eta_trainable(False)
    out = gan(torch.randn(2, 3, 32, 32), torch.randn(2, 3, 32, 32))
    out.x_hat.square().mean().backward()
    assert all(p.grad is None for p in gan.eta.parameters())
    assert gan.phi.encoder.stem[0][0].weight.grad.abs().sum() > 0
    gan.set_eta_trainable(True)
    assert all(p.requires_grad for p in gan.eta.parameters())
    assert {id(p) for p in gan.generator_parameters()} == \
        {id(p) for p in [*gan.phi.parameters(), *gan.psi.parameters()]}


def test_discriminator_scale_error() -> None:
    cfg = ModelConfig(image_size=64, disc_layers=3, disc_width=8)
    with pytest.raises(ValueError, match=r"scale 0\.25 .* 16 px.*disc_layers <= 2"):
        build_discriminator(cfg)
    cfg.disc_layers = 2
    assert build_discriminator(cfg).output_sizes() == [14, 6, 2]
    build_discriminator(load_config("cpu").model)  # the cpu preset fits


def test_discriminator_options() -> None:
    d = MultiScaleDiscriminator(32, [1.0, 0.5], ndf=4, n_layers=1, first_norm=True, resize="area")
    assert isinstance(d.nets[0].model[0][1], torch.nn.InstanceNorm2d)
    assert len(MultiScaleDiscriminator(32, [1.0], ndf=4, n_layers=1).nets[0].model[0]) == 2  # conv, lrelu
    assert [s.shape[-1] for s in d(torch.randn(2, 1, 32, 32))] == [14, 6]
    with pytest.raises(ValueError, match="resize"):
        MultiScaleDiscriminator(32, [1.0], resize="nearest")


def test_wrong_number_of_keypoints() -> None:
    gan, _ = build_models(small_config(32))  # synth_humanoid, K = 15
    with pytest.raises(SkeletonError, match=r"expected \(\.\.\., 15, 2\).*got shape \(2, 32, 2\)"):
        gan.render(torch.zeros(2, 32, 2))


def test_build_from_model_config() -> None:
    sk = get_skeleton("h36m")
    gan = KeypointGAN(ModelConfig(image_size=32, base_width=4), sk, RenderConfig(form="paper", signed=False))
    assert gan.num_keypoints == 32 and gan.beta.form == "paper"
    assert gan.eta.encoder.head.out_channels == 32
    with pytest.raises(ValueError, match="skeleton"):
        KeypointGAN(ModelConfig())


def test_init_statistics() -> None:
    gan, disc = build_models(load_config("paper"), "h36m")
    convs = [m for net in (gan, disc) for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    w = torch.cat([m.weight.flatten() for m in convs])
    assert abs(w.mean().item()) < 1e-4 and abs(w.std().item() - 0.02) < 2e-4
    assert all(m.bias is None or not m.bias.any() for m in convs)
    bn = [m for m in gan.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    bw = torch.cat([m.weight for m in bn])
    assert abs(bw.mean().item() - 1) < 2e-3 and abs(bw.std().item() - 0.02) < 2e-3
    assert not any(m.bias.any() for m in bn)
    inorm = [m for m in (*gan.eta.modules(), *disc.modules()) if isinstance(m, torch.nn.InstanceNorm2d)]
    assert inorm and all(m.weight is None for m in inorm)  # release: no affine


def test_paper_architecture_widths() -> None:
    psi = ConditionalDecoder(32, 3, 256)
    assert psi.decoder[0][0].in_channels == 512  # the two 256-channel branches concatenated
    phi = ImageEncoder(32, 3, 256)
    assert [lvl.merge.in_channels for lvl in phi.levels] == [384, 192, 96]
    assert phi.encoder.stem[0][0].kernel_size == (7, 7) and phi.out.out_channels == 1


def test_channels_last_bf16_autocast() -> None:
    gan, disc = build_models(small_config(64, 8, 2))
    gan.to(memory_format=torch.channels_last)
    disc.to(memory_format=torch.channels_last)
    cl = torch.channels_last
    x, xa = torch.randn(4, 3, 64, 64).to(memory_format=cl), torch.randn(4, 3, 64, 64).to(memory_format=cl)
    kp = torch.rand(4, gan.num_keypoints, 2) * 1.6 - 0.8
    y_star = gan.render(kp)

    def rel(a: torch.Tensor, b: torch.Tensor) -> float:
        return ((a.float() - b.float()).norm() / b.float().norm()).item()

    with torch.no_grad():
        ref = (gan.phi(x), gan.eta(y_star), gan.psi(y_star, xa), disc(y_star))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = gan(x, xa)
            low = (gan.phi(x), gan.eta(y_star), gan.psi(y_star, xa), disc(y_star))
    assert all(torch.isfinite(t.float()).all() for t in out if t is not None)
    assert out.x_hat.dtype == torch.bfloat16 and out.keypoints.dtype == torch.float32
    assert rel(low[0], ref[0]) < 0.1
    assert (low[1].keypoints - ref[1].keypoints).abs().max() < 0.02
    assert rel(low[2], ref[2]) < 0.15
    assert all(rel(a, b) < 0.1 for a, b in zip(low[3], ref[3]))


def test_parameter_counts_paper_preset() -> None:
    cfg = load_config("paper")
    for name, expected in PAPER_COUNTS.items():
        counts = parameter_counts(cfg, name)
        assert counts == expected
        assert counts == parameter_counts(cfg, name)  # deterministic
    assert parameter_counts(load_config("cpu"), "synth_humanoid") == CPU_COUNTS_SYNTH
    table = format_parameter_table(PAPER_COUNTS["h36m"], "paper, h36m")
    assert "17,428,967" in table and table.startswith("paper, h36m")


@pytest.mark.parametrize("channels", [3, 32])
@pytest.mark.parametrize("channels_last", [False, True])
def test_upsample2x_is_bilinear_bit_for_bit(channels: int, channels_last: bool) -> None:
    """The decoders' upsampling (channels_last detour on CPU for wide NCHW maps) gives the
    values and gradients of plain bilinear interpolation, in the input's layout."""
    from keypointgan.models.blocks import Upsample2x, upsample2x

    x = torch.randn(2, channels, 5, 7)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
    ref = torch.nn.functional.interpolate(a, scale_factor=2.0, mode="bilinear", align_corners=False)
    out = upsample2x(b)
    assert out.shape == (2, channels, 10, 14)
    assert torch.equal(out, ref)
    assert out.is_contiguous(memory_format=torch.channels_last) == channels_last
    g = torch.randn_like(ref)
    ref.backward(g)
    out.backward(g)
    assert torch.allclose(b.grad, a.grad, atol=1e-6, rtol=0)
    assert torch.equal(Upsample2x()(x), upsample2x(x))


def test_fold_batch_norms_keeps_outputs_and_removes_every_norm() -> None:
    from keypointgan.models.blocks import fold_batch_norms

    model = KeypointGAN(small_config()).eval()
    for m in model.modules():  # running statistics and affine parameters far from identity
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_(0, 0.5)
            m.running_var.uniform_(0.3, 3.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.normal_(0, 0.3)
    n_bn = sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    x, x_app = torch.rand(3, 3, 32, 32) * 2 - 1, torch.rand(3, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        before = model.detect(x)
        rec_before = model.reconstruct(model.psi_pose(before.keypoints), x_app)
        assert fold_batch_norms(model) == n_bn > 0
        after = model.detect(x)
        rec_after = model.reconstruct(model.psi_pose(before.keypoints), x_app)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    assert torch.allclose(after.y, before.y, atol=1e-5, rtol=1e-4)
    assert torch.allclose(after.keypoints, before.keypoints, atol=1e-5)
    assert torch.allclose(rec_after, rec_before, atol=1e-5, rtol=1e-4)
    with pytest.raises(RuntimeError, match="eval mode"):
        fold_batch_norms(KeypointGAN(small_config()).train())
