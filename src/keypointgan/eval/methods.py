"""Score several methods on the same labelled images -> rows: one function for every report.

:func:`compare_methods` is what ``keypointgan evaluate`` and the demo both call. The
rows, in this order:

- each detector (``Detector``): its keypoints with the left/right orientation correction
  by its reference (the frozen pre-trained eta; appendix F.2), and, when it has a
  reference and a ``no_lr_label``, the same keypoints without it (``KEY_no_lr_fix``);
- ``mean_pose``: the mean prior pose for every image (with a prior);
- ``ridge_post_processing``: a least-squares map from the first detector's keypoints to
  the truth, fitted on labelled training images (with those).

Every row is scored by the same function (``score``, by the protocol when one is given),
and printed with the same :data:`COLUMNS`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator, Optional, Sequence

import torch
from torch import nn

from ..pose import Skeleton
from .evaluator import Predictions, mean_pose_baseline, predict_labelled, ridge_post_processing, score
from .protocols import Protocol
from .regression import RidgeRegressor

NO_LR_FIX = "_no_lr_fix"  # key suffix of a detector's row without the left/right orientation correction
# row keys of metrics.json files written before the rename ("raw" also named the last-step weights)
LEGACY_KEYS = {"unsupervised_raw": "unsupervised" + NO_LR_FIX, "supervised_raw": "supervised" + NO_LR_FIX}

LABELS = {
    "unsupervised": "KeypointGAN (unsupervised, L/R by pre-trained eta)",
    "unsupervised" + NO_LR_FIX: "KeypointGAN (unsupervised, no L/R correction)",
    "supervised": "supervised baseline (same architecture)",
    "mean_pose": "mean prior pose",
    "ridge_post_processing": "KeypointGAN + supervised post-processing (ridge)",
}


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    lower_is_better: bool


COLUMNS = [Column("error_percent", "error %", True), Column("error_percent_min_over_flip", "min-over-flip %", True),
           Column("error_px", "error px", True), Column("pck@0.05", "PCK@0.05", False),
           Column("pck@0.1", "PCK@0.1", False), Column("auc@30px", "AUC@30px", False)]
SUMMARY_KEYS = ("error_percent", "error_percent_min_over_flip", "pck@0.1")


def columns(protocol: Optional[Protocol] = None, arrows: bool = False) -> list[tuple[str, str]]:
    """``(key, header)`` of the printed metrics: :data:`COLUMNS`, then the protocol's headline if it
    is not among them; ``arrows`` marks each header (↓) or (↑)."""
    cols = list(COLUMNS)
    if protocol is not None and protocol.key not in {c.key for c in cols}:
        cols.append(Column(protocol.key, protocol.header, protocol.lower_is_better))
    return [(c.key, f"{c.header} ({'↓' if c.lower_is_better else '↑'})" if arrows else c.header) for c in cols]


def summary_keys(protocol: Optional[Protocol] = None) -> tuple[str, ...]:
    """The metrics of metrics.json's ``summary``: :data:`SUMMARY_KEYS` and the protocol's headline."""
    keys = SUMMARY_KEYS
    return keys if protocol is None or protocol.key in keys else keys + (protocol.key,)


@dataclass
class Detector:
    """A model to score: rows ``key`` (L/R-corrected by ``eta_reference`` when there is one) and,
    with a reference and a ``no_lr_label``, ``key + NO_LR_FIX`` (without the correction)."""

    key: str
    label: str
    model: nn.Module
    runtime: Any
    eta_reference: Optional[nn.Module] = None
    no_lr_label: Optional[str] = None


@dataclass
class Row:
    key: str
    label: str
    metrics: dict[str, Any]


@dataclass
class Comparison:
    """The rows of :func:`compare_methods`, the detectors' predictions and the fitted ridge map."""

    rows: list[Row]
    predictions: dict[str, Predictions]  # detector key -> its predictions on the test images
    ridge: Optional[RidgeRegressor] = None
    ridge_images: int = 0  # labelled training images the ridge map was fitted on
    protocol: Optional[Protocol] = None
    extras: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, key: str) -> dict[str, Any]:
        for r in self.rows:
            if r.key == key:
                return r.metrics
        raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        return any(r.key == key for r in self.rows)

    def __iter__(self) -> Iterator[Row]:
        return iter(self.rows)

    @property
    def metrics(self) -> dict[str, dict[str, Any]]:
        """``{key: metrics}`` in row order."""
        return {r.key: r.metrics for r in self.rows}

    @property
    def labelled(self) -> list[tuple[str, dict[str, Any]]]:
        """``(label, metrics)`` in row order: the rows of the tables."""
        return [(r.label, r.metrics) for r in self.rows]


def compare_methods(test: Any, detectors: Sequence[Detector], skeleton: Skeleton, image_size: int, *,
                    prior: Optional[torch.Tensor] = None, train_labelled: Any = None,
                    protocol: Optional[Protocol] = None, batch_size: int = 64,
                    progress: bool = False) -> Comparison:
    """Score ``detectors`` on the labelled ``test`` images next to the mean prior pose (``prior``) and
    ridge post-processing of the first detector (fitted on ``train_labelled``); see the module doc."""
    if protocol is not None:
        protocol.check(skeleton)

    def scored(pred: Any, truth: Any) -> dict[str, Any]:
        return score(pred, truth, skeleton, image_size, protocol)

    rows: list[Row] = []
    preds: dict[str, Predictions] = {}
    for d in detectors:
        p = predict_labelled(d.model, test, d.runtime, skeleton, d.eta_reference, batch_size, progress)
        preds[d.key] = p
        rows.append(Row(d.key, d.label, scored(p.oriented, p.truth)))
        if d.eta_reference is not None and d.no_lr_label is not None:
            rows.append(Row(d.key + NO_LR_FIX, d.no_lr_label, scored(p.keypoints, p.truth)))
    first = detectors[0]
    truth = preds[first.key].truth
    if prior is not None:
        rows.append(Row("mean_pose", LABELS["mean_pose"], mean_pose_baseline(prior, truth, skeleton, image_size,
                                                                             protocol)))
    out = Comparison(rows, preds, protocol=protocol)
    if train_labelled is not None:
        tp = predict_labelled(first.model, train_labelled, first.runtime, skeleton, first.eta_reference, batch_size,
                              progress)
        mapped, out.ridge = ridge_post_processing(tp.oriented, tp.truth.keypoints, preds[first.key].oriented)
        out.ridge_images = len(tp.truth.ids)
        rows.append(Row("ridge_post_processing", LABELS["ridge_post_processing"], scored(mapped, truth)))
    return out


def upgrade_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    """A metrics.json of an older version with today's keys (``unsupervised_raw`` ->
    ``unsupervised_no_lr_fix``, in ``methods``, ``summary`` and ``per_category_error_percent``)."""
    def renamed(d: Any) -> Any:
        return {LEGACY_KEYS.get(k, k): v for k, v in d.items()} if isinstance(d, dict) else d

    out = dict(metrics)
    if isinstance(out.get("methods"), dict):
        out["methods"] = renamed(out["methods"])
    if isinstance(out.get("per_category_error_percent"), dict):
        out["per_category_error_percent"] = {c: renamed(v) for c, v in out["per_category_error_percent"].items()}
    if isinstance(out.get("summary"), dict):
        out["summary"] = {k: renamed(v) for k, v in out["summary"].items()}
    return out
