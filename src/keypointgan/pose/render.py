"""beta: the differentiable skeleton renderer of eq. 2 (keypoints -> skeleton image).

Each pixel takes the distance ``d`` to the nearest skeleton link (a line segment) and
falls off exponentially:

- ``form="release"`` (authors' code): ``exp(-sqrt(d^2 + 1e-6) / sigma^2)``;
- ``form="paper"`` (eq. 2, gamma = 1/sigma^2): ``exp(-d^2 / sigma^2)``.

``d`` and ``sigma`` are in normalised units (the image spans [-1, 1]), so a skeleton
looks the same at every resolution: with sigma = 0.2 the release's line decays by e
every 0.04 units, 2.56 px at 128 px and 1.28 px at 64 px.

The nearest-link distance is a custom autograd function: the forward pass keeps only
the running minimum and the index of the winning link per pixel (memory B*H*W, not
B*E*H*W), and the backward pass differentiates that link alone. Since the closest
point on a segment is itself a minimiser, its position's own derivative drops out
(envelope theorem) and the gradient is exact: ``dd2/da = -2 r (1 - t)``,
``dd2/db = -2 r t`` with ``r = u - (a + t (b - a))``.
"""

from __future__ import annotations

from typing import Optional, Sequence, Union

import torch
from torch import nn

from .coords import pixel_centers
from .skeleton import Skeleton

EdgesLike = Union[torch.Tensor, Sequence[Sequence[int]]]
SizeLike = Union[int, Sequence[int]]

FORMS = ("release", "paper")


def _hw(size: SizeLike) -> tuple[int, int]:
    if isinstance(size, int):
        return size, size
    h, w = size
    return int(h), int(w)


def _as_edges(edges: EdgesLike, num_keypoints: int) -> list[tuple[int, int]]:
    e = edges.tolist() if isinstance(edges, torch.Tensor) else [tuple(p) for p in edges]
    out = [(int(i), int(j)) for i, j in e]
    if not out:
        raise ValueError("render_skeleton: at least one edge is needed")
    bad = [p for p in out if not (0 <= p[0] < num_keypoints and 0 <= p[1] < num_keypoints)]
    if bad:
        raise ValueError(f"render_skeleton: edges {bad} out of range for {num_keypoints} keypoints")
    return out


def _segment_terms(kp: torch.Tensor, i: int, j: int, gx: torch.Tensor, gy: torch.Tensor):
    """Closest-point parameter t and residual (rx, ry) of every pixel to link (i, j)."""
    ax, ay = kp[:, i, 0, None, None], kp[:, i, 1, None, None]
    ex = kp[:, j, 0, None, None] - ax
    ey = kp[:, j, 1, None, None] - ay
    dx, dy = gx - ax, gy - ay  # (B,1,W), (B,H,1)
    len2 = (ex * ex + ey * ey).clamp_min(1e-12)
    t = ((dx * ex + dy * ey) / len2).clamp(0.0, 1.0)  # degenerate link: numerator 0 -> t = 0
    return t, dx - t * ex, dy - t * ey


