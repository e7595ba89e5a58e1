"""Per-video appearance: clothing colours and textures, skin, hair, light, background.

Appearance is sampled once per video (the same in all its frames) and differs between
videos, so the detector has to find the body under changing clothes and clutter: the
image is never just its skeleton. Parameters are resolution independent; textures are
given in body units and backgrounds in normalised image coordinates.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass

import numpy as np
import torch

from ...pose.coords import pixel_centers

NUM_WAVES = 4
SKIN_TONES = np.array([[0.96, 0.80, 0.69], [0.90, 0.70, 0.55], [0.78, 0.57, 0.42],
                       [0.62, 0.43, 0.30], [0.45, 0.30, 0.20], [0.32, 0.21, 0.15]])
HAIR = np.array([[0.08, 0.06, 0.05], [0.25, 0.15, 0.08], [0.55, 0.38, 0.18],
                 [0.85, 0.72, 0.45], [0.6, 0.6, 0.6], [0.55, 0.18, 0.08]])


def random_color(rng: np.random.Generator, sat=(0.2, 0.95), val=(0.2, 0.95)) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(rng.random(), rng.uniform(*sat), rng.uniform(*val)))


@dataclass(frozen=True)
class Garment:
    """A colour, a second colour and the waves (body units) whose pattern mixes them."""

    color: np.ndarray  # (3,)
    color2: np.ndarray  # (3,)
    waves: np.ndarray  # (J,3): ku, kv (radians per body unit), phase
    amp: np.ndarray  # (J,)


def sample_garment(rng: np.random.Generator, base: np.ndarray | None = None) -> Garment:
    """Solid, stripes, checks or blotchy noise: J sinusoids in the part's (u, v) frame."""
    c1 = random_color(rng) if base is None else base
    kind = rng.choice(["solid", "stripes", "stripes", "checks", "noise"])
    if rng.random() < 0.5:
        c2 = random_color(rng)
    else:  # a darker or lighter shade of the same colour
        c2 = np.clip(c1 * rng.uniform(0.4, 0.7) if c1.mean() > 0.4 else c1 + rng.uniform(0.25, 0.5), 0, 1)
    waves = np.zeros((NUM_WAVES, 3))
    amp = np.zeros(NUM_WAVES)
    waves[:, 2] = rng.uniform(0, 2 * np.pi, NUM_WAVES)
    if kind == "solid":
        c2 = c1
    elif kind == "stripes":
        period = rng.uniform(0.035, 0.1)
        ang = rng.choice([0.0, np.pi / 2, rng.uniform(0, np.pi)])
        k = 2 * np.pi / period
        waves[0, :2] = [k * np.sin(ang), k * np.cos(ang)]
        amp[0] = rng.uniform(1.5, 4.0)
    elif kind == "checks":
        k = 2 * np.pi / rng.uniform(0.05, 0.1)
        waves[0, :2] = [k, k]
        waves[1, :2] = [k, -k]
        amp[:2] = rng.uniform(1.0, 2.0)
    else:
        for j in range(NUM_WAVES):
            ang = rng.uniform(0, 2 * np.pi)
            k = 2 * np.pi / rng.uniform(0.04, 0.15)
            waves[j, :2] = [k * np.cos(ang), k * np.sin(ang)]
        amp[:] = rng.uniform(0.4, 0.9, NUM_WAVES)
    return Garment(c1, c2, waves, amp)


@dataclass(frozen=True)
class Appearance:
    """Colours of skin, hair, shirt, trousers, shoes; sleeve/leg lengths; the light."""

    skin: Garment
    hair: np.ndarray
    hair_line: float  # hair covers the head beyond this many radii from its centre
    shirt: Garment
    trousers: Garment
    shoes: Garment
    long_sleeves: bool
    long_trousers: bool
    light: np.ndarray  # (3,) unit: x right, y down, z toward the camera
    ambient: float


def sample_appearance(rng: np.random.Generator) -> Appearance:
    i = rng.uniform(0, len(SKIN_TONES) - 1)
    skin_rgb = SKIN_TONES[int(i)] * (1 - i % 1) + SKIN_TONES[min(int(i) + 1, len(SKIN_TONES) - 1)] * (i % 1)
    skin = Garment(skin_rgb, skin_rgb, np.zeros((NUM_WAVES, 3)), np.zeros(NUM_WAVES))
    hair = HAIR[int(rng.integers(len(HAIR)))] if rng.random() < 0.85 else random_color(rng)
    ang = rng.uniform(0, 2 * np.pi)
    light = np.array([np.cos(ang) * 0.6, np.sin(ang) * 0.6 - 0.3, rng.uniform(0.5, 1.0)])
    shoe = random_color(rng, val=(0.05, 0.5))
    shoes = Garment(shoe, shoe, np.zeros((NUM_WAVES, 3)), np.zeros(NUM_WAVES))
    return Appearance(
        skin=skin, hair=hair, hair_line=rng.uniform(-0.05, 0.35),
        shirt=sample_garment(rng), trousers=sample_garment(rng), shoes=shoes,
        long_sleeves=bool(rng.random() < 0.6), long_trousers=bool(rng.random() < 0.75),
        light=light / np.linalg.norm(light), ambient=float(rng.uniform(0.35, 0.6)),
    )


