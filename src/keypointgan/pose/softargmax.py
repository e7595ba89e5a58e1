"""Heatmaps -> keypoints by soft-argmax: the read-out of eta, shared with inference.

Coordinates are the expectation of a softmax over the heatmap, on the pixel-centre
grid of ``pose.coords`` (so a 16x16 heatmap and the 128 px image agree exactly).

- ``mode="marginal"`` (the release): average the heatmap over rows, softmax over the
  columns for x; average over columns, softmax over rows for y.
- ``mode="spatial"``: one softmax over all cells, expectation of (x, y).
"""

from __future__ import annotations

import torch

from .coords import pixel_centers

MODES = ("marginal", "spatial")


def _marginals(heatmaps: torch.Tensor, mode: str, temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Probability over columns (B,K,W) and over rows (B,K,H)."""
    h = heatmaps.float() / temperature
    if mode == "marginal":
        return h.mean(2).softmax(-1), h.mean(3).softmax(-1)
    if mode == "spatial":
        b, k, hh, ww = h.shape
        p = h.flatten(2).softmax(-1).view(b, k, hh, ww)
        return p.sum(2), p.sum(3)
    raise ValueError(f"unknown soft-argmax mode '{mode}' (choose from {MODES})")


def heatmaps_to_keypoints(heatmaps: torch.Tensor, mode: str = "marginal", temperature: float = 1.0) -> torch.Tensor:
    """Heatmaps ``(B, K, h, w)`` -> keypoints ``(B, K, 2)`` as ``(x, y)`` in ``[-1, 1]``."""
    if heatmaps.dim() != 4:
        raise ValueError(f"heatmaps must be (B, K, h, w), got {tuple(heatmaps.shape)}")
    px, py = _marginals(heatmaps, mode, temperature)
    gx = pixel_centers(px.shape[-1], heatmaps.device)
    gy = pixel_centers(py.shape[-1], heatmaps.device)
    return torch.stack([(px * gx).sum(-1), (py * gy).sum(-1)], -1)


def keypoint_confidence(heatmaps: torch.Tensor, mode: str = "marginal", temperature: float = 1.0,
                        radius: float = 1.5) -> torch.Tensor:
    """Per-keypoint confidence ``(B, K)`` in ``[0, 1]``.

    The probability mass within ``radius`` heatmap cells (along each axis) of the
    soft-argmax location: near 1 for a sharp single peak, low for a diffuse or
    multi-modal heatmap.
    """
    px, py = _marginals(heatmaps, mode, temperature)
    mass = []
    for p in (px, py):
        n = p.shape[-1]
        idx = torch.arange(n, device=p.device, dtype=p.dtype)
        mu = (p * idx).sum(-1, keepdim=True)
        mass.append((p * ((idx - mu).abs() <= radius)).sum(-1))
    return mass[0] * mass[1]
