"""Seeded, resumable samplers of training pairs ``{"x", "x_app"}`` from any VideoSource.

Batch ``step`` is a pure function of ``(seed, step)`` (its own
``numpy.random.SeedSequence``), so a run resumed at step ``s`` draws exactly the
batches it would have drawn; the state is ``{"seed", "step"}``. The samplers are
``IterableDataset``s: under a ``DataLoader(batch_size=None, num_workers=n)`` worker
``w`` makes steps ``start + w, start + w + n, ...`` and the loader's round-robin
hands them back in step order, so workers change nothing but speed.

Frame pairs (release): a video uniformly at random, then ``start`` uniform in
``[0, n - 1 - gmin]`` and ``end`` uniform in ``[start + gmin, min(start + gmax, n - 1)]``.
With ``order="sorted"`` (default, release) ``x`` (pose source and reconstruction
target) is the earlier frame and ``x_app`` (appearance) the later one;
``order="random"`` swaps them with probability 1/2. Short videos clamp the gap:
``gmin`` becomes ``min(gmin, n - 1)``. Videos of a single frame cannot give a pair
and are skipped (counted, warned once); if no video has two frames the sampler
raises :class:`DataError` (use the TPS sampler for image-only data).
"""

from __future__ import annotations

import itertools
import logging
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from ..core.seeds import PAIR_STREAM, PAIR_WARP_STREAM, PRIOR_STREAM, TPS_STREAM  # noqa: F401 (PRIOR_STREAM: prior.py)
from .base import DataError, VideoSource
from .tps import TPSParams, random_pair, sample_affine, sample_kernel_weights, warp

log = logging.getLogger("keypointgan.data")

ORDERS = ("sorted", "random")


def step_rng(seed: int, step: int, stream: int) -> np.random.Generator:
    """The generator of batch ``step`` of a given sampler ``stream`` (independent streams)."""
    return np.random.default_rng(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, stream, int(step)]))


def _describe(source: Any) -> str:
    root = getattr(source, "root", None)
    return str(root) if root is not None else type(source).__name__


def _video_name(source: Any, v: int) -> str:
    for attr in ("video_name", "name"):
        fn = getattr(source, attr, None)
        if callable(fn):
            return str(fn(v))
    return f"video {v}"


def read_frames(source: VideoSource, videos: Sequence[int], indices: Sequence[int]) -> torch.Tensor:
    """``(B, 3, H, W)`` frames; uses the source's optional batched ``frames(videos, indices)``."""
    batched = getattr(source, "frames", None)
    if callable(batched):
        return batched(list(videos), list(indices))
    return torch.stack([source.frame(v, i) for v, i in zip(videos, indices)])


class _SeededSampler(IterableDataset):
    """Shared state, iteration and worker split; subclasses implement ``batch(step)``."""

    stream = 0

    def __init__(self, batch_size: int, seed: int, start_step: int) -> None:
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size, self.seed, self.step = int(batch_size), int(seed), int(start_step)

    def rng(self, step: int) -> np.random.Generator:
        return step_rng(self.seed, step, self.stream)

    def batch(self, step: int) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        info = get_worker_info()
        w, n = (info.id, info.num_workers) if info is not None else (0, 1)
        start = self.step
        for step in itertools.count(start + w, n):
            if info is None:
                self.step = step + 1
            yield self.batch(step)

    def state_dict(self) -> dict[str, int]:
        """``{"seed", "step"}``: the next batch to draw (in-process iteration keeps it current)."""
        return {"seed": self.seed, "step": self.step}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.seed, self.step = int(state["seed"]), int(state["step"])


