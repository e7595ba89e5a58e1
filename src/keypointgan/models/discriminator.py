"""The skeleton discriminator D_Y: one PatchGAN per scale of the skeleton image (fig. 20).

Each PatchGAN is CycleGAN's NLayerDiscriminator, as in the release: 4x4 kernels,
padding 1, ``n_layers`` stride-2 convolutions (ndf, 2 ndf, 4 ndf, ... capped at 8 ndf),
one stride-1 convolution to ``min(2**n_layers, 8) * ndf`` (512 at the paper's 3
layers), and a stride-1 convolution to one channel (raw LSGAN scores, no sigmoid).
InstanceNorm (no affine) and LeakyReLU 0.2. The first layer has no norm, as in
CycleGAN and the release; the paper's table shows InstanceNorm on it too
(``first_norm=True`` / ``ModelConfig.disc_first_norm``).

``minibatch_std`` (beyond the paper; ProGAN's minibatch standard deviation) appends,
after the stride-2 layers, one channel holding the feature std over groups of that
many consecutive samples: a batch of one skeleton repeated is then told apart from a
batch of prior poses, which a per-sample PatchGAN cannot do (mode collapse to the
mean pose satisfies it). Groups are consecutive so a batch ``cat([real, fake])`` with
both halves a multiple of the group size never mixes the two.

The multi-scale wrapper resizes the input to each scale (bilinear without
antialiasing, as the release; or ``"area"``, i.e. average pooling) and returns the
list of score maps, full scale first.
"""

from __future__ import annotations

from typing import Sequence

import math

import torch
from torch import nn

from .blocks import check_norm, conv_block

RESIZE_MODES = ("bilinear", "area")


def _patchgan_sizes(size: int, n_layers: int) -> list[int]:
    """Spatial size after every layer of a PatchGAN fed ``size`` px (4x4 kernels, padding 1)."""
    sizes = []
    for _ in range(n_layers):
        size = (size - 2) // 2 + 1
        sizes.append(size)
    for _ in range(2):
        size = size - 1
        sizes.append(size)
    return sizes


def patchgan_output_size(size: int, n_layers: int) -> int:
    """Side of the score map for a ``size`` px input; <= 0 when the input is too small."""
    sizes = _patchgan_sizes(size, n_layers)
    return sizes[-1] if min(sizes) >= 1 else min(sizes)


def max_patchgan_layers(size: int) -> int:
    """The most stride-2 layers for which a ``size`` px input still gives a >= 1x1 score map."""
    n = 0
    while patchgan_output_size(size, n + 1) >= 1:
        n += 1
    return n


