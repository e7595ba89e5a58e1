"""From a :class:`Config` to the data a run needs: frame pairs, prior poses, test labels.

``data.source: synthetic`` builds the built-in videos; ``data.source: folder`` reads a
user's videos, prior and labels (formats in docs/data-format.md). Either way training
sees one :class:`DataBundle`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import torch

from ..config import Config
from ..pose import Skeleton
from .base import DataError
from .pairs import PairSampler, TPSPairSampler, WarpedPairSampler
from .tps import TPSParams, scaled
from .prior import PriorPoses, PriorSampler, load_prior


@dataclass
class DataBundle:
    """Training pairs, the prior and (optionally) labelled test / train images."""

    train: Any  # VideoSource
    prior_poses: PriorPoses
    pairs: Any  # PairSampler | TPSPairSampler: batch(step) -> {"x", "x_app"}
    prior_sampler: PriorSampler
    test: Any = None  # LabelledSource
    train_labelled: Any = None  # LabelledSource of training images (post-processing, supervised baseline)

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


def _subset(prior: PriorPoses, cfg: Config) -> PriorPoses:
    n = cfg.data.num_prior
    return prior.subset(n, cfg.data.prior_seed) if n else prior


def _samplers(train: Any, prior: PriorPoses, cfg: Config, rank: int) -> tuple[Any, PriorSampler]:
    seed = cfg.train.seed + 1000 * rank
    b = cfg.train.batch_size
    d = cfg.data
    if d.pair_warp not in ("none", "tps"):
        raise DataError(f"data.pair_warp must be none or tps, got {d.pair_warp!r}")
    params = scaled(TPSParams(), d.warp_scale)
    if d.tps:
        pairs: Any = TPSPairSampler(train, b, seed=seed, params=params)
    else:
        pairs = PairSampler(train, b, d.frame_gap, seed=seed, order=d.pair_order)
        if d.pair_warp == "tps":
            pairs = WarpedPairSampler(pairs, params)
    return pairs, PriorSampler(prior, b, seed=seed)


def build_synthetic(cfg: Config, skeleton: Skeleton, rank: int = 0) -> DataBundle:
    from .synthetic import synthetic_sources
    from .synthetic.dataset import SyntheticLabelled

    src = synthetic_sources(cfg.data, cfg.model.image_size, skeleton)
    prior = _subset(src.prior.to_prior(), cfg)
    pairs, prior_sampler = _samplers(src.train, prior, cfg, rank)
    train_labelled = SyntheticLabelled(src.world, cfg.model.image_size, split="train",
                                       cache_dir=cfg.data.cache_dir)
    return DataBundle(src.train, prior, pairs, prior_sampler, src.test, train_labelled)


def build_folder(cfg: Config, skeleton: Skeleton, rank: int = 0) -> DataBundle:
    from .folder import FolderVideos
    from .labelled import LabelledFolder

    d = cfg.data
    if not d.root:
        raise DataError("data.source=folder needs data.root (a folder of videos)")
    if not d.prior:
        raise DataError("data.source=folder needs data.prior (COCO JSON or .npy of example poses)")
    train = FolderVideos(d.root, cfg.model.image_size, cache_dir=d.cache_dir, max_frames=d.max_frames)
    prior_skeleton = None
    if d.prior_skeleton:
        from ..pose import get_skeleton

        prior_skeleton = get_skeleton(d.prior_skeleton)
    prior = load_prior(d.prior, skeleton, image_size=d.prior_image_size, prior_skeleton=prior_skeleton,
                       num=d.num_prior, seed=d.prior_seed, crop=d.prior_crop)
    pairs, prior_sampler = _samplers(train, prior, cfg, rank)
    test = None
    if d.test_labels:
        test = LabelledFolder(d.test_root or d.root, d.test_labels, cfg.model.image_size, skeleton,
                              crop=d.test_crop, margin=d.bbox_margin)
    return DataBundle(train, prior, pairs, prior_sampler, test)


def build_data(cfg: Config, skeleton: Skeleton, rank: int = 0) -> DataBundle:
    if cfg.data.source == "synthetic":
        return build_synthetic(cfg, skeleton, rank)
    if cfg.data.source == "folder":
        return build_folder(cfg, skeleton, rank)
    raise DataError(f"unknown data.source '{cfg.data.source}' (synthetic or folder)")
