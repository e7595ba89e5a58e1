"""One synthetic video as a scene: motion + proportions + appearance, framed in the image.

A :class:`VideoScene` is resolution independent (normalised image coordinates, see
``pose.coords``); :func:`scene_parts` turns frames of it into the rasteriser's pixel
units at a given image size, so one seed gives the same video at 32, 64 or 128 px.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from ...pose.skeleton import Skeleton
from ..base import DataError
from .appearance import (Appearance, Background, Garment, render_background, sample_appearance,
                         sample_background)
from .motion import Body, forward_kinematics, sample_angles, sample_body
from .raster import Parts, render_parts

PART_NAMES: tuple[str, ...] = (
    "torso", "hips", "neck", "head",
    "r_upper_arm", "r_forearm", "r_hand", "l_upper_arm", "l_forearm", "l_hand",
    "r_thigh", "r_shin", "r_foot", "l_thigh", "l_shin", "l_foot",
)
_BOX = torch.tensor([n in ("torso", "hips") for n in PART_NAMES])
# small depth offsets keep a stable order between parts at the same depth
_DEPTH_BIAS = {"torso": -0.02, "hips": -0.019, "neck": -0.005, "head": 0.01,
               "upper_arm": 0.0, "forearm": 0.001, "hand": 0.002, "thigh": 0.0, "shin": 0.001, "foot": 0.002}
# parts that "own" a keypoint: if another part covers its pixel, the keypoint is occluded
KEYPOINT_PARTS: dict[str, tuple[str, ...]] = {
    "head": ("head", "neck"), "neck": ("neck", "torso", "head"), "pelvis": ("torso", "hips", "r_thigh", "l_thigh"),
    **{f"{s}_shoulder": ("torso", f"{s}_upper_arm") for s in "rl"},
    **{f"{s}_elbow": (f"{s}_upper_arm", f"{s}_forearm") for s in "rl"},
    **{f"{s}_wrist": (f"{s}_forearm", f"{s}_hand") for s in "rl"},
    **{f"{s}_hip": ("hips", "torso", f"{s}_thigh") for s in "rl"},
    **{f"{s}_knee": (f"{s}_thigh", f"{s}_shin") for s in "rl"},
    **{f"{s}_ankle": (f"{s}_shin", f"{s}_foot") for s in "rl"},
}


@dataclass
class VideoScene:
    """Everything needed to draw one video, in normalised image coordinates."""

    vid: int
    name: str
    category: str
    keypoints: np.ndarray  # (T,K,2) normalised, skeleton order
    part_a: np.ndarray  # (T,P,2)
    part_b: np.ndarray  # (T,P,2)
    part_ra: np.ndarray  # (T,P)
    part_rb: np.ndarray  # (T,P)
    part_depth: np.ndarray  # (T,P)
    cap_dir: np.ndarray  # (T,2) hair direction of the head
    garments: tuple[Garment, ...]  # one per part; waves in radians per body unit
    body_scale: float  # normalised units per body unit
    appearance: Appearance
    background: Background

    @property
    def num_frames(self) -> int:
        return self.keypoints.shape[0]


def _xy(p: np.ndarray) -> np.ndarray:
    """3D camera points (...,3) -> 2D image-plane points (...,2), y down."""
    return np.stack([p[..., 0], -p[..., 1]], -1)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)


def _projected_width(half: np.ndarray, depth: np.ndarray, axis2d: np.ndarray) -> np.ndarray:
    """Half width, across a 2D axis, of an elliptic cross-section spanned by 3D half-axes."""
    perp = np.stack([-axis2d[..., 1], axis2d[..., 0]], -1)
    a = (_xy(half) * perp).sum(-1)
    b = (_xy(depth) * perp).sum(-1)
    return np.sqrt(a * a + b * b)


def _geometry(body: Body, p: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
    """Per-frame part segments (T,P,2), radii (T,P) and depths (T,P), in body units."""
    T = p["pelvis"].shape[0]
    P = len(PART_NAMES)
    a, b = np.zeros((T, P, 2)), np.zeros((T, P, 2))
    ra, rb, dz = np.zeros((T, P)), np.zeros((T, P)), np.zeros((T, P))
    idx = {n: i for i, n in enumerate(PART_NAMES)}

    def seg(name: str, p0: np.ndarray, p1: np.ndarray, r0, r1, z: np.ndarray) -> None:
        i = idx[name]
        a[:, i], b[:, i], ra[:, i], rb[:, i] = p0, p1, r0, r1
        dz[:, i] = z + _DEPTH_BIAS[name.split("_", 1)[-1] if name[:2] in ("r_", "l_") else name]

    pelvis, neck = _xy(p["pelvis"]), _xy(p["neck"])
    axis = _unit(neck - pelvis)
    half_sh = (p["l_shoulder"] - p["r_shoulder"]) / 2
    half_hip = (p["l_hip"] - p["r_hip"]) / 2
    chest = p["forward"] * body.torso_depth
    w_sh = _projected_width(half_sh, chest, axis)
    w_hip = _projected_width(half_hip, chest * 0.9, axis)
    z_torso = (p["pelvis"][:, 2] + p["neck"][:, 2]) / 2
    bottom = pelvis - axis * (0.45 * body.hip + 0.02)
    seg("torso", bottom, neck + axis * 0.015, w_hip + 0.5 * body.r_thigh[0], w_sh + 0.5 * body.r_upper_arm[0],
        z_torso)
    seg("hips", bottom, pelvis + axis * 0.07, w_hip + 0.75 * body.r_thigh[0], w_hip + 0.55 * body.r_thigh[0],
        z_torso)
    head, up = _xy(p["head"]), _xy(p["head_up"])
    seg("neck", neck - axis * 0.01, head - up * body.head_r * 0.7, body.r_neck, body.r_neck, p["neck"][:, 2])
    seg("head", head - up * 0.2 * body.head_r, head + up * 0.2 * body.head_r, body.head_r, body.head_r,
        p["head"][:, 2])
    for s in "rl":
        sh, el, wr, hd = (p[f"{s}_{k}"] for k in ("shoulder", "elbow", "wrist", "hand"))
        seg(f"{s}_upper_arm", _xy(sh), _xy(el), *body.r_upper_arm, (sh[:, 2] + el[:, 2]) / 2)
        seg(f"{s}_forearm", _xy(el), _xy(wr), *body.r_forearm, (el[:, 2] + wr[:, 2]) / 2)
        tip = wr + (hd - wr) * 0.55
        seg(f"{s}_hand", _xy(wr), _xy(tip), body.r_hand, body.r_hand * 0.9, (wr[:, 2] + hd[:, 2]) / 2)
        hp, kn, an, to = (p[f"{s}_{k}"] for k in ("hip", "knee", "ankle", "toe"))
        seg(f"{s}_thigh", _xy(hp), _xy(kn), *body.r_thigh, (hp[:, 2] + kn[:, 2]) / 2)
        seg(f"{s}_shin", _xy(kn), _xy(an), *body.r_shin, (kn[:, 2] + an[:, 2]) / 2)
        seg(f"{s}_foot", _xy(an), _xy(to), body.r_foot, body.r_foot, (an[:, 2] + to[:, 2]) / 2)
    return a, b, ra, rb, dz


def _garments(app: Appearance) -> tuple[Garment, ...]:
    out = []
    for n in PART_NAMES:
        limb = n.split("_", 1)[-1]
        if n in ("torso",) or limb == "upper_arm":
            g = app.shirt
        elif limb == "forearm":
            g = app.shirt if app.long_sleeves else app.skin
        elif n == "hips" or limb == "thigh":
            g = app.trousers
        elif limb == "shin":
            g = app.trousers if app.long_trousers else app.skin
        elif limb == "foot":
            g = app.shoes
        else:
            g = app.skin
        out.append(g)
    return tuple(out)


def make_scene(vid: int, name: str, category: str, seed: int, num_frames: int,
               skeleton: Skeleton) -> VideoScene:
    """Sample one video: its own rng streams for motion, body, look and background."""
    rng = lambda stream: np.random.default_rng([seed, vid, stream])  # noqa: E731
    body = sample_body(rng(1))
    pts = forward_kinematics(body, sample_angles(category, rng(0), num_frames))
    unknown = [n for n in skeleton.keypoint_names if n not in pts or n in ("head_up", "forward")]
    if unknown:
        raise DataError(f"skeleton '{skeleton.name}' has keypoints the synthetic figure does not have: "
                        f"{unknown}; use 'synth_humanoid' or a subset of its names")
    a, b, ra, rb, dz = _geometry(body, pts)
    kp = np.stack([_xy(pts[n]) for n in skeleton.keypoint_names], 1)  # (T,K,2) body units
    # frame the whole video: its extent (joints, hand/toe tips, head top, with margins)
    head_top = _xy(pts["head"] + pts["head_up"] * body.head_r)
    extra = [_xy(pts[k]) for k in ("r_hand", "l_hand", "r_toe", "l_toe")] + [head_top]
    allp = np.concatenate([kp, np.stack(extra, 1)], 1).reshape(-1, 2)
    margin = 0.04
    lo, hi = allp.min(0) - margin, allp.max(0) + margin
    place = rng(4)
    k = place.uniform(0.75, 0.95) * 2.0 / max(hi - lo)  # normalised units per body unit
    slack = np.maximum(2.0 - k * (hi - lo), 0.0) / 2
    centre = place.uniform(-1, 1, 2) * slack * 0.9 - k * (lo + hi) / 2
    to_norm = lambda x: centre + k * x  # noqa: E731
    up2d = _xy(pts["head_up"])
    fwd2d = _xy(pts["forward"])
    app = sample_appearance(rng(2))
    return VideoScene(
        vid=vid, name=name, category=category, keypoints=to_norm(kp),
        part_a=to_norm(a), part_b=to_norm(b), part_ra=k * ra, part_rb=k * rb, part_depth=dz,
        cap_dir=_unit(_unit(up2d) - 0.8 * fwd2d), garments=_garments(app), body_scale=k,
        appearance=app, background=sample_background(rng(3)),
    )


def scene_parts(scene: VideoScene, frames: Sequence[int], size: int) -> Parts:
    """The rasteriser's input for some frames of a scene at ``size`` pixels."""
    f = np.asarray(frames, dtype=np.int64)
    B, P = len(f), len(PART_NAMES)
    half = size / 2.0
    to_px = lambda x: torch.from_numpy((x + 1.0) * half - 0.5).float()  # noqa: E731
    app = scene.appearance
    # textures: body units -> pixels; fade out waves too fine for the resolution
    px_per_body = scene.body_scale * half
    waves = np.stack([g.waves for g in scene.garments]).copy()  # (P,J,3)
    waves[..., :2] /= px_per_body
    kmag = np.linalg.norm(waves[..., :2], axis=-1)
    period = 2 * np.pi / np.maximum(kmag, 1e-9)
    amp = np.stack([g.amp for g in scene.garments]) * np.clip((period - 2.5) / 2.5, 0, 1)
    rep = lambda x: torch.from_numpy(np.broadcast_to(x, (B,) + x.shape).copy()).float()  # noqa: E731
    head = PART_NAMES.index("head")
    cap_dir = np.zeros((B, P, 2))
    cap_dir[:, :, 1] = -1.0
    cap_dir[:, head] = scene.cap_dir[f]
    thresh = np.full(P, 1e4)
    thresh[head] = app.hair_line
    return Parts(
        a=to_px(scene.part_a[f]), b=to_px(scene.part_b[f]),
        ra=torch.from_numpy(scene.part_ra[f] * half).float(), rb=torch.from_numpy(scene.part_rb[f] * half).float(),
        depth=torch.from_numpy(scene.part_depth[f]).float(), box=_BOX,
        color=rep(np.stack([g.color for g in scene.garments])),
        color2=rep(np.stack([g.color2 for g in scene.garments])),
        waves=rep(waves), wave_amp=rep(amp),
        cap_color=rep(np.broadcast_to(app.hair, (P, 3))), cap_dir=torch.from_numpy(cap_dir).float(),
        cap_thresh=rep(thresh), light=rep(app.light), ambient=torch.full((B,), app.ambient),
    )


