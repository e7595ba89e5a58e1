"""Psi: the conditional image decoder, (skeleton y*, appearance image x') -> image (fig. 18).

Two independent branches, each the shared trunk of [25] ending in a 1x1 convolution
(no norm, no activation): the skeleton y* (1 channel) and the appearance image x'
(3 channels), both to ``8w`` channels at ``S / 2**depth``. They are concatenated
(512 channels at the paper's width 32) and decoded without skips: two conv3 at the
bottom, then per level bilinear x2 and two conv3 halving the channels, except the
last level which has one conv3; a final conv3 gives 3 channels with no
nonlinearity (images live in [-1, 1] but the output is not squashed, as the release).

``pose_skips=True`` (``model.psi_pose_skips``, beyond the paper): y* is also
concatenated, resized (area), to the input of every decoder level, as the conditional
generator of Jakab et al. (NeurIPS 2018) feeds its pose heatmaps at every scale. In the
paper's Psi the pose reaches the output only through the 8 x 8 bottleneck at 64 px; a
Psi trained for 400 iterations on ground-truth poses reconstructed no better than one
given the pose of x' instead (docs/results.md), so the reconstruction hardly rewarded
a right pose.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import Encoder, Upsample2x, check_image_size, check_norm, conv_block, stage_widths, upsample2x


class ConditionalDecoder(nn.Module):
    """Psi: ``forward(y_star (B,1,S,S), x_app (B,3,S,S)) -> x_hat (B,3,S,S)``."""

    def __init__(self, base_width: int = 32, depth: int = 3, max_width: int = 256, norm: str = "batch",
                 pose_channels: int = 1, appearance_channels: int = 3, out_channels: int = 3,
                 pose_skips: bool = False) -> None:
        super().__init__()
        check_norm(norm)
        self.depth, self.pose_skips = depth, pose_skips
        w = stage_widths(base_width, depth, max_width)
        self.pose_encoder = Encoder(pose_channels, w[-1], base_width, depth, max_width, norm)
        self.appearance_encoder = Encoder(appearance_channels, w[-1], base_width, depth, max_width, norm)
        if pose_skips:
            self._build_pose_skip_decoder(w, norm, pose_channels, out_channels)
            return
        layers: list[nn.Module] = [conv_block(2 * w[-1], w[-1], 3, norm=norm), conv_block(w[-1], w[-1], 3, norm=norm)]
        for i in reversed(range(depth)):
            layers += [Upsample2x(),
                       conv_block(w[i + 1], w[i], 3, norm=norm)]
            if i > 0:
                layers.append(conv_block(w[i], w[i], 3, norm=norm))
        layers.append(nn.Conv2d(w[0], out_channels, 3, padding=1, bias=True))
        self.decoder = nn.Sequential(*layers)

    def _build_pose_skip_decoder(self, w: list[int], norm: str, pose_channels: int, out_channels: int) -> None:
        """The same decoder, each level's first conv also reading y* at that level's size.

        Built apart from ``self.decoder`` (a flat Sequential) so that checkpoints of the
        default Psi keep their parameter names."""
        self.bottom = nn.Sequential(conv_block(2 * w[-1], w[-1], 3, norm=norm), conv_block(w[-1], w[-1], 3, norm=norm))
        self.levels = nn.ModuleList()
        for i in reversed(range(self.depth)):
            blocks = [conv_block(w[i + 1] + pose_channels, w[i], 3, norm=norm)]
            if i > 0:
                blocks.append(conv_block(w[i], w[i], 3, norm=norm))
            self.levels.append(nn.Sequential(*blocks))
        self.head = nn.Conv2d(w[0], out_channels, 3, padding=1, bias=True)

    def forward(self, y_star: torch.Tensor, x_app: torch.Tensor) -> torch.Tensor:
        if y_star.shape[-2:] != x_app.shape[-2:] or y_star.shape[0] != x_app.shape[0]:
            raise ValueError(f"Psi: skeleton {tuple(y_star.shape)} and appearance image {tuple(x_app.shape)} "
                             "must have the same batch size and spatial size")
        check_image_size(y_star.shape[-1], self.depth, "Psi")
        check_image_size(y_star.shape[-2], self.depth, "Psi")
        z = torch.cat([self.pose_encoder(y_star), self.appearance_encoder(x_app)], 1)
        if not self.pose_skips:
            return self.decoder(z)
        z = self.bottom(z)
        for level in self.levels:
            z = upsample2x(z)
            pose = y_star if y_star.shape[-2:] == z.shape[-2:] else F.adaptive_avg_pool2d(y_star, z.shape[-2:])
            z = level(torch.cat([z, pose.to(z.dtype)], 1))
        return self.head(z)