class PairSampler(_SeededSampler):
    """Pairs of frames of one video, ``frame_gap = (gmin, gmax)`` frames apart."""

    stream = PAIR_STREAM

    def __init__(self, source: VideoSource, batch_size: int, frame_gap: Sequence[int] = (5, 30),
                 seed: int = 0, order: str = "sorted", start_step: int = 0) -> None:
        super().__init__(batch_size, seed, start_step)
        gmin, gmax = (int(g) for g in frame_gap)
        if not 0 <= gmin <= gmax:
            raise ValueError(f"frame_gap must be [min, max] with 0 <= min <= max, got {list(frame_gap)}")
        if order not in ORDERS:
            raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
        self.source, self.gap, self.order = source, (gmin, gmax), order
        if len(source) == 0:
            raise DataError(f"{_describe(source)}: no videos")
        self.lengths = {v: source.num_frames(v) for v in range(len(source))}
        self.videos = [v for v, n in self.lengths.items() if n >= 2]
        self.skipped = [v for v, n in self.lengths.items() if n < 2]
        if not self.videos:
            names = ", ".join(_video_name(source, v) for v in self.skipped[:5])
            raise DataError(f"{_describe(source)}: no video has at least 2 frames ({names}"
                            f"{', ...' if len(self.skipped) > 5 else ''}), so no frame pairs can be sampled; "
                            f"use TPS pairs for image-only data (data.tps=true)")
        if self.skipped:
            log.warning("%s: %d one-frame video(s) skipped for pair sampling (first: %s)",
                        _describe(source), len(self.skipped), _video_name(source, self.skipped[0]))

    def indices(self, step: int) -> list[tuple[int, int, int]]:
        """``(video, x frame, x_app frame)`` for each item of batch ``step``."""
        rng = self.rng(step)
        out = []
        gmin, gmax = self.gap
        for _ in range(self.batch_size):
            v = self.videos[int(rng.integers(len(self.videos)))]
            n = self.lengths[v]
            lo = min(gmin, n - 1)
            start = int(rng.integers(0, n - lo))  # [0, n - 1 - lo]
            end = int(rng.integers(start + lo, min(start + gmax, n - 1) + 1))
            if self.order == "random" and rng.random() < 0.5:
                start, end = end, start
            out.append((v, start, end))
        return out

    def batch(self, step: int) -> dict[str, torch.Tensor]:
        vs, xs, apps = zip(*self.indices(step))
        frames = read_frames(self.source, vs + vs, xs + apps)
        return {"x": frames[: self.batch_size], "x_app": frames[self.batch_size:]}


class TPSPairSampler(_SeededSampler):
    """Pairs ``(g1(f), g2(f))`` of random warps of one frame (image-only data; see ``tps``)."""

    stream = TPS_STREAM

    def __init__(self, source: VideoSource, batch_size: int, seed: int = 0,
                 params: TPSParams = TPSParams(), start_step: int = 0) -> None:
        super().__init__(batch_size, seed, start_step)
        self.source, self.params = source, params
        self.lengths = [source.num_frames(v) for v in range(len(source))]
        self.videos = [v for v, n in enumerate(self.lengths) if n >= 1]
        if not self.videos:
            raise DataError(f"{_describe(source)}: no frames to sample")

    def indices(self, step: int) -> list[tuple[int, int]]:
        rng = self.rng(step)
        out = []
        for _ in range(self.batch_size):
            v = self.videos[int(rng.integers(len(self.videos)))]
            out.append((v, int(rng.integers(self.lengths[v]))))
        return out

    def batch(self, step: int) -> dict[str, torch.Tensor]:
        vs, fs = zip(*self.indices(step))
        frames = read_frames(self.source, vs, fs)
        # a second, independent generator for the warps, so indices(step) stays cheap to recompute
        x, x_app = random_pair(frames, step_rng(self.seed, step, self.stream + 100), self.params)
        return {"x": x, "x_app": x_app}


class WarpedPairSampler:
    """Frame pairs with random warps on top: ``x = g1(frame_a)``, ``x' = g2(frame_b)``.

    ``g1`` is affine and ``g2`` affine + TPS (the TPS sampler's distribution, every sd
    times ``data.warp_scale``), drawn independently per item. Beyond the paper, which
    warps only image-only data: when a video's frames barely differ (a face talking, a
    tracked crop of a walking person), Psi can copy most of x from x' and the pose gets
    little gradient; warping x' away from x leaves the skeleton as the only source of
    x's geometry. Keypoints stay consistent: nothing is labelled, and x and its
    reconstruction target are the same warped image.
    """

    stream = PAIR_WARP_STREAM

    def __init__(self, pairs: PairSampler, params: TPSParams = TPSParams()) -> None:
        self.pairs, self.params = pairs, params

    @property
    def source(self) -> Any:
        return self.pairs.source

    def batch(self, step: int) -> dict[str, torch.Tensor]:
        b = self.pairs.batch(step)
        rng, p, n = step_rng(self.pairs.seed, step, self.stream), self.params, self.pairs.batch_size
        a1, a2, w2 = sample_affine(n, p, rng), sample_affine(n, p, rng), sample_kernel_weights(n, p, rng)
        out = {"x": warp(b["x"], a1, None, p.grid), "x_app": warp(b["x_app"], a2, w2, p.grid)}
        if "x_phi" in b:  # background swaps (data.background_swap): Phi's input moves with x
            out["x_phi"] = warp(b["x_phi"], a1, None, p.grid)
        return out

    def state_dict(self) -> dict[str, int]:
        return self.pairs.state_dict()

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.pairs.load_state_dict(state)
