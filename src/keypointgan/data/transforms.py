"""Square crop + resize to the model resolution, with keypoints moved consistently.

A :class:`CropBox` is a square in COCO pixel coordinates (pixel ``i`` spans
``[i - 0.5, i + 0.5]``): ``x0, y0`` is its top-left *edge*, ``size`` its side. The
crop's own normalised frame is :mod:`keypointgan.pose.coords`' ``[-1, 1]``
(``align_corners=False``), so ``box.to_normalized`` is exactly
``pixels_to_normalized`` of the crop, at any output resolution. Resampling is PIL's
antialiased bilinear resize over the same (float) box; parts of a box outside the
image are black.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from ..pose.coords import Array, normalized_to_pixels, pixels_to_normalized


@dataclass(frozen=True)
class CropBox:
    """A square region ``[x0, x0 + size] x [y0, y0 + size]`` in COCO pixel coordinates."""

    x0: float
    y0: float
    size: float

    def _offset(self, like: Array) -> Array:
        o = [self.x0 + 0.5, self.y0 + 0.5]
        if isinstance(like, torch.Tensor):
            return torch.tensor(o, dtype=like.dtype, device=like.device)
        return np.asarray(o, dtype=like.dtype if like.dtype.kind == "f" else np.float64)

    def to_normalized(self, xy: Array) -> Array:
        """Image pixels ``(..., 2)`` -> the crop's normalised ``[-1, 1]`` coordinates."""
        return pixels_to_normalized(xy - self._offset(xy), self.size)

    def to_pixels(self, uv: Array) -> Array:
        """The crop's normalised coordinates ``(..., 2)`` -> image pixels (e.g. predictions)."""
        return normalized_to_pixels(uv, self.size) + self._offset(uv)

    def as_list(self) -> list[float]:
        return [float(self.x0), float(self.y0), float(self.size)]


def center_box(width: int, height: int) -> CropBox:
    """The centred square of the shorter side (the whole image when square)."""
    s = min(width, height)
    return CropBox(-0.5 + (width - s) / 2.0, -0.5 + (height - s) / 2.0, float(s))


def bbox_box(bbox_xywh: Sequence[float], margin: float = 0.25) -> CropBox:
    """A square around a COCO ``[x, y, w, h]`` box: side ``max(w, h) * (1 + margin)``, same centre.

    The bbox is read in the keypoint frame (``x`` to ``x + w``).
    """
    x, y, w, h = (float(v) for v in bbox_xywh)
    if not (w > 0 and h > 0) or margin < 0:
        raise ValueError(f"bbox needs w, h > 0 and margin >= 0, got {list(bbox_xywh)}, margin {margin}")
    s = max(w, h) * (1.0 + margin)
    cx, cy = x + w / 2.0, y + h / 2.0
    return CropBox(cx - s / 2.0, cy - s / 2.0, s)


def keypoints_bbox(xy: np.ndarray, visible: np.ndarray) -> list[float]:
    """COCO ``[x, y, w, h]`` extent of the visible keypoints (at least one pixel wide)."""
    pts = xy[visible] if visible.any() else xy
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    wh = np.maximum(hi - lo, 1.0)
    return [float(lo[0]), float(lo[1]), float(wh[0]), float(wh[1])]


def crop_resize(image: np.ndarray, box: CropBox, size: int) -> np.ndarray:
    """Crop ``box`` out of an RGB ``(H, W, 3)`` uint8 image and resize it to ``size x size``."""
    h, w = image.shape[:2]
    # PIL's frame puts pixel i on [i, i + 1]: ours shifted by +0.5.
    l, t = box.x0 + 0.5, box.y0 + 0.5
    r, b = l + box.size, t + box.size
    pad = max(0.0, -l, -t, r - w, b - h)
    if pad > 0:
        p = int(math.ceil(pad))
        image = np.pad(image, ((p, p), (p, p), (0, 0)))
        l, t, r, b = l + p, t + p, r + p, b + p
    if (l, t, r, b) == (0, 0, image.shape[1], image.shape[0]) and image.shape[0] == size == image.shape[1]:
        return np.ascontiguousarray(image)
    out = Image.fromarray(image).resize((size, size), Image.BILINEAR, box=(l, t, r, b))
    return np.asarray(out)


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """uint8 ``(H, W, 3)`` -> float ``(3, H, W)`` in ``[-1, 1]``."""
    if not (image.flags.writeable and image.flags.c_contiguous):
        image = np.array(image)  # PIL/mmap arrays are read-only; torch wants writable memory
    t = torch.from_numpy(image).permute(2, 0, 1).float()
    return t.div_(127.5).sub_(1.0)


def to_tensor_batch(images: Sequence[np.ndarray]) -> torch.Tensor:
    """uint8 ``(H, W, 3)`` images of one size -> float ``(B, 3, H, W)`` in ``[-1, 1]``."""
    t = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float()
    return t.div_(127.5).sub_(1.0)


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """float ``(3, H, W)`` in ``[-1, 1]`` -> uint8 ``(H, W, 3)`` (for previews and tests)."""
    x = ((image.detach().float().clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8)
    return x.permute(1, 2, 0).cpu().numpy()
