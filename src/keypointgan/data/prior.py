"""The unpaired pose prior: poses from a COCO JSON or a ``.npy`` file, as a PoseSource.

Coordinates are normalised per image with :mod:`keypointgan.pose.coords`:
``crop="center"`` (default) uses the centred square of the shorter side, the same
crop :class:`FolderVideos` applies to training frames, so prior and frames share one
frame; ``crop="full"`` normalises x by the width and y by the height (identical for
square images). A ``.npy`` prior is ``(M, K, 2)`` pixels (or ``(M, K, 3)`` with a
visibility column, 0 = missing) of images of a stated size; it is loaded with
``allow_pickle=False``. NaN/inf are rejected with the file and the row.

Missing keypoints (``v = 0`` in COCO, or no source keypoint when mapping another
skeleton by names) come with ``visible = False`` and a placeholder position: the
mean of the pose's visible keypoints (finite, inside the figure, never NaN).
Consumers must mask them: the renderer should not draw a link with a missing end,
and the eta loss should ignore missing keypoints. Poses with fewer than two visible
keypoints are dropped (counted, warned).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional, Sequence

import numpy as np
import torch

from ..config import ConfigError
from ..pose.coords import pixels_to_normalized
from ..pose.skeleton import Skeleton, name_mapping
from .base import DataError, PoseSource
from .coco import read_coco_keypoints
from .pairs import PRIOR_STREAM, _SeededSampler
from .transforms import center_box

log = logging.getLogger("keypointgan.data")

CROPS = ("center", "full")


@dataclass
class PriorPoses:
    """``keypoints`` (M, K, 2) normalised, ``visible`` (M, K) bool, in ``skeleton``'s order."""

    keypoints: torch.Tensor
    visible: torch.Tensor
    skeleton: Skeleton
    source: str = "<memory>"
    dropped: int = 0  # poses dropped for having fewer than two visible keypoints

    def poses(self) -> torch.Tensor:
        return self.keypoints

    def __len__(self) -> int:
        return int(self.keypoints.shape[0])

    def subset(self, n: int, seed: int = 0) -> "PriorPoses":
        """A seeded subset of ``n`` distinct poses (the paper's 50 / 500 / 5000 experiment)."""
        m = len(self)
        if not 1 <= n <= m:
            raise DataError(f"{self.source}: asked for a subset of {n} prior poses, but it has {m}")
        idx = np.random.default_rng(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, 7])).choice(m, n, replace=False)
        idx_t = torch.from_numpy(np.sort(idx))
        return PriorPoses(self.keypoints[idx_t], self.visible[idx_t], self.skeleton, self.source, self.dropped)


def _normalise(xy: np.ndarray, width: float, height: float, crop: str) -> np.ndarray:
    if crop == "center":
        return center_box(int(width), int(height)).to_normalized(xy)
    return pixels_to_normalized(xy, (width, height))


def _check_finite(arr: np.ndarray, path: Path) -> None:
    bad = np.argwhere(~np.isfinite(arr))
    if len(bad):
        r, k = int(bad[0][0]), int(bad[0][1])
        raise DataError(f"{path}: row {r}, keypoint {k} has a NaN/inf value {arr[r, k].tolist()}")


def _read_coco(path: Path, skeleton: Skeleton, crop: str) -> tuple[np.ndarray, np.ndarray]:
    coco = read_coco_keypoints(path, skeleton)
    kp = np.zeros_like(coco.keypoints)
    for a in range(len(coco)):
        im = coco.image_of(a)
        kp[a] = _normalise(coco.keypoints[a], im.width, im.height, crop)
    return kp, coco.visibility > 0


def _read_npy(path: Path, skeleton: Skeleton, image_size: Optional[Sequence[int] | int],
              crop: str) -> tuple[np.ndarray, np.ndarray]:
    if image_size is None:
        raise DataError(f"{path}: a .npy prior holds pixels; give its image size "
                        f"(data.prior_image_size=[W, H])")
    w, h = (image_size, image_size) if isinstance(image_size, (int, float)) else image_size
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise DataError(f"{path}: cannot read .npy array ({e})") from None
    k = skeleton.num_keypoints
    if arr.ndim != 3 or arr.shape[2] not in (2, 3) or not np.issubdtype(arr.dtype, np.number):
        raise DataError(f"{path}: expected a numeric (M, K, 2) array of pixel coordinates, "
                        f"got {arr.dtype} {arr.shape}")
    if arr.shape[1] != k:
        raise DataError(f"{path}: poses have K={arr.shape[1]} keypoints, but skeleton "
                        f"'{skeleton.name}' has K={k}")
    arr = arr.astype(np.float64)
    _check_finite(arr, path)
    vis = arr[..., 2] > 0 if arr.shape[2] == 3 else np.ones(arr.shape[:2], dtype=bool)
    return _normalise(arr[..., :2], float(w), float(h), crop), vis


