"""What a dataset module provides: its names (skeleton, protocol, citation) and its sources.

A dataset is a subclass of :class:`Dataset` that sets the class attributes and
implements :meth:`Dataset.sources`; the base class turns the sources into the
:class:`~keypointgan.data.bundle.DataBundle` training sees (seeded samplers, the same
for every dataset) and into what evaluation needs. Options of its own go in a dataclass
``Options``, read from the config's ``data.options`` section.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, Optional

import torch

from ...config import Config, ConfigError, config_from_dict
from ...pose import Skeleton
from ..base import LabelledSource, VideoSource
from ..bundle import DataBundle, make_samplers
from ..prior import PriorPoses


@dataclass
class Sources:
    """Everything a dataset gives a run; ``*_desc`` say where each part comes from (metrics.json)."""

    train: VideoSource  # videos whose frames make the training pairs
    prior: PriorPoses  # the unpaired prior poses, already the run's subset (data.num_prior)
    test: Optional[LabelledSource] = None  # labelled test images
    train_labelled: Optional[LabelledSource] = None  # labelled training images (post-processing, supervised)
    test_desc: str = "test split"
    train_desc: str = "training split"
    prior_desc: str = "prior"


@dataclass
class EvaluationSources:
    """What ``keypointgan evaluate`` scores on: test images, labelled training images (the
    ridge row; None: no row), the prior poses (the mean-pose row; None: no row), with descriptions."""

    test: Optional[LabelledSource] = None
    test_desc: str = "no labelled test images"
    train_labelled: Optional[LabelledSource] = None
    train_desc: str = "no labelled training images"
    prior: Optional[torch.Tensor] = None  # (M, K, 2) normalised
    prior_desc: str = "no prior"


class Dataset:
    """A data source, selected by ``data.source: NAME``; subclass it and register it (``datasets/__init__.py``).

    ``skeleton``: the skeleton its labels and prior come in (None: any, the config's
    ``skeleton``); ``protocol``: the evaluation protocol it is scored by (a name in
    :mod:`keypointgan.eval.protocols`; ``data.protocol`` overrides it); ``citation``: where
    the data comes from; ``Options``: a dataclass of its own options (``data.options``).
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    skeleton: ClassVar[Optional[str]] = None
    protocol: ClassVar[str] = "simplified_h36m"
    citation: ClassVar[str] = ""
    Options: ClassVar[Optional[type]] = None

    def options(self, cfg: Config) -> Any:
        """This dataset's options from ``cfg.data.options`` (a ConfigError for unknown keys);
        None when the dataset has none."""
        given = cfg.data.options or {}
        if not isinstance(given, dict):
            raise ConfigError(f"data.options: expected a mapping, got {given!r}")
        if self.Options is None:
            if given:
                raise ConfigError(f"data.options: data.source={self.name} takes no options, got {', '.join(given)}")
            return None
        return config_from_dict(given, "data.options", self.Options)

    def sources(self, cfg: Config, skeleton: Skeleton) -> Sources:
        """The training videos, the prior (its ``data.num_prior`` subset) and any labelled images."""
        raise NotImplementedError(f"dataset {self.name!r} does not implement sources()")

    def build(self, cfg: Config, skeleton: Skeleton, rank: int = 0) -> DataBundle:
        """The :class:`DataBundle` of process ``rank``: the sources with seeded samplers."""
        self.options(cfg)
        s = self.sources(cfg, skeleton)
        pairs, prior_sampler = make_samplers(s.train, s.prior, cfg, rank)
        return DataBundle(s.train, s.prior, pairs, prior_sampler, s.test, s.train_labelled)

    def evaluation_sources(self, cfg: Config, skeleton: Skeleton, test: bool = True,
                           train_labelled: bool = True) -> EvaluationSources:
        """What a trained run is scored on; ``test`` / ``train_labelled``: whether those are wanted
        (False: the caller brings its own). By default from :meth:`sources`."""
        self.options(cfg)
        s = self.sources(cfg, skeleton)
        out = EvaluationSources(prior=s.prior.keypoints, prior_desc=s.prior_desc)
        if test and s.test is not None:
            out.test, out.test_desc = s.test, s.test_desc
        if train_labelled and s.train_labelled is not None:
            out.train_labelled, out.train_desc = s.train_labelled, s.train_desc
        return out

    def describe(self) -> dict[str, Any]:
        """Name, description, skeleton, protocol, citation and option names (for listings)."""
        opts = [f.name for f in dataclasses.fields(self.Options)] if self.Options is not None else []
        return {"name": self.name, "description": self.description, "skeleton": self.skeleton,
                "protocol": self.protocol, "citation": self.citation, "options": opts}
