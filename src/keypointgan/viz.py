"""Small drawing helpers for previews and reports: skeleton overlays and image grids.

Keypoints are in image pixels with the COCO convention (pixel i's centre at x = i, see
``pose.coords``). Images are uint8 (H, W, 3) numpy arrays; drawing uses PIL.
"""

from __future__ import annotations

import colorsys
from typing import Optional, Sequence

import numpy as np
from PIL import Image, ImageDraw

Color = tuple[int, int, int]


def edge_palette(n: int, saturation: float = 0.85, value: float = 1.0) -> list[Color]:
    """``n`` well-separated colours (one per link)."""
    return [tuple(int(255 * c) for c in colorsys.hsv_to_rgb(i / max(n, 1), saturation, value))
            for i in range(n)]


def side_colors(keypoint_names: Sequence[str], edges: Sequence[tuple[int, int]]) -> list[Color]:
    """Per-link colours by body side: right red, left blue, centre green (by name prefix)."""
    def side(name: str) -> int:
        n = name.lower()
        if n.startswith(("r_", "right")):
            return 0
        if n.startswith(("l_", "left")):
            return 1
        return 2

    table = [(235, 60, 50), (50, 120, 255), (60, 200, 80)]
    out = []
    for i, j in edges:
        si, sj = side(keypoint_names[i]), side(keypoint_names[j])
        out.append(table[si if si != 2 else sj])
    return out


def draw_skeleton(image: np.ndarray, keypoints: np.ndarray, edges: Sequence[tuple[int, int]],
                  color: Color | Sequence[Color] | None = None, point_color: Color = (255, 255, 255),
                  scale: int = 1, width: Optional[int] = None, radius: Optional[float] = None,
                  visible: Optional[np.ndarray] = None) -> np.ndarray:
    """A copy of ``image`` (H,W,3 uint8) with links and keypoints (K,2 pixels) drawn on it.

    ``color`` is one colour or one per edge (default: a palette). ``scale`` enlarges the
    image first (nearest neighbour) so lines stay thin on small images. Keypoints with
    ``visible`` False (and links touching them) are skipped.
    """
    img = np.asarray(image)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, -1)
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[-1] != 3:
        raise ValueError(f"draw_skeleton expects an (H,W,3) uint8 image, got {img.dtype} {img.shape}")
    kp = np.asarray(keypoints, dtype=np.float64)[:, :2]
    vis = np.ones(len(kp), bool) if visible is None else np.asarray(visible, bool)
    pil = Image.fromarray(img)
    if scale != 1:
        pil = pil.resize((img.shape[1] * scale, img.shape[0] * scale), Image.NEAREST)
    xy = (kp + 0.5) * scale - 0.5  # pixel centres stay pixel centres
    size = max(pil.size)
    width = width or max(1, round(size / 64))
    radius = radius if radius is not None else max(1.0, size / 80)
    if color is None:
        colors = edge_palette(len(edges))
    elif isinstance(color[0], (int, np.integer)):
        colors = [tuple(color)] * len(edges)  # type: ignore[arg-type]
    else:
        colors = [tuple(c) for c in color]  # type: ignore[union-attr]
    d = ImageDraw.Draw(pil)
    for (i, j), c in zip(edges, colors):
        if vis[i] and vis[j]:
            d.line([tuple(xy[i]), tuple(xy[j])], fill=c, width=width)
    for k, (x, y) in enumerate(xy):
        if vis[k]:
            d.ellipse([x - radius, y - radius, x + radius, y + radius], fill=point_color, outline=(0, 0, 0))
    return np.asarray(pil)


def make_grid(images: Sequence[np.ndarray], ncols: int = 8, pad: int = 2, pad_value: int = 255) -> np.ndarray:
    """Tile equally sized (H,W,3) uint8 images into rows of ``ncols`` with ``pad`` px gaps."""
    if len(images) == 0:
        raise ValueError("make_grid needs at least one image")
    ims = [np.asarray(i) for i in images]
    h, w = ims[0].shape[:2]
    if any(i.shape[:2] != (h, w) for i in ims):
        raise ValueError("make_grid needs images of one size")
    ims = [np.repeat(i[..., None], 3, -1) if i.ndim == 2 else i for i in ims]
    ncols = max(1, min(ncols, len(ims)))
    nrows = -(-len(ims) // ncols)
    grid = np.full((nrows * h + (nrows + 1) * pad, ncols * w + (ncols + 1) * pad, 3), pad_value, np.uint8)
    for n, im in enumerate(ims):
        r, c = divmod(n, ncols)
        y, x = pad + r * (h + pad), pad + c * (w + pad)
        grid[y:y + h, x:x + w] = im[..., :3]
    return grid


def training_grid(*rows: "torch.Tensor", n: int = 8) -> "torch.Tensor":
    """Rows of (B,C,H,W) images in [-1, 1] (1-channel ones shown grey) as one (3,H',W') grid in [0, 1].

    For TensorBoard: x, x', Phi(x), beta(eta(Phi(x))), reconstruction, prior samples.
    """
    import torch

    tiles = []
    for r in rows:
        r = r[:n].detach().float().cpu().clamp(-1, 1)
        if r.shape[1] == 1:
            r = r.repeat(1, 3, 1, 1)
        tiles.append(torch.cat(list((r + 1) / 2), dim=2))  # one row: (3, H, n*W)
    width = max(t.shape[2] for t in tiles)
    tiles = [torch.nn.functional.pad(t, (0, width - t.shape[2])) for t in tiles]
    return torch.cat(tiles, dim=1)


def to_uint8(img: "torch.Tensor") -> np.ndarray:
    """(3,H,W) [-1,1] or (1,H,W) -> (H,W,3) uint8."""
    x = img.detach().float().cpu()
    if x.shape[0] == 1:
        x = x.repeat(3, 1, 1)
    return ((x.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()


def prediction_grid(images: Sequence["torch.Tensor"], pred: np.ndarray, gt: Optional[np.ndarray], edges, size: int,
                    ncols: int = 8, scale: int = 3) -> np.ndarray:
    """Test images with predicted skeletons (green) and, if given, ground truth (red dots)."""
    from .pose import normalized_to_pixels

    tiles = []
    for i, img in enumerate(images):
        im = to_uint8(img)
        im = np.kron(im, np.ones((scale, scale, 1), np.uint8))
        if gt is not None:
            im = draw_skeleton(im, normalized_to_pixels(gt[i], size * scale), edges, color=(230, 60, 60),
                               point_color=(230, 60, 60), width=1, radius=1.0)
        im = draw_skeleton(im, normalized_to_pixels(pred[i], size * scale), edges, color=(40, 230, 80),
                           width=2, radius=1.5)
        tiles.append(im)
    return make_grid(tiles, ncols)
