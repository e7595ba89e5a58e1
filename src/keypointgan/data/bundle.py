"""What training sees of any dataset: one :class:`DataBundle` of sources and seeded samplers.

A dataset (:mod:`keypointgan.data.datasets`) provides the sources; :func:`make_samplers`
turns them into the batches of a run (frame pairs, prior poses) by the ``data.*`` and
``train.*`` options, the same for every dataset.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from ..config import Config, ConfigError
from ..errors import KeypointGANError
from .base import DataError, LabelledSource, PairSource, VideoSource
from .background import BackgroundSwapSampler
from .pairs import PairSampler, TPSPairSampler, WarpedPairSampler
from .tps import TPSParams, scaled
from .prior import PriorPoses, PriorSampler


@dataclass
class DataBundle:
    """Training pairs, the prior and (optionally) labelled test / train images."""

    train: VideoSource
    prior_poses: PriorPoses
    pairs: PairSource  # PairSampler | TPSPairSampler | WarpedPairSampler: batch(step) -> {"x", "x_app"}
    prior_sampler: PriorSampler
    test: Optional[LabelledSource] = None
    train_labelled: Optional[LabelledSource] = None  # labelled training images (post-processing, supervised)

    @property
    def prior(self) -> torch.Tensor:
        """All prior poses (M, K, 2), normalised."""
        return self.prior_poses.keypoints

    def pair_batch(self, step: int) -> dict[str, torch.Tensor]:
        return self.pairs.batch(step)

    def prior_batch(self, step: int) -> dict[str, torch.Tensor]:
        """``{"keypoints": (B, K, 2), "visible": (B, K)}``; ``visible`` is all True unless the
        prior was mapped from a skeleton that lacks some keypoints."""
        return self.prior_sampler.batch(step)


def prior_subset(prior: PriorPoses, cfg: Config) -> PriorPoses:
    """The seeded ``data.num_prior`` subset of ``prior`` (all of it when unset)."""
    n = cfg.data.num_prior
    return prior.subset(n, cfg.data.prior_seed) if n else prior


def make_samplers(train: VideoSource, prior: PriorPoses, cfg: Config,
                  rank: int = 0) -> tuple[PairSource, PriorSampler]:
    """The seeded pair and prior samplers of process ``rank`` (``data.tps``, ``data.frame_gap``,
    ``data.pair_order``, ``data.pair_warp``, ``data.warp_scale``, ``data.background_swap``, ``train.batch_size``, ``train.seed``)."""
    seed = cfg.train.seed + 1000 * rank
    b = cfg.train.batch_size
    d = cfg.data
    if d.background_swap > 0 and d.tps:
        raise ConfigError("data.background_swap needs frame pairs of videos; it cannot be used with data.tps=true")
    if d.pair_warp not in ("none", "tps"):
        raise DataError(f"data.pair_warp must be none or tps, got {d.pair_warp!r}")
    try:  # the samplers check their arguments with ValueErrors: here those are the config's
        params = scaled(TPSParams(), d.warp_scale)
        if d.tps:
            pairs: PairSource = TPSPairSampler(train, b, seed=seed, params=params)
        else:
            pairs = PairSampler(train, b, d.frame_gap, seed=seed, order=d.pair_order)
            if d.background_swap > 0:
                pairs = BackgroundSwapSampler(pairs, d.background_swap, d.background_threshold)
            if d.pair_warp == "tps":
                pairs = WarpedPairSampler(pairs, params)
        return pairs, PriorSampler(prior, b, seed=seed)
    except ValueError as e:
        if isinstance(e, KeypointGANError):  # DataError: the data's, already a user's error
            raise
        raise ConfigError(str(e)) from e
