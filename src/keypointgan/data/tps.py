"""Random thin-plate-spline warps for image-only data: pairs ``(g1(x), g2(x))``.

Defaults are the authors' release: a 10x10 grid of control points; rotation sd 5
degrees, scale sd 0.05, translation sd 0.05; warp sd ``(0.0005, 0.005)``; replicate
padding. As in the release the warp lives on a canvas twice the image size (the
image is its central half, the control points span the canvas ``[-1, 1]^2``), so
translations are fractions of the canvas (0.05 = 5 % of the image side). The warp
sd pair is applied per image and per TPS weight as the release does: every kernel
weight gets ``N(0, sd0^2)`` and a random half of them another ``N(0, sd1^2)``, so
each weight's sd is either ``sd0`` or ``~sd1`` (mixing smooth and stronger
warps). Weights multiply the kernel ``r^2 log r^2`` on the canvas.

``x = g1(image)`` is affine only, ``x' = g2(image)`` is affine + TPS (release).
The TPS is evaluated with kornia's ``warp_points_tps`` on output pixel centres
(``align_corners=False``, matching ``pose.coords``) and sampled with border
(replicate) padding; with every sd 0 the warp is the identity, pixel for pixel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from kornia.geometry.transform import warp_points_tps

from ..pose.coords import pixel_centers


@dataclass(frozen=True)
class TPSParams:
    """Random warp distribution (release defaults)."""

    grid: int = 10  # control points per side
    rotation_sd: float = 5.0  # degrees
    scale_sd: float = 0.05  # relative
    translation_sd: float = 0.05  # canvas units (canvas = 2x image)
    warp_sd: tuple[float, float] = (0.0005, 0.005)  # TPS kernel weights: base sd, extra sd on a random half


def scaled(params: TPSParams, factor: float) -> TPSParams:
    """``params`` with every standard deviation multiplied by ``factor`` (0: the identity)."""
    if factor < 0:
        raise ValueError(f"warp scale must be >= 0, got {factor}")
    return TPSParams(params.grid, params.rotation_sd * factor, params.scale_sd * factor,
                     params.translation_sd * factor, tuple(w * factor for w in params.warp_sd))


IDENTITY = TPSParams(rotation_sd=0.0, scale_sd=0.0, translation_sd=0.0, warp_sd=(0.0, 0.0))


def control_points(grid: int) -> torch.Tensor:
    """``(grid^2, 2)`` control points on the canvas, ``linspace(-1, 1)`` each way, x fastest."""
    t = torch.linspace(-1.0, 1.0, grid)
    yy, xx = torch.meshgrid(t, t, indexing="ij")
    return torch.stack([xx.flatten(), yy.flatten()], dim=1)


def sample_affine(n: int, p: TPSParams, rng: np.random.Generator) -> torch.Tensor:
    """``(n, 3, 2)`` affine weights ``[t; A]`` (kornia's layout: row 0 translation)."""
    rot = np.deg2rad(rng.standard_normal(n) * p.rotation_sd)
    sc = 1.0 + rng.standard_normal(n) * p.scale_sd
    t = rng.standard_normal((n, 2)) * p.translation_sd
    c, s = sc * np.cos(rot), sc * np.sin(rot)
    aff = np.stack([t, np.stack([c, -s], 1), np.stack([s, c], 1)], axis=1)
    return torch.from_numpy(aff).float()


def sample_kernel_weights(n: int, p: TPSParams, rng: np.random.Generator) -> torch.Tensor:
    """``(n, grid^2, 2)`` TPS kernel weights for the kernel ``r^2 log r^2`` (release)."""
    m = p.grid * p.grid
    mask = rng.random((n, m, 2)) > 0.5
    w = p.warp_sd[0] * rng.standard_normal((n, m, 2)) + p.warp_sd[1] * mask * rng.standard_normal((n, m, 2))
    return torch.from_numpy(w).float()


def warp_grid(size: tuple[int, int], affine: torch.Tensor, weights: torch.Tensor | None = None,
              grid: int = 10) -> torch.Tensor:
    """``(B, H, W, 2)`` sampling grid of the warps: output pixel ``u`` samples the input at
    ``2 f(u / 2)``, ``f`` the canvas TPS ``affine`` + ``weights`` (zero weights: affine only).
    Compute once, then :func:`apply_grid` to every tensor the same warps should move."""
    b, (h, w) = affine.shape[0], size
    ys, xs = pixel_centers(h, dtype=torch.float32), pixel_centers(w, dtype=torch.float32)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    pts = torch.stack([gx, gy], dim=-1).reshape(1, -1, 2).expand(b, -1, -1) / 2.0
    centers = control_points(grid).unsqueeze(0).expand(b, -1, -1)
    if weights is None:
        weights = torch.zeros(b, grid * grid, 2)
    # kornia's kernel is 0.5 r^2 log r^2: double the weights to get r^2 log r^2.
    return (warp_points_tps(pts, centers, 2.0 * weights, affine) * 2.0).reshape(b, h, w, 2)


def apply_grid(images: torch.Tensor, src: torch.Tensor) -> torch.Tensor:
    """Resample ``(B, C, H, W)`` images at a :func:`warp_grid` (bilinear, border padding)."""
    src = src.to(images.device, images.dtype)
    return F.grid_sample(images, src, mode="bilinear", padding_mode="border", align_corners=False)


def warp(images: torch.Tensor, affine: torch.Tensor, weights: torch.Tensor | None = None,
         grid: int = 10) -> torch.Tensor:
    """Warp ``(B, C, H, W)`` images: output pixel ``u`` samples the input at ``2 f(u / 2)``.

    ``f`` is the canvas TPS ``affine`` + ``weights`` (zero weights: affine only).
    """
    return apply_grid(images, warp_grid(tuple(images.shape[-2:]), affine, weights, grid))


def random_pair(images: torch.Tensor, rng: np.random.Generator,
                params: TPSParams = TPSParams()) -> tuple[torch.Tensor, torch.Tensor]:
    """``(g1(images), g2(images))``: independent affine warps, TPS on the second only."""
    b = images.shape[0]
    a1 = sample_affine(b, params, rng)
    a2 = sample_affine(b, params, rng)
    w2 = sample_kernel_weights(b, params, rng)
    return warp(images, a1, None, params.grid), warp(images, a2, w2, params.grid)