class MinibatchStd(nn.Module):
    """``(B, C, H, W) -> (B, C + 1, H, W)``: appends the mean feature std over groups of
    ``group`` consecutive samples (``gcd(group, B)`` when ``group`` does not divide B)."""

    def __init__(self, group: int) -> None:
        super().__init__()
        if group < 2:
            raise ValueError(f"MinibatchStd: group must be >= 2, got {group}")
        self.group = group

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        g = math.gcd(self.group, b)
        if g < 2:
            return torch.cat([x, x.new_zeros(b, 1, h, w)], dim=1)
        grouped = x.float().reshape(b // g, g, *x.shape[1:])
        std = (grouped.var(dim=1, unbiased=False) + 1e-8).sqrt().mean(dim=(1, 2, 3))  # (B/g,)
        feat = std.repeat_interleave(g).reshape(b, 1, 1, 1).expand(b, 1, h, w).to(x.dtype)
        return torch.cat([x, feat], dim=1)

    def extra_repr(self) -> str:
        return f"group={self.group}"


class PatchGAN(nn.Module):
    """``forward(y (B,C,s,s)) -> scores (B,1,s',s')``; s' = 14 for s = 128 with 3 layers."""

    def __init__(self, in_channels: int = 1, ndf: int = 64, n_layers: int = 3, norm: str = "instance",
                 first_norm: bool = False, minibatch_std: int = 0) -> None:
        super().__init__()
        check_norm(norm)
        if n_layers < 1:
            raise ValueError(f"PatchGAN: need at least one stride-2 layer, got {n_layers}")
        self.n_layers = n_layers
        widths = [ndf * min(2**i, 8) for i in range(n_layers + 1)]
        layers = [conv_block(in_channels, widths[0], 4, 2, norm if first_norm else "none", "lrelu", padding=1)]
        for i in range(1, n_layers):
            layers.append(conv_block(widths[i - 1], widths[i], 4, 2, norm, "lrelu", padding=1))
        extra = 0
        if minibatch_std:
            layers.append(MinibatchStd(minibatch_std))
            extra = 1
        layers.append(conv_block(widths[n_layers - 1] + extra, widths[n_layers], 4, 1, norm, "lrelu", padding=1))
        layers.append(nn.Conv2d(widths[n_layers], 1, 4, 1, 1, bias=True))
        self.model = nn.Sequential(*layers)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.model(y)


def scaled_size(size: int, scale: float) -> int:
    """Side of the input of the discriminator at ``scale``."""
    return max(1, int(round(size * scale)))


class MultiScaleDiscriminator(nn.Module):
    """``forward(y (B,C,S,S)) -> [scores (B,1,s_i,s_i) for each scale]``, one PatchGAN per scale."""

    def __init__(self, image_size: int, scales: Sequence[float] = (1.0, 0.5, 0.25), in_channels: int = 1,
                 ndf: int = 64, n_layers: int = 3, norm: str = "instance", first_norm: bool = False,
                 resize: str = "bilinear", minibatch_std: int = 0) -> None:
        super().__init__()
        if not scales:
            raise ValueError("MultiScaleDiscriminator: disc_scales is empty")
        if resize not in RESIZE_MODES:
            raise ValueError(f"unknown discriminator resize mode '{resize}' (choose from {RESIZE_MODES})")
        for s in scales:
            if not 0 < s <= 1:
                raise ValueError(f"MultiScaleDiscriminator: scales must be in (0, 1], got {s}")
            side = scaled_size(image_size, s)
            out = patchgan_output_size(side, n_layers)
            if out < 1:
                fit = max_patchgan_layers(side)
                hint = (f"use disc_layers <= {fit}" if fit >= 1 else "drop this scale") + \
                    " (model.disc_layers) or remove the scale from model.disc_scales"
                raise ValueError(
                    f"MultiScaleDiscriminator: at scale {s} the {image_size} px image is {side} px, too small for a "
                    f"PatchGAN with {n_layers} stride-2 layers (its score map would be {max(out, 0)}x{max(out, 0)}); "
                    f"{hint}")
        self.image_size, self.scales, self.resize = image_size, [float(s) for s in scales], resize
        self.nets = nn.ModuleList(PatchGAN(in_channels, ndf, n_layers, norm, first_norm, minibatch_std)
                                  for _ in scales)

    def output_sizes(self, size: int | None = None) -> list[int]:
        """Side of every scale's score map for a ``size`` px input (default: ``image_size``)."""
        size = self.image_size if size is None else size
        return [patchgan_output_size(scaled_size(size, s), self.nets[0].n_layers) for s in self.scales]

    def _resize(self, y: torch.Tensor, scale: float) -> torch.Tensor:
        if scale == 1.0:
            return y
        size = (scaled_size(y.shape[-2], scale), scaled_size(y.shape[-1], scale))
        if self.resize == "area":
            return nn.functional.interpolate(y, size=size, mode="area")
        return nn.functional.interpolate(y, size=size, mode="bilinear", align_corners=False)

    def forward(self, y: torch.Tensor) -> list[torch.Tensor]:
        return [net(self._resize(y, s)) for net, s in zip(self.nets, self.scales)]
