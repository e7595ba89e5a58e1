"""Appearance/geometry factorisation (paper fig. 9) and keypoint editing (fig. 10).

The keypoint bottleneck separates pose from appearance: ``beta(eta(Phi(x)))`` is the
pose of ``x`` as a skeleton image, ``Psi(y, x')`` paints skeleton ``y`` with the
appearance of ``x'``. So

- *transfer*: the pose of each pose image, rendered with the appearance of each
  appearance image, ``Psi(beta(eta(Phi(x_pose))), x_app)``;
- *edit*: move keypoints of an image, re-render them with beta and regenerate with
  the image itself as the appearance, ``Psi(beta(p + delta), x)``.

Images are centre-cropped (shorter side) and resized to the model resolution, as in
prediction; generated images are at the model resolution.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from ..data.transforms import CropBox, to_tensor_batch, to_uint8
from ..data.video import read_image
from ..errors import UsageError
from ..pose.skeleton import Skeleton
from ..viz import draw_skeleton, make_grid, side_colors
from .loading import TrainedModel
from .predict import PathLike, detect, load_model, prepare

DISPLAY_SIZE = 128  # grid tiles are enlarged (nearest, integer factor) to at least this size


# -- pictures ------------------------------------------------------------------------------
def _enlarge(img: np.ndarray, size: int) -> np.ndarray:
    f = max(1, math.ceil(DISPLAY_SIZE / size))
    return np.repeat(np.repeat(img, f, 0), f, 1) if f > 1 else img


def skeleton_picture(y: torch.Tensor, signed: bool) -> np.ndarray:
    """A rendered skeleton (1,S,S) or (S,S) as a grey uint8 (S,S,3) picture (links white)."""
    y = y.detach().float().cpu().reshape(y.shape[-2:])
    v = (y + 1) / 2 if signed else y
    g = (v.clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    return np.repeat(g[..., None], 3, -1)


def _with_skeleton(img: np.ndarray, kp_norm: torch.Tensor | np.ndarray, sk: Skeleton) -> np.ndarray:
    """``img`` (S,S,3) enlarged for display with the skeleton of normalised keypoints drawn on it."""
    size = img.shape[0]
    big = _enlarge(img, size)
    f = big.shape[0] / size
    px = (np.asarray(kp_norm, np.float64) + 1.0) * big.shape[0] / 2.0 - 0.5  # normalised -> display pixels
    return draw_skeleton(big, px, sk.edges, color=side_colors(sk.keypoint_names, sk.edges),
                         radius=max(1.5, f))


def _save(img: np.ndarray, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path)
    return path


def load_crops(paths: Sequence[PathLike], size: int) -> tuple[list[np.ndarray], list[CropBox]]:
    """Each image centre-cropped and resized to ``size``; unreadable files are errors naming them."""
    if not paths:
        raise UsageError("no images given")
    crops, boxes = [], []
    for p in paths:
        c, b = prepare(read_image(p), size)
        crops.append(c)
        boxes.append(b)
    return crops, boxes


# -- transfer ---------------------------------------------------------------------------
@torch.no_grad()
def transfer_images(tm: TrainedModel, pose: torch.Tensor, appearance: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(generated (A,P,3,S,S) in [-1, 1], pose keypoints (P,K,2)) for images in [-1, 1].

    ``generated[a, p] = Psi(beta(eta(Phi(pose[p]))), appearance[a])``.
    """
    model, rt = tm.model, tm.runtime
    kp, _ = detect(tm, pose, orient=False)
    with rt.autocast():
        y = model.psi_pose(kp.to(rt.device))
        rows = [model.reconstruct(y, rt.tensor(a[None].expand(len(pose), -1, -1, -1).contiguous())).float().cpu()
                for a in appearance]
    return torch.stack(rows), kp


