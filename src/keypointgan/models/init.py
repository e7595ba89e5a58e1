"""Weight initialisation of pix2pix/CycleGAN, as the release (appendix F does not say).

Convolution and linear weights ~ N(0, std), their biases 0; affine norm layers
(BatchNorm here; InstanceNorm is used without affine parameters) get weights
~ N(1, std) and biases 0. ``std`` is ``ModelConfig.init_std`` (0.02).
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.Linear)
_NORM = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.InstanceNorm2d, nn.GroupNorm, nn.LayerNorm)


def init_module(m: nn.Module, std: float = 0.02, generator: Optional[torch.Generator] = None) -> None:
    """Initialise one layer in place (no-op for layers without parameters)."""
    if isinstance(m, _CONV):
        nn.init.normal_(m.weight, 0.0, std, generator=generator)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, _NORM) and getattr(m, "weight", None) is not None:
        nn.init.normal_(m.weight, 1.0, std, generator=generator)
        if m.bias is not None:
            nn.init.zeros_(m.bias)


def init_weights(net: nn.Module, std: float = 0.02, generator: Optional[torch.Generator] = None) -> nn.Module:
    """Initialise every layer of ``net`` in place; returns ``net``."""
    if std <= 0:
        raise ValueError(f"init std must be positive, got {std}")
    with torch.no_grad():
        for m in net.modules():
            init_module(m, std, generator)
    return net