class _NearestLinkDistance(torch.autograd.Function):
    """Squared distance (B, H, W) from each pixel centre to the nearest link."""

    @staticmethod
    def forward(ctx, kp: torch.Tensor, edges: list, h: int, w: int,  # type: ignore[override]
                valid: Optional[torch.Tensor]) -> torch.Tensor:
        gx = pixel_centers(w, kp.device, kp.dtype).view(1, 1, w)
        gy = pixel_centers(h, kp.device, kp.dtype).view(1, h, 1)
        best = best_idx = None
        for e, (i, j) in enumerate(edges):
            _, rx, ry = _segment_terms(kp, i, j, gx, gy)
            d2 = rx * rx + ry * ry
            if valid is not None:  # a link with a missing end is infinitely far away
                d2 = torch.where(valid[:, e, None, None], d2, _FAR)
            if best is None:
                best, best_idx = d2, torch.zeros(d2.shape, dtype=torch.uint8 if len(edges) < 256 else torch.int16,
                                                  device=kp.device)
            else:
                closer = d2 < best
                best = torch.where(closer, d2, best)
                best_idx.masked_fill_(closer, e)
        ctx.save_for_backward(kp, best_idx, valid if valid is not None else torch.empty(0, dtype=torch.bool))
        ctx.edges, ctx.hw = edges, (h, w)
        return best

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        kp, best_idx, valid = ctx.saved_tensors
        h, w = ctx.hw
        gx = pixel_centers(w, kp.device, kp.dtype).view(1, 1, w)
        gy = pixel_centers(h, kp.device, kp.dtype).view(1, h, 1)
        gkp = torch.zeros_like(kp)
        for e, (i, j) in enumerate(ctx.edges):
            win = best_idx == e
            if valid.numel():
                win &= valid[:, e, None, None]
            g = torch.where(win, grad, 0.0) * -2.0  # (B,H,W)
            t, rx, ry = _segment_terms(kp, i, j, gx, gy)
            gt, grx, gry = g * t, g * rx, g * ry
            # d/da = -2 r (1 - t), d/db = -2 r t  (sums over pixels)
            sx, sy = grx.sum((1, 2)), gry.sum((1, 2))
            tx, ty = (gt * rx).sum((1, 2)), (gt * ry).sum((1, 2))
            gkp[:, i, 0] += sx - tx
            gkp[:, i, 1] += sy - ty
            gkp[:, j, 0] += tx
            gkp[:, j, 1] += ty
        return gkp, None, None, None, None


_FAR = 1e6  # squared distance of a pixel to a link that is not drawn (exp(-1000/sigma^2) = 0)


def _valid_links(visible: Optional[torch.Tensor], edges: list[tuple[int, int]], kp: torch.Tensor):
    """(B, E) bool: both ends of each link are visible; None when all keypoints are."""
    if visible is None:
        return None
    if visible.shape != kp.shape[:2]:
        raise ValueError(f"render_skeleton: visible must be (B, K) = {tuple(kp.shape[:2])}, got {tuple(visible.shape)}")
    vis = visible.to(device=kp.device, dtype=torch.bool)
    e = torch.tensor(edges, device=kp.device)
    return vis[:, e[:, 0]] & vis[:, e[:, 1]]