def transfer(checkpoint: PathLike, pose_images: Sequence[PathLike], appearance_images: Sequence[PathLike],
             out: PathLike, *, device: str = "auto", precision: str = "auto", weights: str = "auto") -> Path:
    """Write ``out/transfer.png``: rows = appearance images, columns = pose images; returns its path.

    The header row shows the pose images with their detected skeletons, the header
    column the appearance images. ``out/transfer.json`` lists rows and columns.
    """
    if not pose_images or not appearance_images:
        raise UsageError("transfer needs at least one pose image and one appearance image")
    tm = load_model(checkpoint, device=device, precision=precision, weights=weights)
    size = tm.model.image_size
    pose_crops, _ = load_crops(pose_images, size)
    app_crops, _ = load_crops(appearance_images, size)
    gen, kp = transfer_images(tm, to_tensor_batch(pose_crops), to_tensor_batch(app_crops))
    blank = np.full_like(_enlarge(pose_crops[0], size), 255)
    tiles = [blank] + [_with_skeleton(c, k, tm.skeleton) for c, k in zip(pose_crops, kp)]
    for a, crop in enumerate(app_crops):
        tiles.append(_enlarge(crop, size))
        tiles.extend(_enlarge(to_uint8(g), size) for g in gen[a])
    out = Path(out)
    path = _save(make_grid(tiles, ncols=len(pose_crops) + 1), out / "transfer.png")
    (out / "transfer.json").write_text(json.dumps({
        "grid": path.name, "rows_appearance": [str(p) for p in appearance_images],
        "columns_pose": [str(p) for p in pose_images],
        "pose_keypoints_normalized": kp.tolist()}, indent=1))
    return path


# -- editing --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Move:
    """A keypoint move: an offset (default) or an absolute position (``absolute``),
    in the crop's normalised units (the crop spans [-1, 1]) or original-image pixels (``pixels``)."""

    name: str
    x: float
    y: float
    absolute: bool = False
    pixels: bool = False
    text: str = ""


MOVE_SYNTAX = ("NAME=DX,DY (offset, normalised: the crop spans [-1, 1]), NAME=DXpx,DYpx (offset in "
               "original-image pixels), NAME=@X,Y or NAME=@Xpx,Ypx (absolute position)")


def parse_move(text: str) -> Move:
    """``l_wrist=+0.1,-0.2``, ``l_wrist=5px,-8px``, ``l_wrist=@0.3,0.5``, ``l_wrist=@40px,12px``."""
    name, eq, value = text.partition("=")
    name, value = name.strip(), value.strip()
    absolute = value.startswith("@")
    parts = [v.strip() for v in value.lstrip("@").split(",")]
    if not eq or not name or len(parts) != 2:
        raise UsageError(f"bad keypoint move {text!r}: expected {MOVE_SYNTAX}")
    units = [p.lower().endswith("px") for p in parts]
    if units[0] != units[1]:
        raise UsageError(f"bad keypoint move {text!r}: give both coordinates in pixels ('px') or neither")
    try:
        x, y = (float(p[:-2] if u else p) for p, u in zip(parts, units))
    except ValueError:
        raise UsageError(f"bad keypoint move {text!r}: coordinates must be numbers; expected {MOVE_SYNTAX}") from None
    if not (math.isfinite(x) and math.isfinite(y)):
        raise UsageError(f"bad keypoint move {text!r}: coordinates must be finite")
    return Move(name, x, y, absolute, units[0], text)


def apply_moves(keypoints: torch.Tensor, moves: Sequence[Move | str], skeleton: Skeleton,
                box: CropBox) -> torch.Tensor:
    """Normalised keypoints (K,2) with ``moves`` applied (in order); ``box`` maps pixel moves.

    An unknown keypoint name is a ``ValueError`` listing the skeleton's names.
    """
    kp = keypoints.detach().clone().float()
    for m in moves:
        m = parse_move(m) if isinstance(m, str) else m
        if m.name not in skeleton.keypoint_names:
            raise UsageError(f"unknown keypoint '{m.name}' in move {m.text or m.name!r}; skeleton "
                             f"'{skeleton.name}' has: {', '.join(skeleton.keypoint_names)}")
        j = skeleton.keypoint_names.index(m.name)
        v = np.array([m.x, m.y], np.float64)
        if m.absolute:
            new = box.to_normalized(v) if m.pixels else v
        else:
            new = kp[j].double().numpy() + (v * 2.0 / box.size if m.pixels else v)
        kp[j] = torch.as_tensor(new, dtype=kp.dtype)
    return kp


