"""Background swaps: Phi reads x in front of another video's background (beyond the paper).

Why: on cluttered frames Phi can key its skeleton to the background (the built-in
data's worst test frames draw limbs along a bar behind the figure, docs/results.md).
Psi takes the background from x' (same video, static camera), so nothing in the
reconstruction asks Phi to ignore it. With ``data.background_swap = f`` a fraction
``f`` of each batch's items gets a Phi input ``x_phi``: x's foreground over the
background of another training video; the reconstruction target stays x. Whatever
Phi reads from the background is then noise with respect to the target, and only the
figure is left to explain it.

The foreground mask needs each frame's background, which a source may provide as
``background(video) -> (3, H, W)`` in ``[-1, 1]`` (the built-in synthetic data knows it
exactly) or as ``backgrounds``, an object with ``has(video)`` and ``get(video, index)``
(a user's folder of per-video or per-frame images, ``data.background_root``: tracked
crops of a fixed camera need one per frame, cut from the camera's background like the
frame). Otherwise :func:`median_background` estimates it per video (per-pixel median
over frames): right for full frames of a fixed camera, wrong for tracked crops.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..core.seeds import BACKGROUND_STREAM
from .base import DataError, PairSource, VideoSource

MEDIAN_FRAMES = 64  # frames (evenly spread) behind a median background estimate


def median_background(frames: torch.Tensor) -> torch.Tensor:
    """Per-pixel median ``(3, H, W)`` of a fixed camera's frames ``(T, 3, H, W)``: the
    background wherever the foreground moves off a pixel in more than half the frames."""
    if frames.dim() != 4 or frames.shape[0] < 1:
        raise ValueError(f"median_background: frames must be (T, 3, H, W) with T >= 1, got {tuple(frames.shape)}")
    return frames.float().median(dim=0).values


def foreground_mask(x: torch.Tensor, background: torch.Tensor, threshold: float = 0.1,
                    dilate: int = 1) -> torch.Tensor:
    """``(B, 1, H, W)`` float mask in {0, 1}: pixels of ``x`` (B,3,H,W) that differ from
    ``background`` (B,3,H,W), both in [-1, 1], by more than ``threshold`` in some channel,
    dilated by ``dilate`` pixels (closes holes where the figure matches the background)."""
    m = ((x.float() - background.float()).abs().amax(1, keepdim=True) > threshold).float()
    if dilate > 0:
        m = F.max_pool2d(m, 2 * dilate + 1, stride=1, padding=dilate)
    return m


def swap_background(x: torch.Tensor, background: torch.Tensor, new_background: torch.Tensor,
                    threshold: float = 0.1, dilate: int = 1) -> torch.Tensor:
    """``x`` (B,3,H,W) with its ``background`` replaced by ``new_background`` (both (B,3,H,W))."""
    m = foreground_mask(x, background, threshold, dilate)
    return m * x.float() + (1.0 - m) * new_background.float()


class BackgroundCache:
    """A frame's background: ``(video, index) -> (3, H, W)`` or ``None`` (none known).

    In order: the source's ``backgrounds`` (per frame or per video, from files), its
    ``background(video)`` (exact), else the median of up to :data:`MEDIAN_FRAMES` evenly
    spread frames of the video, computed once per video."""

    def __init__(self, source: VideoSource) -> None:
        self.source = source
        self._files = getattr(source, "backgrounds", None)
        own = getattr(source, "background", None)
        self._own: Callable[[int], torch.Tensor] | None = own if callable(own) and self._files is None else None
        self._cache: dict[int, torch.Tensor] = {}

    @property
    def exact(self) -> bool:
        """True when the source knows its backgrounds exactly (no estimate)."""
        return self._own is not None

    def has(self, video: int) -> bool:
        """Whether ``video`` has a background (estimates always do)."""
        return self._files.has(video) if self._files is not None else True

    def __call__(self, video: int, index: int = 0) -> Optional[torch.Tensor]:
        if self._files is not None:
            bg = self._files.get(video, index)
            return None if bg is None else bg.float()
        if video not in self._cache:
            if self._own is not None:
                bg = self._own(video).float()
            else:
                n = self.source.num_frames(video)
                idx = sorted({int(i * n / min(n, MEDIAN_FRAMES)) for i in range(min(n, MEDIAN_FRAMES))})
                frames = torch.stack([self.source.frame(video, i) for i in idx])
                bg = median_background(frames)
            self._cache[video] = bg
        return self._cache[video]


class BackgroundSwapSampler:
    """A pair sampler whose batches also carry ``x_phi``: x with, for a ``fraction`` of
    the items (each drawn independently, among videos with a background), the background
    of a random frame of another training video (flipped left-right half the time); the
    other items' ``x_phi`` is x itself. ``dilate`` (pixels the mask grows by): 0 for
    exact backgrounds, 1 for estimates.

    Wraps a frame-pair sampler (its ``indices(step)`` name each item's video and frame);
    batch ``step`` stays a pure function of ``(seed, step)``.
    """

    stream = BACKGROUND_STREAM

    def __init__(self, pairs: Any, fraction: float, threshold: float = 0.1, dilate: int | None = None) -> None:
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"data.background_swap must be in [0, 1], got {fraction}")
        if threshold <= 0:
            raise ValueError(f"data.background_threshold must be > 0, got {threshold}")
        if not callable(getattr(pairs, "indices", None)):
            raise ValueError("data.background_swap needs frame pairs of videos (not data.tps image warps)")
        self.pairs, self.fraction, self.threshold = pairs, float(fraction), float(threshold)
        self.backgrounds = BackgroundCache(pairs.source)
        self.donors = [v for v in pairs.videos if self.backgrounds.has(v)]  # videos with a background
        if len(self.donors) < 2:
            raise DataError(f"data.background_swap needs at least 2 training videos with a background "
                            f"(another video's background), {len(self.donors)} have one")
        # an exact background needs no dilation (which would leave a ring of the old background
        # around the figure, a cue test images lack); an estimate is noisy: close its holes
        self.dilate = (0 if self.backgrounds.exact else 1) if dilate is None else int(dilate)

    @property
    def source(self) -> Any:
        return self.pairs.source

    @property
    def seed(self) -> int:
        return self.pairs.seed

    @property
    def batch_size(self) -> int:
        return self.pairs.batch_size

    def plan(self, step: int) -> list[tuple[int, int, int, int, bool]]:
        """``(video of x, frame of x, video whose background replaces it or -1, its frame,
        flip)`` per item."""
        items = [(v, t) for v, t, _ in self.pairs.indices(step)]
        rng = np.random.default_rng(np.random.SeedSequence([self.pairs.seed & 0xFFFFFFFF, self.stream, int(step)]))
        pool: Sequence[int] = self.donors
        out = []
        for v, t in items:
            swap, j = rng.random() < self.fraction, int(rng.integers(len(pool) - 1))
            flip, u = bool(rng.random() < 0.5), float(rng.random())
            other = pool[j] if pool[j] != v else pool[-1]  # uniform over the other videos
            if swap and self.backgrounds.has(v):
                out.append((v, t, other, min(int(u * self.source.num_frames(other)),
                                             self.source.num_frames(other) - 1), flip))
            else:
                out.append((v, t, -1, 0, flip))
        return out

    def batch(self, step: int) -> dict[str, torch.Tensor]:
        b = self.pairs.batch(step)
        plan = self.plan(step)
        rows = [i for i, p in enumerate(plan) if p[2] >= 0]
        x_phi = b["x"].clone()
        if rows:
            own = torch.stack([self.backgrounds(plan[i][0], plan[i][1]) for i in rows])
            new = torch.stack([self._donor(*plan[i][2:]) for i in rows])
            x_phi[rows] = swap_background(b["x"][rows], own, new, self.threshold, self.dilate).to(x_phi.dtype)
        return {**b, "x_phi": x_phi}

    def _donor(self, video: int, index: int, flip: bool) -> torch.Tensor:
        bg = self.backgrounds(video, index)
        return bg.flip(-1) if flip else bg

    def state_dict(self) -> dict[str, int]:
        return self.pairs.state_dict()

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.pairs.load_state_dict(state)
