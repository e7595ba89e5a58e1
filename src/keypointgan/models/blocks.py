"""Building blocks shared by Phi, Psi, eta and the discriminator.

Bias convention (as the authors' release): a convolution followed by BatchNorm has no
bias (BatchNorm's shift makes it redundant); with InstanceNorm or no norm it has one.
The bias-free 1x1 convolutions inside a BatchNorm network follow the same rule, and
every network's output convolution always has a bias.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

NORMS = ("batch", "instance", "none")
ACTIVATIONS = ("relu", "lrelu", "none")


def check_norm(norm: str) -> str:
    """Validate a norm name (clear error listing the choices)."""
    if norm not in NORMS:
        raise ValueError(f"unknown norm '{norm}' (choose from {NORMS})")
    return norm


def norm_layer(norm: str, channels: int) -> Optional[nn.Module]:
    """BatchNorm (affine), InstanceNorm (no affine, no running stats, as the release) or None."""
    check_norm(norm)
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    if norm == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    return None


def activation(act: str) -> Optional[nn.Module]:
    """ReLU, LeakyReLU(0.2) or None."""
    if act == "relu":
        return nn.ReLU(inplace=True)
    if act == "lrelu":
        return nn.LeakyReLU(0.2, inplace=True)
    if act == "none":
        return None
    raise ValueError(f"unknown activation '{act}' (choose from {ACTIVATIONS})")


def uses_bias(norm: str) -> bool:
    """Whether a convolution in a network normalised by ``norm`` carries a bias (not before BatchNorm)."""
    return check_norm(norm) != "batch"


def conv_block(cin: int, cout: int, kernel: int = 3, stride: int = 1, norm: str = "batch",
               act: str = "relu", padding: Optional[int] = None, bias: Optional[bool] = None) -> nn.Sequential:
    """Conv -> norm -> activation; 'same' padding (kernel // 2) unless given."""
    pad = kernel // 2 if padding is None else padding
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, kernel, stride, pad, bias=uses_bias(norm) if bias is None else bias)]
    for m in (norm_layer(norm, cout), activation(act)):
        if m is not None:
            layers.append(m)
    return nn.Sequential(*layers)


def stage_widths(base_width: int, depth: int, max_width: int) -> list[int]:
    """Channels at full resolution and after each of the ``depth`` downsamplings (doubling, capped)."""
    if base_width < 1 or depth < 1 or max_width < 1:
        raise ValueError(f"need base_width, depth, max_width >= 1, got {base_width}, {depth}, {max_width}")
    return [min(base_width * 2**i, max_width) for i in range(depth + 1)]


def check_image_size(size: int, depth: int, where: str) -> None:
    """The U-Net and the heatmap grid need ``size`` divisible by ``2**depth``."""
    if size < 2**depth or size % 2**depth:
        raise ValueError(f"{where}: image size {size} must be a positive multiple of 2**depth = {2**depth} "
                         f"(depth {depth})")


class Encoder(nn.Module):
    """The shared trunk of [25] used by Phi, both branches of Psi and eta (figs. 17-19).

    conv7 in->w, conv3 w->w at full resolution; ``depth`` stages of
    [stride-2 conv3 -> 2x channels (capped at ``max_width``), conv3]; then a 1x1
    convolution to ``out_channels`` with no norm and no activation.
    """

    def __init__(self, in_channels: int, out_channels: int, base_width: int, depth: int, max_width: int,
                 norm: str, out_bias: Optional[bool] = None) -> None:
        super().__init__()
        widths = stage_widths(base_width, depth, max_width)
        self.widths = widths
        self.stem = nn.Sequential(conv_block(in_channels, widths[0], 7, norm=norm),
                                  conv_block(widths[0], widths[0], 3, norm=norm))
        self.stages = nn.ModuleList(
            nn.Sequential(conv_block(widths[i], widths[i + 1], 3, 2, norm=norm),
                          conv_block(widths[i + 1], widths[i + 1], 3, norm=norm))
            for i in range(depth))
        self.head = nn.Conv2d(widths[-1], out_channels, 1, bias=uses_bias(norm) if out_bias is None else out_bias)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Feature maps at every level: full resolution first, the bottom stage (before the 1x1) last."""
        feats = [self.stem(x)]
        for stage in self.stages:
            feats.append(stage(feats[-1]))
        return feats

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x)[-1])


def upsample2x(x: torch.Tensor) -> torch.Tensor:
    """Bilinear x2 (align_corners=False), the decoders' upsampling: (B,C,H,W) -> (B,C,2H,2W).

    On CPU, torch 2.13's NCHW bilinear kernel is ~3-5x slower than its channels_last one
    for wide feature maps (forward and backward; docs/performance.md), so an NCHW input
    with many channels is upsampled in channels_last and handed back in NCHW: the
    same values, bit for bit, for a fraction of the time.
    """
    if (x.device.type == "cpu" and x.dim() == 4 and x.shape[1] >= _CL_UPSAMPLE_MIN_CHANNELS
            and x.is_contiguous() and not x.is_contiguous(memory_format=torch.channels_last)):
        y = nn.functional.interpolate(x.contiguous(memory_format=torch.channels_last), scale_factor=2.0,
                                      mode="bilinear", align_corners=False)
        return y.contiguous()
    return nn.functional.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)


_CL_UPSAMPLE_MIN_CHANNELS = 8  # below this the NCHW kernel is as fast (1-3 channel images)


class Upsample2x(nn.Module):
    """:func:`upsample2x` as a module (for ``nn.Sequential`` decoders; no parameters)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upsample2x(x)


def fold_batch_norms(module: nn.Module) -> int:
    """Fold every eval-mode ``BatchNorm2d`` that directly follows a ``Conv2d`` in an
    ``nn.Sequential`` into that convolution, in place; returns how many were folded.

    For inference only (the model must be in eval mode: running statistics, no updates):
    ``BN(conv(x)) = conv'(x)`` with ``w' = w * g / sqrt(v + eps)`` and
    ``b' = (b - m) * g / sqrt(v + eps) + beta``, so the outputs agree up to rounding and
    one pass over every activation map is saved. The BatchNorm becomes ``nn.Identity``.
    """
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    folded = 0
    for seq in [m for m in module.modules() if isinstance(m, nn.Sequential)]:
        for i in range(len(seq) - 1):
            conv, bn = seq[i], seq[i + 1]
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                if conv.training or bn.training:
                    raise RuntimeError("fold_batch_norms: put the model in eval mode first (running statistics)")
                if not bn.track_running_stats or bn.running_mean is None:
                    continue  # normalises by batch statistics even in eval mode: not foldable
                seq[i] = fuse_conv_bn_eval(conv, bn)
                seq[i + 1] = nn.Identity()
                folded += 1
    return folded
