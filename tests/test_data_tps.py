"""Thin-plate-spline warps: identity at sd 0, exact frame convention, seeded, non-trivial."""

from __future__ import annotations

import numpy as np
import torch

from keypointgan.data.tps import IDENTITY, TPSParams, control_points, random_pair, sample_kernel_weights, warp


def _images(b=2, s=32):
    return torch.rand(b, 3, s, s, generator=torch.Generator().manual_seed(0)) * 2 - 1


def test_identity_when_all_sd_zero():
    img = _images()
    x, x_app = random_pair(img, np.random.default_rng(0), IDENTITY)
    assert x.shape == img.shape and x_app.shape == img.shape
    assert torch.allclose(x, img, atol=1e-6) and torch.allclose(x_app, img, atol=1e-6)


def test_translation_follows_pose_coords():
    """A canvas translation t moves content by 2t normalised = t * W pixels (here 4 px)."""
    img = _images(1)
    aff = torch.tensor([[[0.125, 0.0], [1.0, 0.0], [0.0, 1.0]]])
    out = warp(img, aff)
    # output pixel u samples input at u + 0.25 (normalised): 4 px to the right
    assert torch.allclose(out[..., :, :-4], img[..., :, 4:], atol=1e-5)
    assert torch.allclose(out[..., :, -4:], img[..., :, -1:].expand(-1, -1, -1, 4), atol=1e-5)  # replicate


def test_seeded_and_nontrivial():
    img = _images()
    a = random_pair(img, np.random.default_rng(7))
    b = random_pair(img, np.random.default_rng(7))
    c = random_pair(img, np.random.default_rng(8))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[1], c[1])
    assert (a[1] - img).abs().mean() > 0.01 and (a[0] - a[1]).abs().mean() > 0.01


def test_tps_only_on_second_image():
    p = TPSParams(rotation_sd=0.0, scale_sd=0.0, translation_sd=0.0)
    img = _images()
    x, x_app = random_pair(img, np.random.default_rng(1), p)
    assert torch.allclose(x, img, atol=1e-6)  # affine-only warp with zero affine noise
    assert (x_app - img).abs().max() > 0.05


def test_parameter_shapes():
    assert control_points(10).shape == (100, 2)
    w = sample_kernel_weights(3, TPSParams(), np.random.default_rng(0))
    assert w.shape == (3, 100, 2)
    assert 0.0005 < w.std().item() < 0.005
