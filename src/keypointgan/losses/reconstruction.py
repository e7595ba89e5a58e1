"""Reconstruction losses: the paper's perceptual loss and fallbacks without VGG weights.

Pretrained VGG-19 weights cannot be downloaded here, so when the user supplies no
weights file one of these stands in for eq. 4:

* ``l1_ssim``: ``alpha * (1 - SSIM) / 2 + (1 - alpha) * L1`` on images mapped to
  [0, 1], alpha = 0.85, 11x11 Gaussian SSIM window (kornia).
* ``laplacian``: L1 between Laplacian pyramids (5 levels: 4 band-pass levels and the
  low-pass residual). Each level's term is a per-pixel mean, and the levels are
  weighted equally, so a coarse band counts as much as a fine one although it has
  4x fewer pixels per level down.
* ``vgg_random``: the perceptual loss (same six taps, same running-mean
  normalisation) on a VGG-19 with fixed Kaiming-random weights (seed
  ``VGG_RANDOM_SEED``).

How they compare on KeypointGAN training is measured in docs/losses.md.
Every loss: ``forward(pred, target) -> float32 scalar`` for (B, 3, H, W) images in
[-1, 1] with H, W >= 16. The pixel losses run in float32 with autocast disabled
(they are cheap, and SSIM's variance terms are unreliable in bf16).
"""

from __future__ import annotations

import math
import warnings
from typing import Sequence

import kornia
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import ConfigError, LossConfig
from ._checks import check_image_pair
from .perceptual import RunningMeanTerms, PerceptualLoss, VGG19Features, resize_weights

VGG_RANDOM_SEED = 0
RECONSTRUCTION_CHOICES = ("perceptual", "l1_ssim", "laplacian", "vgg_random", "auto")
FALLBACK_CHOICES = ("l1_ssim", "laplacian", "vgg_random")


def _unit_float32(x: Tensor) -> Tensor:
    """[-1, 1] -> [0, 1], float32."""
    return (x.float() + 1.0) * 0.5


class L1SSIMLoss(nn.Module):
    """``alpha * (1 - SSIM) / 2 + (1 - alpha) * L1`` on [0, 1] images (float32)."""

    def __init__(self, alpha: float = 0.85, window_size: int = 11) -> None:
        super().__init__()
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        self.alpha = alpha
        self.window_size = window_size

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        check_image_pair(pred, target)
        with torch.autocast(device_type=pred.device.type, enabled=False):
            p, t = _unit_float32(pred), _unit_float32(target)
            l1 = (p - t).abs().mean()
            # kornia's ssim_loss is already the structural dissimilarity (1 - SSIM) / 2.
            dssim = kornia.losses.ssim_loss(p, t, window_size=self.window_size, max_val=1.0)
            return self.alpha * dssim + (1.0 - self.alpha) * l1

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}, window_size={self.window_size}"


def _binomial_blur(x: Tensor) -> Tensor:
    """5x5 binomial ([1, 4, 6, 4, 1] / 16 outer product) blur, replicate borders, per channel."""
    k1 = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0], device=x.device, dtype=x.dtype) / 16.0
    kernel = (k1[:, None] * k1[None, :]).expand(x.shape[1], 1, 5, 5)
    return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="replicate"), kernel, groups=x.shape[1])


def motion_weights(x: Tensor, x_app: Tensor, strength: float) -> Tensor:
    """Per-pixel reconstruction weights ``1 + strength * m``, each image's weights of mean 1.

    ``m`` is ``|x - x'|`` averaged over channels, blurred twice (binomial 5x5) and divided
    by its per-image mean: large where the two frames differ, i.e. where the figure moved
    and Psi cannot copy the pixels from x'. (B, C, H, W) x2 in [-1, 1] -> (B, 1, H, W),
    no gradient (a weighting, not a target).
    """
    with torch.no_grad():
        m = (x.float() - x_app.float()).abs().mean(1, keepdim=True)
        m = _binomial_blur(_binomial_blur(m))
        m = m / m.mean((2, 3), keepdim=True).clamp_min(1e-6)
        w = 1.0 + strength * m
        return w / w.mean((2, 3), keepdim=True)


def laplacian_pyramid(x: Tensor, levels: int) -> list[Tensor]:
    """``levels - 1`` band-pass images (finest first) then the low-pass residual.

    Fewer levels are returned when the image is too small to halve ``levels - 1`` times.
    """
    levels = max(1, min(levels, int(math.log2(min(x.shape[-2:]))) + 1))
    bands: list[Tensor] = []
    cur = x
    for _ in range(levels - 1):
        low = _binomial_blur(cur)[..., ::2, ::2]
        up = F.interpolate(low, size=cur.shape[-2:], mode="bilinear", align_corners=False)
        bands.append(cur - up)
        cur = low
    bands.append(cur)
    return bands


