"""Named evaluation protocols: which number a dataset is scored by, and how.

A protocol names its headline metric and computes it explicitly from the metric
functions of :mod:`.metrics`; :meth:`Protocol.score` returns every metric of
:func:`~.metrics.evaluate_keypoints` (the same keys for every protocol, so rows stay
comparable) with the headline set by the protocol itself. A dataset names its protocol
(``Dataset.protocol``); the config's ``data.protocol`` overrides it;
``keypointgan evaluate`` writes it to metrics.json (``protocol``).

- ``simplified_h36m``: mean Euclidean error as % of the image size over all keypoints,
  averaged per activity then over activities (Zhang et al. 2018; the KeypointGAN release);
- ``h36m_17``: mean pixel error over the 17 joints of the full Human3.6M protocol (the
  skeleton's ``eval17`` subset), mean over images;
- ``iod_nme``: 300-W inter-ocular normalised mean error in % (the skeleton's
  ``outer_eye_corners`` subset);
- ``pck``: PCK@0.1, keypoints within 10% of the image size (per axis), mmpose's mean over keypoints.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Hashable, Optional, Sequence

import numpy as np

from ..config import ConfigError
from ..pose.skeleton import Skeleton
from .metrics import (ArrayLike, evaluate_keypoints, image_normalizer, interocular_normalised_error, mean_error_pixels,
                      mean_error_percent, pck, to_pixels)

# (pred, gt, categories, skeleton, image_size, visible) in normalised coordinates -> the headline value
Metric = Callable[[np.ndarray, np.ndarray, Optional[Sequence[Hashable]], Skeleton, int, Optional[ArrayLike]], float]


@dataclass(frozen=True)
class Protocol:
    """An evaluation protocol: its headline metric (``key`` in each row's metrics) and how it is computed."""

    name: str
    key: str  # the headline metric's key in evaluate_keypoints' dict
    header: str  # its column header
    lower_is_better: bool
    description: str
    citation: str
    metric: Metric
    subset: Optional[str] = None  # a skeleton subset the protocol needs

    def check(self, skeleton: Skeleton) -> None:
        """A ConfigError when ``skeleton`` lacks what the protocol needs."""
        if self.subset is not None and self.subset not in skeleton.subsets:
            raise ConfigError(f"evaluation protocol '{self.name}' needs a skeleton with a '{self.subset}' subset; "
                              f"skeleton '{skeleton.name}' has {sorted(skeleton.subsets) or 'none'} "
                              "(choose another with data.protocol)")

    def headline(self, pred: ArrayLike, gt: ArrayLike, categories: Optional[Sequence[Hashable]],
                 skeleton: Skeleton, image_size: int, visible: Optional[ArrayLike] = None) -> Optional[float]:
        """The protocol's number for normalised ``pred`` vs ``gt`` (None where nothing is scored)."""
        self.check(skeleton)
        v = float(self.metric(np.asarray(pred, np.float64), np.asarray(gt, np.float64), categories, skeleton,
                              image_size, visible))
        return None if np.isnan(v) else v

    def score(self, pred: ArrayLike, gt: ArrayLike, categories: Optional[Sequence[Hashable]],
              skeleton: Skeleton, image_size: int, visible: Optional[ArrayLike] = None) -> dict[str, Any]:
        """Every metric of ``evaluate_keypoints`` (normalised coordinates), the headline by this protocol."""
        out = evaluate_keypoints(pred, gt, categories, skeleton, image_size, space="normalized", visible=visible)
        out[self.key] = self.headline(pred, gt, categories, skeleton, image_size, visible)
        return out

    def describe(self) -> dict[str, Any]:
        """For metrics.json: name, headline key, direction, description, citation."""
        return {"name": self.name, "metric": self.key, "lower_is_better": self.lower_is_better,
                "description": self.description, "citation": self.citation}


def _simplified_h36m(pred, gt, categories, skeleton, size, visible) -> float:
    return mean_error_percent(pred, gt, categories, space="normalized", visible=visible)[0]


def _h36m_17(pred, gt, categories, skeleton, size, visible) -> float:
    px, px_gt = to_pixels(pred, "normalized", size), to_pixels(gt, "normalized", size)
    return mean_error_pixels(px, px_gt, skeleton.subset("eval17"), categories, visible=visible)[0]


def _iod_nme(pred, gt, categories, skeleton, size, visible) -> float:
    left, right = skeleton.subset("outer_eye_corners")
    px, px_gt = to_pixels(pred, "normalized", size), to_pixels(gt, "normalized", size)
    return interocular_normalised_error(px, px_gt, left, right, visible)


def _pck(pred, gt, categories, skeleton, size, visible) -> float:
    px, px_gt = to_pixels(pred, "normalized", size), to_pixels(gt, "normalized", size)
    return pck(px, px_gt, visible, 0.1, image_normalizer(size, len(px)))


PROTOCOLS: dict[str, Protocol] = {p.name: p for p in (
    Protocol("simplified_h36m", "error_percent", "error %", True,
             "Simplified Human3.6M: mean Euclidean error over all keypoints in % of the image size, "
             "averaged per activity (category), then over activities",
             "Zhang et al., CVPR 2018; Jakab et al., CVPR 2020 (KeypointGAN release)", _simplified_h36m),
    Protocol("h36m_17", "error_px_eval17", "error px (17 joints)", True,
             "full Human3.6M: mean Euclidean pixel error over the 17 evaluation joints, mean over images",
             "Ionescu et al., TPAMI 2014", _h36m_17, subset="eval17"),
    Protocol("iod_nme", "nme_interocular_percent", "NME % (inter-ocular)", True,
             "300-W: mean error divided by the outer-eye-corner distance of the ground truth, in %",
             "Sagonas et al., 300-W, ICCV-W 2013; Zhang et al., TCDCN, ECCV 2014", _iod_nme,
             subset="outer_eye_corners"),
    Protocol("pck", "pck@0.1", "PCK@0.1", False,
             "PCK@0.1: fraction of keypoints within 10% of the image width/height, mean over keypoints",
             "Yang and Ramanan, TPAMI 2013; mmpose keypoint_pck_accuracy", _pck),
)}


def get_protocol(name: str) -> Protocol:
    """The protocol named ``name`` (a ConfigError lists the known ones)."""
    if name not in PROTOCOLS:
        raise ConfigError(f"unknown evaluation protocol '{name}' (known: {', '.join(PROTOCOLS)})")
    return PROTOCOLS[name]


def list_protocols() -> list[str]:
    return list(PROTOCOLS)