def map_skeleton(kp: np.ndarray, vis: np.ndarray, src: Skeleton, dst: Skeleton,
                 aliases: Optional[Mapping[str, str]] = None) -> tuple[np.ndarray, np.ndarray]:
    """Poses of ``src`` -> ``dst`` by keypoint names; keypoints with no source are missing."""
    pairs = name_mapping(src, dst, aliases)
    if len(pairs) < 2:
        raise DataError(f"skeletons '{src.name}' and '{dst.name}' share {len(pairs)} keypoint names; "
                        f"cannot map a prior from one to the other")
    out = np.zeros(kp.shape[:1] + (dst.num_keypoints, 2))
    ov = np.zeros(kp.shape[:1] + (dst.num_keypoints,), dtype=bool)
    si, di = (list(t) for t in zip(*pairs))
    out[:, di], ov[:, di] = kp[:, si], vis[:, si]
    return out, ov


def _fill_missing(kp: np.ndarray, vis: np.ndarray) -> np.ndarray:
    """Put missing keypoints at the mean of their pose's visible ones."""
    cnt = np.maximum(vis.sum(axis=1, keepdims=True), 1)
    mean = (kp * vis[..., None]).sum(axis=1) / cnt
    return np.where(vis[..., None], kp, mean[:, None, :])


def load_prior(path: str | Path, skeleton: Skeleton, *, image_size: Optional[Sequence[int] | int] = None,
               prior_skeleton: Optional[Skeleton] = None, num: Optional[int] = None, seed: int = 0,
               crop: str = "center", aliases: Optional[Mapping[str, str]] = None) -> PriorPoses:
    """Load prior poses for ``skeleton`` from a COCO ``.json`` or a ``.npy`` file.

    ``prior_skeleton``: the file's skeleton when it differs (mapped by names, with
    ``aliases`` src->dst); ``num``: a seeded subset of that many poses.
    """
    path = Path(path)
    if crop not in CROPS:
        raise ConfigError(f"crop must be one of {CROPS}, got {crop!r}")
    if not path.is_file():
        raise DataError(f"{path}: prior file not found")
    src = prior_skeleton or skeleton
    if path.suffix.lower() == ".json":
        kp, vis = _read_coco(path, src, crop)
    elif path.suffix.lower() == ".npy":
        kp, vis = _read_npy(path, src, image_size, crop)
    else:
        raise DataError(f"{path}: unknown prior format (expected a COCO .json or an (M, K, 2) .npy)")
    if src.keypoint_names != skeleton.keypoint_names:
        kp, vis = map_skeleton(kp, vis, src, skeleton, aliases)
    keep = vis.sum(axis=1) >= 2
    dropped = int((~keep).sum())
    if dropped:
        log.warning("%s: %d prior poses with fewer than 2 visible keypoints dropped", path, dropped)
    kp, vis = kp[keep], vis[keep]
    if len(kp) == 0:
        raise DataError(f"{path}: no usable prior poses (each needs at least 2 visible keypoints)")
    prior = PriorPoses(torch.from_numpy(_fill_missing(kp, vis)).float(), torch.from_numpy(vis),
                       skeleton, str(path), dropped)
    return prior.subset(num, seed) if num is not None else prior


class PriorSampler(_SeededSampler):
    """Batches ``{"keypoints": (B, K, 2), "visible": (B, K)}`` drawn uniformly (with replacement)."""

    stream = PRIOR_STREAM

    def __init__(self, prior: PoseSource, batch_size: int, seed: int = 0, start_step: int = 0) -> None:
        super().__init__(batch_size, seed, start_step)
        self.keypoints = prior.poses()
        vis = getattr(prior, "visible", None)
        self.visible = vis if vis is not None else torch.ones(self.keypoints.shape[:2], dtype=torch.bool)
        if len(self.keypoints) == 0:
            raise DataError(f"{getattr(prior, 'source', type(prior).__name__)}: empty pose prior")

    def batch(self, step: int) -> dict[str, torch.Tensor]:
        idx = torch.from_numpy(self.rng(step).integers(len(self.keypoints), size=self.batch_size))
        return {"keypoints": self.keypoints[idx], "visible": self.visible[idx]}


def random_similarity(keypoints: torch.Tensor, generator: torch.Generator, rotation_deg: float = 15.0,
                      scale: float = 0.2, shift: float = 0.15) -> torch.Tensor:
    """Poses (B, K, 2) under random rotations, scalings and shifts about their centres.

    For eta, which must invert beta for *any* pose the videos show, not only the
    prior's: measured on the synthetic data (64 px, 600 iterations), this cut eta's
    error on unseen poses by about a fifth. Not for the discriminator, whose "real"
    samples must stay the prior's distribution. Results are clamped inside the image.
    """
    b = keypoints.shape[0]
    u = lambda *shape: torch.rand(*shape, generator=generator) * 2 - 1  # noqa: E731
    ang = u(b) * rotation_deg * torch.pi / 180
    sc = 1 + u(b) * scale
    cos, sin = torch.cos(ang) * sc, torch.sin(ang) * sc
    rot = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2).to(keypoints)
    centre = keypoints.mean(1, keepdim=True)
    moved = (keypoints - centre) @ rot.transpose(1, 2) + centre + (u(b, 1, 2) * shift).to(keypoints)
    return moved.clamp(-0.98, 0.98)
