"""``data.source: synthetic``: the built-in procedural videos (docs/synthetic-data.md).

Options are the ``data.synthetic_*`` keys (videos, frames, seed, split, activities,
test stride, storage) and ``data.cache_dir``.
"""

from __future__ import annotations

from ...config import Config
from ...pose import Skeleton
from ..bundle import prior_subset
from .base import Dataset, EvaluationSources, Sources


class SyntheticDataset(Dataset):
    name = "synthetic"
    description = "built-in procedural videos of a textured 2D humanoid, split by video into train / prior / test"
    skeleton = "synth_humanoid"
    protocol = "simplified_h36m"
    citation = "keypointgan's own generator (docs/synthetic-data.md); no external data"

    def sources(self, cfg: Config, skeleton: Skeleton) -> Sources:
        from ..synthetic import synthetic_sources
        from ..synthetic.dataset import SyntheticLabelled

        src = synthetic_sources(cfg.data, cfg.model.image_size, skeleton)
        prior = prior_subset(src.prior.to_prior(), cfg)
        train_labelled = SyntheticLabelled(src.world, cfg.model.image_size, split="train",
                                           cache_dir=cfg.data.cache_dir)
        return Sources(src.train, prior, src.test, train_labelled, test_desc="synthetic test split",
                       train_desc="synthetic training split", prior_desc="synthetic prior split")

    def evaluation_sources(self, cfg: Config, skeleton: Skeleton, test: bool = True,
                           train_labelled: bool = True) -> EvaluationSources:
        if test or train_labelled:
            return super().evaluation_sources(cfg, skeleton, test, train_labelled)
        from ..synthetic import synthetic_sources  # the prior split alone

        src = synthetic_sources(cfg.data, cfg.model.image_size, skeleton)
        return EvaluationSources(prior=prior_subset(src.prior.to_prior(), cfg).keypoints,
                                 prior_desc="synthetic prior split")
