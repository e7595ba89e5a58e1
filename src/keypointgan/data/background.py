"""Background swaps: Phi reads x in front of another video's background (beyond the paper).

Why: on cluttered frames Phi can key its skeleton to the background (the built-in
data's worst test frames draw limbs along a bar behind the figure, docs/results.md).
Psi takes the background from x' (same video, static camera), so nothing in the
reconstruction asks Phi to ignore it. With ``data.background_swap = f`` a fraction
``f`` of each batch's items gets a Phi input ``x_phi``: x's foreground over the
background of another training video; the reconstruction target stays x. Whatever
Phi reads from the background is then noise with respect to the target, and only the
figure is left to explain it.

The foreground mask needs a background per video, which a source may provide as
``background(video) -> (3, H, W)`` in ``[-1, 1]``: the built-in synthetic data knows it
exactly; :func:`median_background` estimates it for a fixed camera (per-pixel median
over frames). Tracked crops (a moving camera) have no such background: leave the
option off there.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

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
    """``background(video)`` of a source: its own method when it has one, else the median
    of up to :data:`MEDIAN_FRAMES` evenly spread frames, computed once per video."""

    def __init__(self, source: VideoSource) -> None:
        self.source = source
        own = getattr(source, "background", None)
        self._own: Callable[[int], torch.Tensor] | None = own if callable(own) else None
        self._cache: dict[int, torch.Tensor] = {}

    @property
    def exact(self) -> bool:
        """True when the source knows its backgrounds (no estimate)."""
        return self._own is not None

    def __call__(self, video: int) -> torch.Tensor:
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
    the items (each drawn independently), the background of another training video
    (flipped left-right half the time); the other items' ``x_phi`` is x itself.
    ``dilate`` (pixels the mask grows by): 0 for exact backgrounds, 1 for estimates.

    Wraps a frame-pair sampler (its ``indices(step)`` name each item's video); batch
    ``step`` stays a pure function of ``(seed, step)``.
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
        if len(pairs.videos) < 2:
            raise DataError("data.background_swap needs at least 2 training videos (another video's background)")
        self.backgrounds = BackgroundCache(pairs.source)
        # an exact background needs no dilation (which would leave a ring of the old background
        # around the figure, a cue test images lack); a median estimate is noisy: close its holes
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

    def plan(self, step: int) -> list[tuple[int, int, bool]]:
        """``(video of x, video whose background replaces it or -1, flip)`` per item."""
        vids = [v for v, _, _ in self.pairs.indices(step)]
        rng = np.random.default_rng(np.random.SeedSequence([self.pairs.seed & 0xFFFFFFFF, self.stream, int(step)]))
        pool: Sequence[int] = self.pairs.videos
        out = []
        for v in vids:
            swap, j, flip = rng.random() < self.fraction, int(rng.integers(len(pool) - 1)), bool(rng.random() < 0.5)
            other = pool[j] if pool[j] != v else pool[-1]  # uniform over the other videos
            out.append((v, other if swap else -1, flip))
        return out

    def batch(self, step: int) -> dict[str, torch.Tensor]:
        b = self.pairs.batch(step)
        plan = self.plan(step)
        rows = [i for i, (_, o, _) in enumerate(plan) if o >= 0]
        x_phi = b["x"].clone()
        if rows:
            own = torch.stack([self.backgrounds(plan[i][0]) for i in rows])
            new = torch.stack([self.backgrounds(plan[i][1]).flip(-1) if plan[i][2] else self.backgrounds(plan[i][1])
                               for i in rows])
            x_phi[rows] = swap_background(b["x"][rows], own, new, self.threshold, self.dilate).to(x_phi.dtype)
        return {**b, "x_phi": x_phi}

    def state_dict(self) -> dict[str, int]:
        return self.pairs.state_dict()

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.pairs.load_state_dict(state)