def render_scene(scene: VideoScene, frames: Sequence[int], size: int,
                 background: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Frames of a scene as uint8 (B,3,H,W) and the part id under every pixel (B,H,W)."""
    bg = render_background(scene.background, size) if background is None else background
    parts = scene_parts(scene, frames, size)
    img, ids = render_parts(parts, bg.expand(len(frames), -1, -1, -1))
    return (img * 255.0 + 0.5).to(torch.uint8), ids.to(torch.int8)


def occlusion(scene: VideoScene, frames: Sequence[int], ids: torch.Tensor, skeleton: Skeleton) -> np.ndarray:
    """(B,K) bool: keypoints whose pixel is covered by a part that does not own them."""
    size = ids.shape[-1]
    kp = (scene.keypoints[np.asarray(frames)] + 1.0) * size / 2 - 0.5  # pixel coordinates
    ij = np.clip(np.rint(kp), 0, size - 1).astype(np.int64)
    front = ids.numpy()[np.arange(len(frames))[:, None], ij[..., 1], ij[..., 0]]  # (B,K)
    owners = np.zeros((skeleton.num_keypoints, len(PART_NAMES) + 1), dtype=bool)  # last column: background
    owners[:, -1] = True
    for i, name in enumerate(skeleton.keypoint_names):
        for part in KEYPOINT_PARTS.get(name, PART_NAMES):
            owners[i, PART_NAMES.index(part)] = True
    return ~owners[np.arange(skeleton.num_keypoints)[None], front]