class LaplacianPyramidLoss(RunningMeanTerms):
    """Mean over pyramid levels of the per-pixel mean |L_j(pred) - L_j(target)| ([0, 1] images).

    ``weights`` (one per level, finest first) default to equal; they are normalised to
    sum to 1 over the levels actually present. With ``normalize`` each level is divided
    by its running mean, as the release does for the VGG terms of eq. 4: levels weigh
    evenly and the loss sits near 1, on the perceptual loss's scale, so the paper's
    loss weights (eq. 6) keep their meaning.
    """

    def __init__(self, levels: int = 5, weights: Sequence[float] | None = None, normalize: bool = False,
                 momentum: float = 0.99) -> None:
        super().__init__(levels, momentum)
        self.normalize = normalize
        if levels < 1:
            raise ValueError(f"levels must be >= 1, got {levels}")
        if weights is not None and len(weights) != levels:
            raise ValueError(f"{len(weights)} level weights for {levels} levels")
        self.levels = levels
        self.weights = list(weights) if weights is not None else [1.0] * levels

    def forward(self, pred: Tensor, target: Tensor, weight: Tensor | None = None) -> Tensor:
        """``weight`` (B, 1, H, W), optional: per-pixel weights (:func:`motion_weights`), resized to each level."""
        check_image_pair(pred, target)
        with torch.autocast(device_type=pred.device.type, enabled=False):
            diff = _unit_float32(pred) - _unit_float32(target)
            # The pyramid is linear, so the pyramid of the difference is the difference of pyramids.
            bands = laplacian_pyramid(diff, self.levels)
            w = torch.tensor(self.weights[: len(bands)], device=diff.device)
            if weight is None:
                terms = torch.stack([b.abs().mean() for b in bands])
            else:
                terms = torch.stack([(b.abs() * resize_weights(weight.float(), b.shape[-2:])).mean() for b in bands])
            if self.normalize:
                terms = self.normalized(terms) if len(bands) == self.levels else terms / terms.detach().clamp_min(1e-12)
            return (w * terms).sum() / w.sum()

    def extra_repr(self) -> str:
        return f"levels={self.levels}, weights={self.weights}"


def resolve_reconstruction(cfg: LossConfig) -> str:
    """The concrete loss name ``cfg.reconstruction`` selects ("auto" resolved)."""
    choice = cfg.reconstruction
    if choice not in RECONSTRUCTION_CHOICES:
        raise ConfigError(f"loss.reconstruction: unknown '{choice}' "
                          f"(known: {', '.join(RECONSTRUCTION_CHOICES)})")
    if choice == "auto":
        if cfg.vgg_weights:
            return "perceptual"
        if cfg.fallback not in FALLBACK_CHOICES:
            raise ConfigError(f"loss.fallback: '{cfg.fallback}' is not a fallback "
                              f"(known: {', '.join(FALLBACK_CHOICES)})")
        return cfg.fallback
    return choice


def build_reconstruction_loss(cfg: LossConfig) -> nn.Module:
    """The reconstruction loss of eq. 6 that ``cfg`` asks for, as an ``nn.Module``.

    "perceptual" needs ``cfg.vgg_weights`` (a ``WeightsError`` is raised if that file is
    missing or wrong; there is never a silent fallback). "auto" is "perceptual" when a
    weights file is given and ``cfg.fallback`` otherwise.
    """
    name = resolve_reconstruction(cfg)
    if cfg.motion_weight > 0 and name == "l1_ssim":
        raise ConfigError("loss.motion_weight works with the laplacian and perceptual losses, not l1_ssim "
                          "(set loss.motion_weight=0 or choose another loss.reconstruction)")
    if name == "perceptual":
        if not cfg.vgg_weights:
            raise ConfigError(
                "loss.reconstruction=perceptual needs VGG-19 weights, which are never downloaded: "
                "pass loss.vgg_weights=PATH (a torchvision vgg19 state dict .pth/.safetensors or "
                "MatConvNet imagenet-vgg-verydeep-19.mat), or choose a fallback with "
                f"loss.reconstruction={'|'.join(FALLBACK_CHOICES)} (see docs/losses.md)")
        return PerceptualLoss.from_file(cfg.vgg_weights, relu=cfg.vgg_relu,
                                        momentum=cfg.running_mean_momentum)
    if cfg.vgg_weights:  # only reachable when a fallback was chosen explicitly
        warnings.warn(f"loss.vgg_weights is set but loss.reconstruction={name} does not use it",
                      stacklevel=2)
    if name == "l1_ssim":
        return L1SSIMLoss()
    if name == "laplacian":
        return LaplacianPyramidLoss(normalize=cfg.normalize_fallback, momentum=cfg.running_mean_momentum)
    vgg = VGG19Features.random(seed=VGG_RANDOM_SEED, relu=cfg.vgg_relu)
    return PerceptualLoss(vgg, momentum=cfg.running_mean_momentum)
