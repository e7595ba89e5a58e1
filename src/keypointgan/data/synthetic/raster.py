"""Vectorised rasteriser: shaded, textured, depth-ordered body parts over a background.

Every part is a tapered capsule (limbs, head) or a tapered rounded box (torso, hips)
between two points. Each part is evaluated as a distance field on a small window
around it, for a whole batch of frames at once (B, h, w); there is no per-pixel Python
and no PIL drawing. Parts are then alpha-composited back to front by a per-frame depth,
so the draw order (an arm in front of or behind the torso) can change between frames.
Only exactly rounded float ops are used per pixel, so a frame's pixels are identical
whether it is drawn alone, with its video or in a batch of other videos' frames.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

Tensor = torch.Tensor
ELEMENT_BUDGET = 1 << 21  # frames x pixels per chunk: bounds the rasteriser's memory


@dataclass
class Parts:
    """A batch of B frames of P parts, all in pixel units (pixel i's centre at x = i).

    ``waves`` are (ku, kv, phase) of J sine-like waves in part-local coordinates (u
    across, v along the part, radians per pixel) whose clipped sum mixes ``color`` into
    ``color2`` (stripes, checks, noise-like blotches). A part's ``cap`` (the hair of the
    head) recolours its pixels beyond ``cap_thresh`` radii along ``cap_dir``.
    """

    a: Tensor  # (B,P,2) segment start
    b: Tensor  # (B,P,2) segment end
    ra: Tensor  # (B,P) half width at a
    rb: Tensor  # (B,P) half width at b
    depth: Tensor  # (B,P) larger = nearer the camera
    box: Tensor  # (P,) bool: rounded box (True) or capsule (False)
    color: Tensor  # (B,P,3) in [0,1]
    color2: Tensor  # (B,P,3)
    waves: Tensor  # (B,P,J,3)
    wave_amp: Tensor  # (B,P,J)
    cap_color: Tensor  # (B,P,3)
    cap_dir: Tensor  # (B,P,2) unit
    cap_thresh: Tensor  # (B,P) in radii; large = no cap
    light: Tensor  # (B,3) unit vector (x right, y down, z toward the camera)
    ambient: Tensor  # (B,)

    @staticmethod
    def cat(batches: list["Parts"]) -> "Parts":
        """Frames of several batches in one (the per-part ``box`` flags are shared)."""
        if len(batches) == 1:
            return batches[0]
        return Parts(**{k: (v if k == "box" else torch.cat([getattr(b, k) for b in batches]))
                        for k, v in batches[0].__dict__.items()})

    def slice(self, i: int, j: int) -> "Parts":
        """Frames i..j (the per-part ``box`` flags are shared)."""
        kw = {k: (v if k == "box" else v[i:j]) for k, v in self.__dict__.items()}
        return Parts(**kw)


def wave(x: Tensor) -> Tensor:
    """A sine-like wave (period 2 pi, range [-1, 1]) made of two parabolas.

    Only exactly rounded ops (no ``sin``, whose SIMD and scalar code paths round
    differently), so a pixel gets the same value whichever batch or window it is in.
    """
    f = x * (1.0 / (2.0 * math.pi))
    f = f - f.floor()
    return torch.where(f < 0.5, 16.0 * f * (0.5 - f), 16.0 * (f - 0.5) * (f - 1.0))


def _window(p: Parts, k: int, h: int, w: int) -> tuple[Tensor, int, int]:
    """Top-left pixel (B,2) of a window of one size (wh, ww) that holds part ``k`` in every frame.

    Parts are small, so evaluating each on its own window instead of the whole image
    saves most of the work. The window is shifted to lie inside the image, which still
    covers every in-image pixel of the part because it is at least as large as the part.
    """
    r = torch.maximum(p.ra[:, k], p.rb[:, k])[:, None] + 1.5
    lo = (torch.minimum(p.a[:, k], p.b[:, k]) - r).floor()
    hi = (torch.maximum(p.a[:, k], p.b[:, k]) + r).ceil()
    ext = (hi - lo).amax(0)
    ww, wh = int(min(w, ext[0].item() + 1)), int(min(h, ext[1].item() + 1))
    ox = lo[:, 0].clamp(0, w - ww)
    oy = lo[:, 1].clamp(0, h - wh)
    return torch.stack([ox, oy], -1), wh, ww


def _part(p: Parts, k: int, h: int, w: int) -> tuple[Tensor, Tensor, Tensor]:
    """Part ``k`` on its window: colour (B,3,n), alpha (B,n) and flat pixel indices (B,n)."""
    origin, wh, ww = _window(p, k, h, w)
    B, dev, dt = p.a.shape[0], p.a.device, p.a.dtype
    c = lambda x: x.view(B, 1, 1)  # noqa: E731  per-frame scalar
    ix = torch.arange(ww, device=dev).view(1, 1, ww)
    iy = torch.arange(wh, device=dev).view(1, wh, 1)
    flat = ((origin[:, 1].long().view(B, 1, 1) + iy) * w + origin[:, 0].long().view(B, 1, 1) + ix).view(B, -1)
    a, d = p.a[:, k], p.b[:, k] - p.a[:, k]
    length = (d[:, 0] * d[:, 0] + d[:, 1] * d[:, 1]).sqrt().clamp_min(1e-3)
    ux, uy, L = c(d[:, 0] / length), c(d[:, 1] / length), c(length)
    # pixel coordinates first (exact integers), so a pixel's value never depends on its window
    rx = (c(origin[:, 0]) + ix.to(dt)) - c(a[:, 0])
    ry = (c(origin[:, 1]) + iy.to(dt)) - c(a[:, 1])
    v = rx * ux + ry * uy  # along the axis, from a
    u = ry * ux - rx * uy  # across (signed)
    t = (v / L).clamp(0.0, 1.0)
    ra, rb = c(p.ra[:, k]), c(p.rb[:, k])
    r = ra + (rb - ra) * t
    ur = u / r
    if bool(p.box[k]):  # rounded box (superellipse, exponent 4), tapered along its axis
        hl = L * 0.5
        vr = (v - hl) / hl
        u4, v4 = (ur * ur) ** 2, (vr * vr) ** 2
        q = (u4 + v4).sqrt().sqrt()
        wu = u4 / (u4 + v4 + 1e-12)
        rad = wu * r + (1.0 - wu) * hl  # pixels per unit of q: across near the sides, along near the ends
        nv = 0.5 * vr * vr * vr
    else:  # capsule: distance to the segment over the interpolated radius
        dv = v - t * L
        nv = dv / r
        q = (ur * ur + nv * nv).sqrt()
        rad = r
    alpha = ((1.0 - q) * rad + 0.5).clamp(0.0, 1.0)  # ~1 px anti-aliased edge
    # pseudo-3D normal: the in-plane part grows toward the silhouette
    nx, ny = nv * ux - ur * uy, ur * ux + nv * uy
    nn = (nx * nx + ny * ny).clamp(max=1.0)
    lx, ly, lz = (c(p.light[:, i]) for i in range(3))
    lam = (nx * lx + ny * ly + (1.0 - nn).sqrt() * lz).clamp_min(0.0)
    amb = c(p.ambient)
    shade = (amb + (1.0 - amb) * lam) * (1.0 - 0.25 * nn * nn)  # darker toward the edges
    # texture in part-local coordinates (it moves with the limb): waves mix color into
    # color2; with no (or faded-out) waves the mix is 0.5, the pattern's mean colour
    c1, c2 = p.color[:, k, :, None, None], p.color2[:, k, :, None, None]
    amp = p.wave_amp[:, k]
    js = [j for j in range(amp.shape[1]) if bool((amp[:, j] != 0).any())]
    if js:
        wv = p.waves[:, k]
        s = sum(c(amp[:, j]) * wave(c(wv[:, j, 0]) * u + c(wv[:, j, 1]) * v + c(wv[:, j, 2])) for j in js)
        col = c1 + (c2 - c1) * (0.5 + 0.5 * s).clamp(0.0, 1.0)[:, None]
    else:
        col = c1 + (c2 - c1) * 0.5
    if bool((p.cap_thresh[:, k] < 100).any()):  # cap (hair) beyond a line across the part
        cd = p.cap_dir[:, k]
        proj = (v - 0.5 * L) * (c(cd[:, 0]) * ux + c(cd[:, 1]) * uy) + u * (c(cd[:, 1]) * ux - c(cd[:, 0]) * uy)
        capm = ((proj - c(p.cap_thresh[:, k]) * r) + 0.5).clamp(0.0, 1.0)  # ~1 px soft edge
        col = col + (p.cap_color[:, k, :, None, None] - col) * capm[:, None]
    col = (col * shade[:, None]).expand(B, 3, wh, ww)
    return col.reshape(B, 3, -1), alpha.view(B, -1), flat


def _composite(fields: list[tuple[Tensor, Tensor, Tensor]], depth: Tensor, bg: Tensor) -> tuple[Tensor, Tensor]:
    """Back-to-front 'over' compositing of the part windows by per-frame depth.

    The rank loop handles, at each rank, every part that holds that rank in some frame
    (usually one: the depth order changes only now and then). Also returns the id of
    the nearest solid part under every pixel (-1: background). The image is kept as
    (B*H*W, 3) rows so each window is one ``index_select`` / ``index_copy_``.
    """
    B, _, H, W = bg.shape
    hw = H * W
    img = bg.permute(0, 2, 3, 1).reshape(B * hw, 3).clone()
    ids = torch.full((B * hw,), -1, dtype=torch.long, device=bg.device)
    order = torch.argsort(depth, dim=1, stable=True)  # far first
    for rank in range(order.shape[1]):
        at_rank = order[:, rank]
        for k in torch.unique(at_rank).tolist():
            col, alpha, flat = fields[k]
            if bool((at_rank == k).all()):
                rows = None
            else:
                rows = (at_rank == k).nonzero()[:, 0]
                col, alpha, flat = col.index_select(0, rows), alpha.index_select(0, rows), flat.index_select(0, rows)
            base = (torch.arange(B, device=bg.device) if rows is None else rows).view(-1, 1) * hw
            pix = (flat + base).view(-1)
            a = alpha.reshape(-1, 1)
            cur = img.index_select(0, pix)
            img.index_copy_(0, pix, cur + (col.transpose(1, 2).reshape(-1, 3) - cur) * a)
            cur_id = ids.index_select(0, pix)
            ids.index_copy_(0, pix, torch.where(a[:, 0] > 0.5, k, cur_id))
    return img.view(B, H, W, 3).permute(0, 3, 1, 2), ids.view(B, H, W)


def render_parts(parts: Parts, background: Tensor) -> tuple[Tensor, Tensor]:
    """Draw ``parts`` over ``background`` (B,3,H,W) in [0,1].

    Returns images (B,3,H,W) in [0,1] and the id of the nearest part under every pixel
    (B,H,W), -1 for background. Frames are processed in chunks to bound memory.
    """
    B, P = parts.depth.shape
    H, W = background.shape[-2:]
    step = max(1, ELEMENT_BUDGET // (H * W))
    imgs, ids = [], []
    for i in range(0, B, step):
        p = parts.slice(i, i + step)
        fields = [_part(p, k, H, W) for k in range(P)]
        img, pid = _composite(fields, p.depth, background[i:i + step])
        imgs.append(img.clamp(0.0, 1.0))
        ids.append(pid)
    return torch.cat(imgs), torch.cat(ids)
