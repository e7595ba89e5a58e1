"""The one coordinate convention of keypointgan.

Inside the model keypoints are ``(x, y)`` in normalised coordinates ``[-1, 1]`` where
-1 is the *outer edge* of the first pixel and +1 the outer edge of the last one
(PyTorch's ``align_corners=False``). Pixel ``i`` has its centre at ``-1 + (2i + 1)/n``
at every resolution, so a 16x16 heatmap cell and the 8x8 block of a 128 px image it
covers share one centre: no half-pixel drift between the renderer, soft-argmax,
crops and metrics.

Outside the model (files, metrics in pixels, overlays) keypoints are in image pixels
with the COCO/mmpose convention: ``x`` is a continuous column index, pixel ``i``'s
centre is at ``x = i`` and the image spans ``[-0.5, W - 0.5]``.
"""

from __future__ import annotations

from typing import Sequence, Union

import numpy as np
import torch

Array = Union[torch.Tensor, np.ndarray]
Size = Union[int, Sequence[int]]


def _wh(size: Size) -> tuple[float, float]:
    """``size`` as (width, height); an int means a square image."""
    if isinstance(size, (int, float)):
        return float(size), float(size)
    w, h = size
    return float(w), float(h)


def _scale(a: Array, size: Size) -> Array:
    w, h = _wh(size)
    if isinstance(a, torch.Tensor):
        return torch.tensor([w, h], dtype=a.dtype, device=a.device)
    return np.array([w, h], dtype=np.float64 if a.dtype == np.float64 else np.float32)


def pixels_to_normalized(xy: Array, size: Size) -> Array:
    """Pixel (COCO) coordinates ``(..., 2)`` -> normalised ``[-1, 1]``.

    ``size`` is the image's ``(width, height)`` or one int for a square image.
    """
    return (2.0 * xy + 1.0) / _scale(xy, size) - 1.0


def normalized_to_pixels(uv: Array, size: Size) -> Array:
    """Normalised ``[-1, 1]`` coordinates ``(..., 2)`` -> pixel (COCO) coordinates."""
    return ((uv + 1.0) * _scale(uv, size) - 1.0) / 2.0


def pixel_centers(n: int, device: torch.device | str | None = None,
                  dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Normalised centres of ``n`` pixels along one axis: ``-1 + (2i + 1)/n``."""
    return (torch.arange(n, device=device, dtype=dtype) * 2.0 + 1.0) / n - 1.0


def normalized_to_unit(uv: Array) -> Array:
    """Normalised ``[-1, 1]`` -> fraction of image size ``[0, 1]`` (for % errors)."""
    return (uv + 1.0) / 2.0
