"""Vectorised rasteriser: shaded, textured, depth-ordered body parts over a background.

Every part is a tapered capsule (limbs, head) or a tapered rounded box (torso, hips)
between two points. For a batch of frames all parts are evaluated at all pixels at
once as distance fields (B, P, H, W); there is no per-pixel Python and no PIL drawing.
Parts are then alpha-composited back to front by a per-frame depth, so the draw order
(an arm in front of or behind the torso) can change from frame to frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

Tensor = torch.Tensor
ELEMENT_BUDGET = 1 << 20  # B*P*h*w window elements per chunk: bounds the rasteriser's memory


@dataclass
class Parts:
    """A batch of B frames of P parts, all in pixel units (pixel i's centre at x = i).

    ``waves`` are (ku, kv, phase) of J sinusoids in part-local coordinates (u across,
    v along the part, radians per pixel) whose clipped sum mixes ``color`` into
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

    def slice(self, i: int, j: int) -> "Parts":
        """Frames i..j (the per-part ``box`` flags are shared)."""
        kw = {k: (v if k == "box" else v[i:j]) for k, v in self.__dict__.items()}
        return Parts(**kw)


def _windows(p: Parts, h: int, w: int) -> tuple[Tensor, int, int]:
    """Top-left pixel (B,P,2) of one common-size window per part that holds the part.

    Parts are small, so evaluating them on windows instead of the whole image saves
    most of the work. The window is shifted to lie inside the image, which still covers
    every in-image pixel of the part because it is at least as large as the part.
    """
    r = torch.maximum(p.ra, p.rb)[..., None] + 1.5
    lo = (torch.minimum(p.a, p.b) - r).floor()
    hi = (torch.maximum(p.a, p.b) + r).ceil()
    ww = int(min(w, (hi[..., 0] - lo[..., 0]).max().item() + 1))
    wh = int(min(h, (hi[..., 1] - lo[..., 1]).max().item() + 1))
    ox = lo[..., 0].clamp(0, w - ww)
    oy = lo[..., 1].clamp(0, h - wh)
    return torch.stack([ox, oy], -1), wh, ww


def _fields(p: Parts, origin: Tensor, wh: int, ww: int) -> tuple[Tensor, Tensor]:
    """Per-part colour (B,P,3,wh,ww) and coverage alpha (B,P,wh,ww) on the windows."""
    dev, dt = p.a.device, p.a.dtype
    e = lambda x: x[..., None, None]  # noqa: E731  (B,P) -> (B,P,1,1)
    px = e(origin[..., 0]) + torch.arange(ww, device=dev, dtype=dt).view(1, 1, 1, ww)
    py = e(origin[..., 1]) + torch.arange(wh, device=dev, dtype=dt).view(1, 1, wh, 1)
    ax, ay = e(p.a[..., 0]), e(p.a[..., 1])
    d = p.b - p.a
    length = d.norm(dim=-1).clamp_min(1e-3)
    ux, uy = e(d[..., 0] / length), e(d[..., 1] / length)  # unit axis
    L = e(length)
    rx, ry = px - ax, py - ay
    v = rx * ux + ry * uy  # along the axis, from a
    u = ry * ux - rx * uy  # across (signed)
    t = (v / L).clamp(0.0, 1.0)
    r = e(p.ra) + (e(p.rb) - e(p.ra)) * t
    box = p.box.view(1, -1, 1, 1)
    # capsule: distance to the segment over the interpolated radius
    dv = v - t * L
    q_cap = torch.sqrt(u * u + dv * dv) / r
    # rounded box (superellipse, exponent 4), tapered along its axis
    hl = L * 0.5
    vc = v - hl
    ur, vr = u / r, vc / hl
    q_box = ((ur * ur) ** 2 + (vr * vr) ** 2).sqrt().sqrt()
    q = torch.where(box, q_box, q_cap)
    rad = torch.where(box, torch.minimum(r, hl), r)
    alpha = ((1.0 - q) * rad + 0.5).clamp(0.0, 1.0)  # ~1 px anti-aliased edge
    # pseudo-3D normal: in-plane part grows toward the silhouette, z from the unit sphere
    nv = torch.where(box, 0.5 * vr * vr * vr, dv / r)
    nx, ny = nv * ux - ur * uy, ur * ux + nv * uy
    nn = (nx * nx + ny * ny).clamp(max=1.0)
    nz = torch.sqrt(1.0 - nn)
    lx, ly, lz = (p.light[:, i].view(-1, 1, 1, 1) for i in range(3))
    lam = (nx * lx + ny * ly + nz * lz).clamp_min(0.0)
    amb = p.ambient.view(-1, 1, 1, 1)
    shade = (amb + (1.0 - amb) * lam) * (1.0 - 0.25 * nn * nn)  # darker toward the edges
    # texture in part-local coordinates, so it moves with the limb
    wv = p.waves[..., None, None, :]  # (B,P,J,1,1,3)
    s = (p.wave_amp[..., None, None] * torch.sin(wv[..., 0] * u[:, :, None] + wv[..., 1] * v[:, :, None]
                                                 + wv[..., 2])).sum(2)
    mix = (0.5 + 0.5 * s).clamp(0.0, 1.0)[:, :, None]
    col = p.color[..., None, None] + (p.color2 - p.color)[..., None, None] * mix
    # cap (hair): pixels beyond a threshold along a direction from the part's centre
    proj = (v - hl) * (e(p.cap_dir[..., 0]) * ux + e(p.cap_dir[..., 1]) * uy) \
        + u * (e(p.cap_dir[..., 1]) * ux - e(p.cap_dir[..., 0]) * uy)
    capm = torch.sigmoid((proj - e(p.cap_thresh) * r) * 2.0)[:, :, None]
    col = col + (p.cap_color[..., None, None] - col) * capm
    return col * shade[:, :, None], alpha


def _composite(col: Tensor, alpha: Tensor, depth: Tensor, origin: Tensor, bg: Tensor) -> tuple[Tensor, Tensor]:
    """Back-to-front 'over' compositing of the windows by per-frame depth.

    Also returns the id of the nearest solid part under every pixel (-1: background).
    """
    B, P, wh, ww = alpha.shape
    H, W = bg.shape[-2:]
    n = wh * ww
    dev = alpha.device
    iy = torch.arange(wh, device=dev).view(1, 1, wh, 1)
    ix = torch.arange(ww, device=dev).view(1, 1, 1, ww)
    o = origin.long()
    flat = ((o[..., 1, None, None] + iy) * W + o[..., 0, None, None] + ix).view(B, P, n)
    img = bg.reshape(B, 3, H * W).clone()
    ids = torch.full((B, H * W), -1, dtype=torch.long, device=dev)
    order = torch.argsort(depth, dim=1)  # far first
    rows = torch.arange(B, device=dev)
    alpha, col = alpha.view(B, P, 1, n), col.view(B, P, 3, n)
    for k in range(P):
        sel = order[:, k]
        a, c, idx = alpha[rows, sel], col[rows, sel], flat[rows, sel]  # (B,1,n) (B,3,n) (B,n)
        idx3 = idx[:, None].expand(B, 3, n)
        cur = img.gather(2, idx3)
        img.scatter_(2, idx3, cur + (c - cur) * a)
        cur_id = ids.gather(1, idx)
        ids.scatter_(1, idx, torch.where(a[:, 0] > 0.5, sel[:, None].expand(B, n), cur_id))
    return img.view(B, 3, H, W), ids.view(B, H, W)


def render_parts(parts: Parts, background: Tensor) -> tuple[Tensor, Tensor]:
    """Draw ``parts`` over ``background`` (B,3,H,W) in [0,1].

    Returns images (B,3,H,W) in [0,1] and the id of the nearest part under every pixel
    (B,H,W), -1 for background. Frames are processed in chunks to bound memory.
    """
    B, P = parts.depth.shape
    H, W = background.shape[-2:]
    origin, wh, ww = _windows(parts, H, W)
    step = max(1, ELEMENT_BUDGET // (P * wh * ww))
    imgs, ids = [], []
    for i in range(0, B, step):
        p, o = parts.slice(i, i + step), origin[i:i + step]
        col, alpha = _fields(p, o, wh, ww)
        img, pid = _composite(col, alpha, p.depth, o, background[i:i + step])
        imgs.append(img.clamp(0.0, 1.0))
        ids.append(pid)
    return torch.cat(imgs), torch.cat(ids)