# -- background ---------------------------------------------------------------------
@dataclass(frozen=True)
class Background:
    """Gradient wall, floor below a horizon, low-frequency noise, random shapes, grain."""

    wall: np.ndarray  # (2,3): gradient end colours
    grad_dir: np.ndarray  # (2,)
    floor: np.ndarray  # (3,)
    horizon: float  # normalised y of the floor's edge
    lowfreq: np.ndarray  # (3,5,5) in [-1,1]
    lowfreq_amp: float
    shapes: np.ndarray  # (N,10): kind, cx, cy, sx, sy, angle, r, g, b, alpha
    wall_waves: np.ndarray  # (J,3): kx, ky (radians per normalised unit), phase
    wall_amp: np.ndarray  # (J,)
    wall_color2: np.ndarray  # (3,)
    grain: float
    grain_seed: int


def sample_background(rng: np.random.Generator) -> Background:
    wall0 = random_color(rng, sat=(0.05, 0.7), val=(0.25, 0.95))
    wall1 = np.clip(wall0 + rng.normal(0, 0.15, 3), 0, 1)
    ang = rng.uniform(0, 2 * np.pi)
    n = int(rng.integers(3, 11))
    shapes = np.zeros((n, 10))
    shapes[:, 0] = rng.integers(0, 3, n)  # 0 ellipse, 1 rectangle, 2 bar
    shapes[:, 1:3] = rng.uniform(-1.1, 1.1, (n, 2))
    shapes[:, 3:5] = rng.uniform(0.05, 0.45, (n, 2))
    shapes[:, 5] = rng.uniform(0, np.pi, n)
    shapes[:, 6:9] = np.stack([random_color(rng) for _ in range(n)])
    shapes[:, 9] = rng.uniform(0.4, 1.0, n)
    bars = shapes[:, 0] == 2
    shapes[bars, 4] = rng.uniform(0.01, 0.04, int(bars.sum()))
    shapes[bars, 3] = rng.uniform(0.3, 1.5, int(bars.sum()))
    gw = sample_garment(rng)  # a wallpaper pattern, in normalised units (not body units)
    return Background(
        wall=np.stack([wall0, wall1]), grad_dir=np.array([np.cos(ang), np.sin(ang)]),
        floor=random_color(rng, sat=(0.05, 0.6), val=(0.2, 0.8)), horizon=float(rng.uniform(0.05, 0.6)),
        lowfreq=rng.uniform(-1, 1, (3, 5, 5)), lowfreq_amp=float(rng.uniform(0.03, 0.12)),
        shapes=shapes, wall_waves=gw.waves * np.array([0.25, 0.25, 1.0]),
        wall_amp=gw.amp * (rng.random() < 0.4) * 0.6, wall_color2=gw.color2,
        grain=float(rng.uniform(0.0, 0.04)), grain_seed=int(rng.integers(2**31)),
    )


def render_background(bg: Background, size: int) -> torch.Tensor:
    """The background as (3, size, size) float in [0, 1]."""
    c = pixel_centers(size, dtype=torch.float64)
    y, x = c.view(-1, 1), c.view(1, -1)
    t = torch.tensor
    g = ((x * bg.grad_dir[0] + y * bg.grad_dir[1]) * 0.5 + 0.5).clamp(0, 1)
    wall = t(bg.wall[0]).view(3, 1, 1) * (1 - g) + t(bg.wall[1]).view(3, 1, 1) * g
    # wallpaper waves, faded out where their period is under ~5 px (no aliasing at 32 px)
    period_px = 2 * np.pi / np.maximum(np.linalg.norm(bg.wall_waves[:, :2], axis=1), 1e-9) * size / 2
    amps = bg.wall_amp * np.clip((period_px - 2.5) / 2.5, 0, 1)
    s = sum(a * torch.sin(w[0] * x + w[1] * y + w[2]) for w, a in zip(bg.wall_waves, amps) if a > 0)
    if isinstance(s, torch.Tensor):
        wall = wall + (t(bg.wall_color2).view(3, 1, 1) - wall) * (0.5 * s).clamp(0, 1) * 0.5
    floor_w = torch.sigmoid((y - bg.horizon) * size * 0.5)
    floor = t(bg.floor).view(3, 1, 1) * (0.8 + 0.4 * (y - bg.horizon).clamp(0, 2) / 2)
    img = wall * (1 - floor_w) + floor * floor_w
    lf = torch.nn.functional.interpolate(t(bg.lowfreq)[None], size=(size, size), mode="bicubic",
                                         align_corners=False)[0]
    img = img + bg.lowfreq_amp * lf
    for kind, cx, cy, sx, sy, ang, r, gg, b, alpha in bg.shapes:
        ca, sa = np.cos(ang), np.sin(ang)
        u = ((x - cx) * ca + (y - cy) * sa) / sx
        v = (-(x - cx) * sa + (y - cy) * ca) / sy
        if kind == 0:
            q = torch.sqrt(u * u + v * v)
        else:
            q = torch.maximum(u.abs(), v.abs())
        px = min(sx, sy) * size * 0.5  # pixels per unit of q near the edge
        m = ((1 - q) * px + 0.5).clamp(0, 1) * alpha
        img = img * (1 - m) + t([r, gg, b]).view(3, 1, 1) * m
    if bg.grain > 0:
        gen = torch.Generator().manual_seed(bg.grain_seed)
        img = img + bg.grain * torch.randn((3, size, size), generator=gen, dtype=torch.float64)
    return img.clamp(0, 1).float()
