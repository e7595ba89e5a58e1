"""Procedural motion of the synthetic humanoid: proportions, activities, 3D kinematics.

A figure is a 3D stick model (x: the figure's left, y: up, z: toward the camera)
driven by joint angles that move smoothly over time: a per-activity pattern (walk,
wave, squat, ...) plus smoothed noise, softly clamped to joint limits. It is seen by an
orthographic camera after a per-video (slowly drifting) yaw, so depth orders the limbs
and an arm can pass in front of, or behind, the torso. Everything here is numpy float64
and resolution independent ("body units": a standing figure is about 1 tall).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ACTIVITIES: tuple[str, ...] = ("walk", "wave", "squat", "reach", "jumping_jacks", "kick", "idle")

SIDES = ("r", "l")
SIGN = {"r": -1.0, "l": 1.0}  # the figure's right is the viewer's left when it faces the camera

# (lower, upper) limits in radians; "*_" keys apply to both sides.
LIMITS: dict[str, tuple[float, float]] = {
    "torso_fwd": (-0.35, 1.0), "torso_side": (-0.4, 0.4), "torso_twist": (-0.6, 0.6),
    "head_side": (-0.4, 0.4), "head_nod": (-0.4, 0.5),
    "sh_abd": (-0.8, 3.0), "sh_flex": (-0.9, 2.9), "el_abd": (-2.4, 1.6), "el_flex": (0.0, 2.5),
    "hip_abd": (-0.25, 0.9), "hip_flex": (-0.6, 2.0), "knee": (0.0, 2.4), "jump": (0.0, 0.25),
}

# amplitude (radians or body units) of the smoothed noise added to every angle
NOISE: dict[str, float] = {
    "torso_fwd": 0.04, "torso_side": 0.04, "torso_twist": 0.06, "head_side": 0.08, "head_nod": 0.08,
    "sh_abd": 0.12, "sh_flex": 0.12, "el_abd": 0.12, "el_flex": 0.15,
    "hip_abd": 0.04, "hip_flex": 0.06, "knee": 0.06, "jump": 0.0,
}


@dataclass(frozen=True)
class Body:
    """Per-video proportions in body units (lengths, and radii of the drawn parts)."""

    torso: float
    neck: float
    head_r: float
    shoulder: float  # half width
    hip: float  # half width
    upper_arm: float
    forearm: float
    hand: float
    thigh: float
    shin: float
    foot: float
    r_upper_arm: tuple[float, float]
    r_forearm: tuple[float, float]
    r_hand: float
    r_thigh: tuple[float, float]
    r_shin: tuple[float, float]
    r_foot: float
    r_neck: float
    torso_depth: float  # half depth of the chest (its width when seen from the side)


def sample_body(rng: np.random.Generator) -> Body:
    """Random but plausible proportions: overall build x independent jitter per length."""
    j = lambda: rng.uniform(0.9, 1.1)  # noqa: E731
    build = rng.uniform(0.75, 1.35)  # thin .. heavy: scales every radius
    arm = rng.uniform(0.92, 1.08)
    leg = rng.uniform(0.92, 1.08)
    return Body(
        torso=0.30 * j(), neck=0.045 * j(), head_r=0.068 * rng.uniform(0.85, 1.15),
        shoulder=0.105 * j() * (0.9 + 0.1 * build), hip=0.07 * j() * (0.85 + 0.15 * build),
        upper_arm=0.17 * arm * j(), forearm=0.15 * arm * j(), hand=0.045 * j(),
        thigh=0.24 * leg * j(), shin=0.23 * leg * j(), foot=0.06 * j(),
        r_upper_arm=(0.033 * build, 0.027 * build), r_forearm=(0.027 * build, 0.02 * build),
        r_hand=0.024 * j(), r_thigh=(0.052 * build, 0.038 * build), r_shin=(0.037 * build, 0.026 * build),
        r_foot=0.022 * j(), r_neck=0.024 * build, torso_depth=0.07 * build,
    )


# -- smooth time functions ---------------------------------------------------------
def smooth_noise(rng: np.random.Generator, t: np.ndarray, amp: float, n: int = 3,
                 fmin: float = 1 / 120, fmax: float = 1 / 25) -> np.ndarray:
    """A sum of ``n`` low-frequency sinusoids (cycles per frame in [fmin, fmax])."""
    out = np.zeros_like(t)
    for _ in range(n):
        f = rng.uniform(fmin, fmax)
        out += rng.uniform(0.3, 1.0) * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))
    return amp * out / np.sqrt(n)


def soft_clip(x: np.ndarray, lo: float, hi: float, w: float = 0.06) -> np.ndarray:
    """Clamp to [lo, hi] with a smooth (softplus) knee, so motion stays C1."""
    x = lo + w * np.logaddexp(0.0, (x - lo) / w)
    return hi - w * np.logaddexp(0.0, (hi - x) / w)


def bump(x: np.ndarray) -> np.ndarray:
    """0..1 raised cosine of a phase: 0 at 0, 1 at pi."""
    return 0.5 - 0.5 * np.cos(x)


def _base_angles(rng: np.random.Generator, t: np.ndarray) -> dict[str, np.ndarray]:
    z = np.zeros_like(t)
    a = {k: z.copy() for k in ("torso_fwd", "torso_side", "torso_twist", "head_side", "head_nod", "jump")}
    for s in SIDES:
        a[f"{s}_sh_abd"] = z + rng.uniform(0.08, 0.25)
        a[f"{s}_sh_flex"] = z + rng.uniform(-0.1, 0.15)
        a[f"{s}_el_abd"] = z.copy()
        a[f"{s}_el_flex"] = z + rng.uniform(0.1, 0.35)
        a[f"{s}_hip_abd"] = z + rng.uniform(0.02, 0.12)
        a[f"{s}_hip_flex"] = z.copy()
        a[f"{s}_knee"] = z + rng.uniform(0.02, 0.1)
    return a


def _phase(rng: np.random.Generator, t: np.ndarray, fmin: float, fmax: float) -> np.ndarray:
    return 2 * np.pi * rng.uniform(fmin, fmax) * t + rng.uniform(0, 2 * np.pi)


def _arms_pose(a: dict[str, np.ndarray], rng: np.random.Generator, sides=SIDES) -> None:
    """A resting arm variant: hanging, crossed in front of the torso, or hands on hips."""
    kind = rng.choice(["hang", "hang", "crossed", "hips"])
    for s in sides:
        if kind == "crossed":
            a[f"{s}_sh_abd"][:] = -0.25 + rng.uniform(-0.1, 0.1)
            a[f"{s}_sh_flex"][:] = 0.5 + rng.uniform(-0.1, 0.2)
            a[f"{s}_el_abd"][:] = -0.8
            a[f"{s}_el_flex"][:] = 1.6 + rng.uniform(-0.1, 0.2)
        elif kind == "hips":
            a[f"{s}_sh_abd"][:] = 0.7 + rng.uniform(-0.1, 0.1)
            a[f"{s}_sh_flex"][:] = -0.2
            a[f"{s}_el_abd"][:] = -2.0 + rng.uniform(-0.1, 0.1)
            a[f"{s}_el_flex"][:] = 0.3


def activity_angles(activity: str, rng: np.random.Generator, t: np.ndarray) -> dict[str, np.ndarray]:
    """Joint angles over time ``t`` (frames) for one activity, before noise and limits."""
    a = _base_angles(rng, t)
    amp = rng.uniform(0.75, 1.15)
    side = SIDES[int(rng.integers(2))]
    other = "l" if side == "r" else "r"
    if activity == "walk":
        p = _phase(rng, t, 1 / 40, 1 / 26)
        for s, q in (("r", p), ("l", p + np.pi)):
            a[f"{s}_hip_flex"] += 0.45 * amp * np.sin(q)
            a[f"{s}_knee"] += 0.7 * amp * bump(q + np.pi) ** 2
            a[f"{s}_sh_flex"] -= 0.4 * amp * np.sin(q)
            a[f"{s}_el_flex"] += 0.25 * amp * bump(q + np.pi)
        a["torso_twist"] += 0.12 * amp * np.sin(p)
        a["torso_fwd"] += 0.06
    elif activity == "wave":
        p = _phase(rng, t, 1 / 18, 1 / 10)
        slow = _phase(rng, t, 1 / 90, 1 / 50)
        a[f"{side}_sh_abd"] = rng.uniform(1.3, 1.9) + 0.15 * np.sin(slow) + 0 * t
        a[f"{side}_el_abd"] = rng.uniform(0.8, 1.2) + 0.45 * amp * np.sin(p)
        a[f"{side}_sh_flex"] += 0.2
        a["torso_side"] += 0.06 * SIGN[side]
        a["head_side"] += 0.1 * np.sin(slow)
        _arms_pose(a, rng, sides=(other,))
    elif activity == "squat":
        p = _phase(rng, t, 1 / 50, 1 / 30)
        d, s = rng.uniform(0.55, 1.0), bump(p)
        for x in SIDES:
            a[f"{x}_hip_flex"] += 1.5 * d * s
            a[f"{x}_knee"] += 2.1 * d * s
            a[f"{x}_hip_abd"] += 0.12 * s
        a["torso_fwd"] += 0.45 * d * s
        if rng.random() < 0.6:
            for x in SIDES:
                a[f"{x}_sh_flex"] += 1.45 * d * s
        else:
            _arms_pose(a, rng)
    elif activity == "reach":
        p = _phase(rng, t, 1 / 50, 1 / 32)
        mode = rng.choice(["up", "forward", "cross"])
        for x, q in ((side, p), (other, p + np.pi)):
            s = bump(q)
            if mode == "up":
                a[f"{x}_sh_abd"] += 2.55 * amp * s
                a["torso_side"] += 0.2 * SIGN[x] * s
            elif mode == "forward":
                a[f"{x}_sh_flex"] += 1.7 * amp * s
                a["torso_fwd"] += 0.15 * s
            else:  # across the body, in front of the torso
                a[f"{x}_sh_flex"] += 1.3 * s
                a[f"{x}_sh_abd"] -= 0.75 * s
                a["torso_twist"] -= 0.2 * SIGN[x] * s
    elif activity == "jumping_jacks":
        p = _phase(rng, t, 1 / 44, 1 / 30)
        s = bump(p)
        for x in SIDES:
            a[f"{x}_sh_abd"] += 2.6 * amp * s
            a[f"{x}_hip_abd"] += 0.35 * amp * s
            a[f"{x}_knee"] += 0.25 * np.cos(p) ** 2
        a["jump"] += 0.05 * amp * np.sin(p) ** 2
    elif activity == "kick":
        p = _phase(rng, t, 1 / 70, 1 / 50)
        up = np.clip(np.sin(p), 0, None) ** 2
        a[f"{side}_hip_flex"] += 1.3 * amp * up
        # chamber, extend, re-chamber: the knee bends twice per kick (C1 at the switches)
        a[f"{side}_knee"] += 0.9 * np.sin(2 * p) ** 2 * (np.sin(p) > 0)
        a[f"{other}_knee"] += 0.15 * up
        for x in SIDES:
            a[f"{x}_sh_abd"] += 0.35 + 0.3 * up
            a[f"{x}_sh_flex"] += 0.5
            a[f"{x}_el_flex"] += 1.1
        a["torso_fwd"] -= 0.25 * up
    elif activity == "idle":
        p = _phase(rng, t, 1 / 70, 1 / 40)
        a["torso_side"] += 0.06 * np.sin(p)
        a["head_nod"] += 0.08 * np.sin(_phase(rng, t, 1 / 60, 1 / 30))
        for x in SIDES:
            a[f"{x}_hip_abd"] += 0.05 * SIGN[x] * np.sin(p)
        _arms_pose(a, rng)
    else:
        raise ValueError(f"unknown activity '{activity}'; known: {', '.join(ACTIVITIES)}")
    return a


def sample_angles(activity: str, rng: np.random.Generator, num_frames: int) -> dict[str, np.ndarray]:
    """Activity pattern + smoothed noise + joint limits + global yaw and drift, per frame."""
    t = np.arange(num_frames, dtype=np.float64)
    a = activity_angles(activity, rng, t)
    for name in sorted(a):
        key = name.split("_", 1)[1] if name[:2] in ("r_", "l_") else name
        a[name] = soft_clip(a[name] + smooth_noise(rng, t, NOISE[key]), *LIMITS[key])
    a["yaw"] = rng.uniform(-1.1, 1.1) + smooth_noise(rng, t, 0.15, fmin=1 / 200, fmax=1 / 60)
    a["drift_x"] = smooth_noise(rng, t, rng.uniform(0.0, 0.08), fmin=1 / 200, fmax=1 / 70)
    a["drift_y"] = smooth_noise(rng, t, 0.015, fmin=1 / 150, fmax=1 / 50)
    return a


# -- kinematics ----------------------------------------------------------------------
def _rx(th: np.ndarray) -> np.ndarray:
    c, s, o, i = np.cos(th), np.sin(th), np.zeros_like(th), np.ones_like(th)
    return np.stack([np.stack([i, o, o], -1), np.stack([o, c, -s], -1), np.stack([o, s, c], -1)], -2)


def _ry(th: np.ndarray) -> np.ndarray:
    c, s, o, i = np.cos(th), np.sin(th), np.zeros_like(th), np.ones_like(th)
    return np.stack([np.stack([c, o, s], -1), np.stack([o, i, o], -1), np.stack([-s, o, c], -1)], -2)


def _rz(th: np.ndarray) -> np.ndarray:
    c, s, o, i = np.cos(th), np.sin(th), np.zeros_like(th), np.ones_like(th)
    return np.stack([np.stack([c, -s, o], -1), np.stack([s, c, o], -1), np.stack([o, o, i], -1)], -2)


def _apply(r: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate per-frame vectors: r (T,3,3), v (T,3) or (3,)."""
    return np.einsum("tij,tj->ti", r, np.broadcast_to(v, (r.shape[0], 3)))


