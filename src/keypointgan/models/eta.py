"""eta: the skeleton regressor, skeleton image -> K heatmaps -> K keypoints (fig. 19, F.2).

The shared trunk of [25] (InstanceNorm without affine parameters by default, as the
release; the paper's table says BatchNorm: ``ModelConfig.eta_norm``) and a 1x1
convolution to K heatmaps at ``S / 2**depth``. Keypoints are read out by
soft-argmax (``pose.softargmax``), (x, y) in [-1, 1] on the pixel-centre grid.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from ..pose.softargmax import MODES, heatmaps_to_keypoints
from .blocks import Encoder, check_image_size, check_norm


class EtaOutput(NamedTuple):
    """What eta reads from a skeleton image."""

    keypoints: torch.Tensor  # (B, K, 2), (x, y) in [-1, 1], float32
    heatmaps: torch.Tensor  # (B, K, S / 2**depth, S / 2**depth), raw logits (before the softmax)


class SkeletonRegressor(nn.Module):
    """eta: ``forward(y (B,1,S,S)) -> EtaOutput(keypoints (B,K,2), heatmaps (B,K,S/2^d,S/2^d))``."""

    def __init__(self, num_keypoints: int, base_width: int = 32, depth: int = 3, max_width: int = 256,
                 norm: str = "instance", softargmax: str = "marginal", temperature: float = 1.0,
                 in_channels: int = 1) -> None:
        super().__init__()
        check_norm(norm)
        if num_keypoints < 1:
            raise ValueError(f"eta: need at least one keypoint, got {num_keypoints}")
        if softargmax not in MODES:
            raise ValueError(f"unknown soft-argmax mode '{softargmax}' (choose from {MODES})")
        if temperature <= 0:
            raise ValueError(f"soft-argmax temperature must be positive, got {temperature}")
        self.num_keypoints, self.depth = num_keypoints, depth
        self.softargmax, self.temperature = softargmax, temperature
        self.encoder = Encoder(in_channels, num_keypoints, base_width, depth, max_width, norm)

    def heatmaps(self, y: torch.Tensor) -> torch.Tensor:
        """Raw heatmaps ``(B, K, S / 2**depth, S / 2**depth)``."""
        check_image_size(y.shape[-1], self.depth, "eta")
        check_image_size(y.shape[-2], self.depth, "eta")
        return self.encoder(y)

    def forward(self, y: torch.Tensor) -> EtaOutput:
        h = self.heatmaps(y)
        return EtaOutput(heatmaps_to_keypoints(h, self.softargmax, self.temperature), h)