def nearest_link_distance2(keypoints: torch.Tensor, edges: EdgesLike, size: SizeLike,
                           visible: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Squared distance ``(B, H, W)`` from every pixel centre to the nearest drawn link.

    ``visible`` (B, K) drops links with a missing end (e.g. a prior mapped from another
    skeleton that lacks some joints).
    """
    if keypoints.dim() != 3 or keypoints.shape[-1] != 2:
        raise ValueError(f"render_skeleton: keypoints must be (B, K, 2), got {tuple(keypoints.shape)}")
    h, w = _hw(size)
    kp = keypoints if keypoints.dtype == torch.float64 else keypoints.float()
    links = _as_edges(edges, kp.shape[1])
    return _NearestLinkDistance.apply(kp, links, h, w, _valid_links(visible, links, kp))


def falloff(d2: torch.Tensor, sigma: float, form: str) -> torch.Tensor:
    """Exponential fall-off of a squared distance field (eq. 2 or the release's form)."""
    if form == "release":
        return torch.exp(-torch.sqrt(d2 + 1e-6) / sigma**2)
    if form == "paper":
        return torch.exp(-d2 / sigma**2)
    raise ValueError(f"unknown renderer form '{form}' (choose from {FORMS})")


def render_skeleton(keypoints: torch.Tensor, edges: EdgesLike, size: SizeLike,
                    sigma: Union[float, Sequence[float]] = 0.2, form: str = "release", signed: bool = False,
                    visible: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Render keypoints ``(B, K, 2)`` in ``[-1, 1]`` as skeleton images ``(B, 1, H, W)``.

    Values are in ``[0, 1]`` (1 on a link), or ``[-1, 1]`` with ``signed=True`` as the
    networks see them. ``visible`` (B, K) leaves out links with a missing end. Always
    computed in float32 (float64 if given), also under autocast. A sequence of sigmas
    gives one channel per width, ``(B, len(sigma), H, W)``, from one distance field.
    """
    sigmas = [float(sigma)] if isinstance(sigma, (int, float)) else [float(s) for s in sigma]
    with torch.autocast(keypoints.device.type, enabled=False):
        d2 = nearest_link_distance2(keypoints, edges, size, visible)
        img = torch.stack([falloff(d2, s, form) for s in sigmas], 1)
        return img * 2.0 - 1.0 if signed else img


def render_skeleton_dense(keypoints: torch.Tensor, edges: EdgesLike, size: SizeLike, sigma: float = 0.2,
                          form: str = "release", signed: bool = False) -> torch.Tensor:
    """Brute-force reference of :func:`render_skeleton` (all pixels x all links, plain autograd).

    For tests and benchmarks; B*E*H*W memory.
    """
    h, w = _hw(size)
    e = torch.tensor(_as_edges(edges, keypoints.shape[1]), device=keypoints.device)
    a, b = keypoints[:, e[:, 0]], keypoints[:, e[:, 1]]  # (B,E,2)
    gy, gx = torch.meshgrid(pixel_centers(h, keypoints.device, keypoints.dtype),
                            pixel_centers(w, keypoints.device, keypoints.dtype), indexing="ij")
    u = torch.stack([gx, gy], -1).view(1, 1, h, w, 2)
    ab = (b - a)[:, :, None, None, :]
    t = (((u - a[:, :, None, None]) * ab).sum(-1) / (ab * ab).sum(-1).clamp_min(1e-12)).clamp(0, 1)
    d2 = ((u - a[:, :, None, None] - t[..., None] * ab) ** 2).sum(-1).amin(1)
    img = falloff(d2, sigma, form).unsqueeze(1)
    return img * 2.0 - 1.0 if signed else img


class SkeletonRenderer(nn.Module):
    """beta as a module bound to a skeleton, an output size and a drawing style."""

    def __init__(self, skeleton: Skeleton, size: SizeLike, sigma: float = 0.2, form: str = "release",
                 signed: bool = True, extra_sigmas: Sequence[float] = ()) -> None:
        super().__init__()
        if form not in FORMS:
            raise ValueError(f"unknown renderer form '{form}' (choose from {FORMS})")
        for s in (sigma, *extra_sigmas):
            if s <= 0:
                raise ValueError(f"renderer sigma must be positive, got {s}")
        self.skeleton, self.size, self.sigma, self.form, self.signed = skeleton, _hw(size), sigma, form, signed
        self.extra_sigmas = tuple(float(s) for s in extra_sigmas)
        self.edges = list(skeleton.edges)

    def forward(self, keypoints: torch.Tensor, visible: Optional[torch.Tensor] = None) -> torch.Tensor:
        """beta at ``sigma``: ``(B, K, 2) -> (B, 1, H, W)``."""
        self.skeleton.check_keypoints(keypoints.shape, "renderer input")
        return render_skeleton(keypoints[..., :2], self.edges, self.size, self.sigma, self.form, self.signed,
                               visible)

    def all_widths(self, keypoints: torch.Tensor, visible: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``(B, 1 + len(extra_sigmas), H, W)``: channel 0 is :meth:`forward`'s image, then one
        per extra sigma, all from one distance field (what Psi reads with ``render.psi_sigmas``)."""
        self.skeleton.check_keypoints(keypoints.shape, "renderer input")
        return render_skeleton(keypoints[..., :2], self.edges, self.size, (self.sigma, *self.extra_sigmas),
                               self.form, self.signed, visible)

    def extra_repr(self) -> str:
        extra = f", extra_sigmas={list(self.extra_sigmas)}" if self.extra_sigmas else ""
        return f"skeleton={self.skeleton.name}, size={self.size}, sigma={self.sigma}, form={self.form}{extra}"