def limb_dir(abd: np.ndarray, flex: np.ndarray, sign: float) -> np.ndarray:
    """Unit direction of a limb hanging down (0, 0), abducted sideways and flexed forward."""
    return np.stack([sign * np.sin(abd), -np.cos(abd) * np.cos(flex), np.cos(abd) * np.sin(flex)], -1)


def forward_kinematics(body: Body, a: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """3D points (T,3) in camera axes (x right, y up, z toward the camera), feet on y=0.

    Returns the 15 skeleton joints plus helper points for drawing: ``head_up`` (unit
    axis of the head), ``*_hand`` (fingertips), ``*_toe``, ``forward`` (unit facing).
    """
    T = len(a["yaw"])
    torso_r = _ry(a["torso_twist"]) @ _rz(a["torso_side"]) @ _rx(a["torso_fwd"])
    pelvis_r = _ry(0.3 * a["torso_twist"])
    head_r = torso_r @ _rz(a["head_side"]) @ _rx(a["head_nod"])
    p: dict[str, np.ndarray] = {"pelvis": np.zeros((T, 3))}
    p["neck"] = _apply(torso_r, np.array([0.0, body.torso, 0.0]))
    p["head_up"] = _apply(head_r, np.array([0.0, 1.0, 0.0]))
    p["head"] = p["neck"] + (body.neck + body.head_r) * p["head_up"]
    for s in SIDES:
        sg = SIGN[s]
        sh = p["neck"] + _apply(torso_r, np.array([sg * body.shoulder, -0.012, 0.0]))
        ua = _apply(torso_r, limb_dir(a[f"{s}_sh_abd"], a[f"{s}_sh_flex"], sg))
        fa = _apply(torso_r, limb_dir(a[f"{s}_sh_abd"] + a[f"{s}_el_abd"],
                                      a[f"{s}_sh_flex"] + a[f"{s}_el_flex"], sg))
        p[f"{s}_shoulder"] = sh
        p[f"{s}_elbow"] = sh + body.upper_arm * ua
        p[f"{s}_wrist"] = p[f"{s}_elbow"] + body.forearm * fa
        p[f"{s}_hand"] = p[f"{s}_wrist"] + body.hand * fa
        hip = _apply(pelvis_r, np.array([sg * body.hip, -0.01, 0.0]))
        th = _apply(pelvis_r, limb_dir(a[f"{s}_hip_abd"], a[f"{s}_hip_flex"], sg))
        sn = _apply(pelvis_r, limb_dir(a[f"{s}_hip_abd"], a[f"{s}_hip_flex"] - a[f"{s}_knee"], sg))
        p[f"{s}_hip"] = hip
        p[f"{s}_knee"] = hip + body.thigh * th
        p[f"{s}_ankle"] = p[f"{s}_knee"] + body.shin * sn
        p[f"{s}_toe"] = p[f"{s}_ankle"] + _apply(pelvis_r, np.array([0.0, -0.01, body.foot]))
    p["forward"] = _apply(pelvis_r, np.array([0.0, 0.0, 1.0]))
    # stand on the ground (lowest ankle at foot radius), jump, drift; then turn to the view
    lift = body.r_foot - np.minimum(p["r_ankle"][:, 1], p["l_ankle"][:, 1]) + a["jump"]
    shift = np.stack([a["drift_x"], lift + a["drift_y"], np.zeros(T)], -1)
    view = _ry(a["yaw"])
    out = {}
    for k, v in p.items():
        if k in ("head_up", "forward"):
            out[k] = _apply(view, v)
        else:
            out[k] = _apply(view, v) + shift
    return out
