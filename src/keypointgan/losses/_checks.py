"""Shape checks shared by the image losses."""

from __future__ import annotations

from torch import Tensor


def check_image_pair(pred: Tensor, target: Tensor, min_size: int = 1,
                     channels: int | None = None) -> None:
    """Raise a ValueError unless ``pred`` and ``target`` are same-shaped (B, C, H, W)."""
    if pred.dim() != 4 or pred.shape != target.shape:
        raise ValueError(f"expected two (B, C, H, W) images of one shape, got "
                         f"{tuple(pred.shape)} and {tuple(target.shape)}")
    if channels is not None and pred.shape[1] != channels:
        raise ValueError(f"expected {channels}-channel images, got {pred.shape[1]} channels")
    if min(pred.shape[-2:]) < min_size:
        raise ValueError(f"images must be at least {min_size}x{min_size} pixels, "
                         f"got {pred.shape[-2]}x{pred.shape[-1]}")