@dataclass
class EditResult:
    """Everything one edit produced (tensors on the CPU; keypoints normalised in the crop)."""

    crop: np.ndarray  # (S,S,3) uint8 input at the model resolution
    box: CropBox  # the crop in the original image's pixels
    keypoints: torch.Tensor  # (K,2) detected
    edited: torch.Tensor  # (K,2) after the moves
    skeleton_before: torch.Tensor  # (1,S,S) beta(keypoints)
    skeleton_after: torch.Tensor  # (1,S,S) beta(edited)
    reconstruction: torch.Tensor  # (3,S,S) Psi(beta(keypoints), x), in [-1, 1]
    regenerated: torch.Tensor  # (3,S,S) Psi(beta(edited), x), in [-1, 1]


@torch.no_grad()
def edit_image(tm: TrainedModel, image: np.ndarray, moves: Sequence[Move | str]) -> EditResult:
    """Detect the keypoints of ``image`` (original RGB uint8), move them, re-render and regenerate."""
    model, rt = tm.model, tm.runtime
    crop, box = prepare(image, model.image_size)
    x = to_tensor_batch([crop])
    kp, _ = detect(tm, x, orient=False)
    edited = apply_moves(kp[0], moves, tm.skeleton, box)
    with rt.autocast():
        y = model.psi_pose(torch.stack([kp[0], edited]).to(rt.device))
        gen = model.reconstruct(y, rt.tensor(x.expand(2, -1, -1, -1).contiguous())).float().cpu()
    y = y.float().cpu()
    return EditResult(crop, box, kp[0], edited, y[0], y[1], gen[0], gen[1])


def edit(checkpoint: PathLike, image: PathLike, moves: Sequence[Move | str], out: PathLike, *,
         device: str = "auto", precision: str = "auto", weights: str = "auto") -> Path:
    """Write ``out/edit.png`` and return its path; also ``out/edited.png`` and ``out/edit.json``.

    The grid: input with its detected skeleton, beta(detected), beta(edited), the
    unedited reconstruction Psi(beta(detected), x) and the regenerated image
    Psi(beta(edited), x). ``edit.json`` holds the keypoints before/after, normalised
    and in original-image pixels.
    """
    if not moves:
        raise UsageError("edit needs at least one move, e.g. l_wrist=+0.1,-0.2")
    moves = [parse_move(m) if isinstance(m, str) else m for m in moves]  # syntax errors before loading
    tm = load_model(checkpoint, device=device, precision=precision, weights=weights)
    r = edit_image(tm, read_image(image), moves)
    size, signed, sk = tm.model.image_size, tm.model.renderer.signed, tm.skeleton
    tiles = [_with_skeleton(r.crop, r.keypoints, sk),
             _enlarge(skeleton_picture(r.skeleton_before, signed), size),
             _enlarge(skeleton_picture(r.skeleton_after, signed), size),
             _enlarge(to_uint8(r.reconstruction), size), _enlarge(to_uint8(r.regenerated), size)]
    out = Path(out)
    path = _save(make_grid(tiles, ncols=len(tiles)), out / "edit.png")
    _save(to_uint8(r.regenerated), out / "edited.png")
    (out / "edit.json").write_text(json.dumps({
        "image": str(image), "moves": [m.text or m.name for m in moves],
        "keypoint_names": list(sk.keypoint_names), "crop_box": r.box.as_list(),
        "keypoints_normalized": r.keypoints.tolist(), "edited_normalized": r.edited.tolist(),
        "keypoints_px": r.box.to_pixels(r.keypoints.double().numpy()).tolist(),
        "edited_px": r.box.to_pixels(r.edited.double().numpy()).tolist(),
        "grid": ["input + detected skeleton", "beta(detected)", "beta(edited)",
                 "Psi(beta(detected), x)", "Psi(beta(edited), x)"]}, indent=1))
    return path
