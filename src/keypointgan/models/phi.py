"""Phi: the image encoder, image (B, 3, S, S) -> skeleton image (B, 1, S, S) (fig. 17).

A U-Net built on the shared trunk of [25]. Encoder: conv7 + conv3 at full
resolution, ``depth`` stride-2 stages, a 1x1 convolution (no norm, no activation).
Decoder: two conv3 at the bottom; then per level bilinear x2, concatenation of the
encoder's feature map at that level, a 1x1 convolution merging back to the
upsampled width (the release's merge; the paper's table does not list it), and two
conv3 halving the channels. A final conv3 gives one channel with no nonlinearity,
so ``y`` is unbounded and the discriminator alone pushes it towards beta's range.
"""

from __future__ import annotations

import torch
from torch import nn

from .blocks import Encoder, check_image_size, check_norm, conv_block, stage_widths, upsample2x, uses_bias


class _DecoderLevel(nn.Module):
    """Upsample, concatenate the skip, merge by 1x1, two conv3."""

    def __init__(self, cin: int, cskip: int, cout: int, norm: str) -> None:
        super().__init__()
        self.merge = nn.Conv2d(cin + cskip, cin, 1, bias=uses_bias(norm))
        self.convs = nn.Sequential(conv_block(cin, cout, 3, norm=norm), conv_block(cout, cout, 3, norm=norm))

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.convs(self.merge(torch.cat([upsample2x(x), skip], 1)))


class ImageEncoder(nn.Module):
    """Phi: ``forward(x (B, in_channels, S, S)) -> y (B, out_channels, S, S)``, unbounded."""

    def __init__(self, base_width: int = 32, depth: int = 3, max_width: int = 256, norm: str = "batch",
                 in_channels: int = 3, out_channels: int = 1) -> None:
        super().__init__()
        check_norm(norm)
        self.depth = depth
        w = stage_widths(base_width, depth, max_width)
        self.encoder = Encoder(in_channels, w[-1], base_width, depth, max_width, norm)
        self.bottom = nn.Sequential(conv_block(w[-1], w[-1], 3, norm=norm), conv_block(w[-1], w[-1], 3, norm=norm))
        self.levels = nn.ModuleList(_DecoderLevel(w[i + 1], w[i], w[i], norm) for i in reversed(range(depth)))
        self.out = nn.Conv2d(w[0], out_channels, 3, padding=1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image_size(x.shape[-1], self.depth, "Phi")
        check_image_size(x.shape[-2], self.depth, "Phi")
        feats = self.encoder.features(x)
        h = self.bottom(self.encoder.head(feats[-1]))
        for level, skip in zip(self.levels, reversed(feats[:-1])):
            h = level(h, skip)
        return self.out(h)
