"""Run a detector over labelled images and score it, next to baselines.

One code path for every number the project reports: the unsupervised KeypointGAN
detector (with the paper's left/right orientation correction by the pre-trained eta),
the mean prior pose, supervised post-processing by ridge regression, and a supervised
model of the same architecture. All are scored by :func:`metrics.evaluate_keypoints`
(with a named protocol, :mod:`.protocols`); :mod:`.methods` puts them side by side.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Optional

import numpy as np
import torch
from torch import nn

from ..pose import Skeleton, keypoint_confidence
from .metrics import evaluate_keypoints, orientation_correct
from .protocols import Protocol
from .regression import RidgeRegressor


@dataclass
class LabelledBatchSet:
    """Ground truth of a labelled source gathered once: keypoints, visibility, categories."""

    keypoints: np.ndarray  # (N, K, 2) normalised
    visible: np.ndarray  # (N, K) bool
    categories: list[str]
    videos: list[str]
    ids: list[int]


@dataclass
class Predictions:
    """A detector's output on a labelled source (normalised coordinates)."""

    keypoints: np.ndarray  # (N, K, 2) as predicted
    oriented: np.ndarray  # after left/right orientation correction (== keypoints without a reference)
    confidence: np.ndarray  # (N, K)
    swapped: np.ndarray  # (N,) bool: orientation correction swapped this image
    truth: LabelledBatchSet
    extras: dict[str, Any] = field(default_factory=dict)


def _iterate(source: Any, batch_size: int) -> Iterable[list[dict]]:
    batch = []
    for i in range(len(source)):
        batch.append(source.item(i))
        if len(batch) == batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def gather_truth(source: Any) -> LabelledBatchSet:
    items = [source.item(i) for i in range(len(source))]
    return _truth(items)


def _truth(items: list[dict]) -> LabelledBatchSet:
    kp = np.stack([np.asarray(it["keypoints"], dtype=np.float64) for it in items])
    vis = np.stack([np.asarray(it.get("visible", np.ones(kp.shape[1], bool)), dtype=bool) for it in items])
    return LabelledBatchSet(kp, vis, [str(it.get("category", "all")) for it in items],
                            [str(it.get("video", "")) for it in items], [int(it.get("id", i)) for i, it in enumerate(items)])


@torch.no_grad()
def predict_labelled(model: nn.Module, source: Any, runtime: Any, skeleton: Skeleton,
                     eta_reference: Optional[nn.Module] = None, batch_size: int = 64,
                     progress: bool = False) -> Predictions:
    """Detect keypoints on every labelled image; orient left/right with ``eta_reference``.

    The reference is what the frozen pre-trained eta reads from the reconstructed
    skeleton ``beta(eta(Phi(x)))`` (appendix F.2): fine-tuning can make eta confuse
    front and back views, the pre-trained one does not.
    """
    from tqdm.auto import tqdm

    was_training = model.training
    model.eval()
    preds, confs, refs, items_all = [], [], [], []
    n_batches = (len(source) + batch_size - 1) // batch_size
    for items in tqdm(_iterate(source, batch_size), total=n_batches, desc="evaluating", disable=not progress):
        x = runtime.tensor(torch.stack([it["image"] for it in items]))
        with runtime.autocast():
            det = model.detect(x)
        kp = det.keypoints.float()
        preds.append(kp.cpu())
        confs.append(keypoint_confidence(det.heatmaps, model.eta.softargmax, model.eta.temperature).cpu())
        if eta_reference is not None:
            with runtime.autocast():
                refs.append(eta_reference(runtime.tensor(model.render(kp))).keypoints.float().cpu())
        items_all.extend({k: v for k, v in it.items() if k != "image"} for it in items)
    model.train(was_training)
    kp = torch.cat(preds).numpy().astype(np.float64)
    if refs:
        oriented, swapped = orientation_correct(kp, torch.cat(refs).numpy(), skeleton.flip_permutation())
        oriented, swapped = np.asarray(oriented), np.asarray(swapped)
    else:
        oriented, swapped = kp, np.zeros(len(kp), bool)
    return Predictions(kp, oriented, torch.cat(confs).numpy(), swapped, _truth(items_all))


def score(pred: np.ndarray, truth: LabelledBatchSet, skeleton: Skeleton, image_size: int,
          protocol: Optional[Protocol] = None) -> dict[str, Any]:
    """All metrics of ``pred`` against ``truth`` (see :func:`metrics.evaluate_keypoints`); with a
    ``protocol``, its headline metric computed by the protocol (:meth:`Protocol.score`)."""
    if protocol is not None:
        return protocol.score(pred, truth.keypoints, truth.categories, skeleton, image_size, truth.visible)
    return evaluate_keypoints(pred, truth.keypoints, truth.categories, skeleton, image_size,
                              space="normalized", visible=truth.visible)


def mean_pose(prior: torch.Tensor | np.ndarray) -> np.ndarray:
    """The mean of the prior poses ``(K, 2)``: the baseline that predicts one pose for all."""
    p = prior.detach().cpu().numpy() if isinstance(prior, torch.Tensor) else np.asarray(prior)
    return p.reshape(-1, *p.shape[-2:]).mean(0)


def mean_pose_baseline(prior: torch.Tensor | np.ndarray, truth: LabelledBatchSet, skeleton: Skeleton,
                       image_size: int, protocol: Optional[Protocol] = None) -> dict[str, Any]:
    pose = mean_pose(prior)
    return score(np.broadcast_to(pose, truth.keypoints.shape).copy(), truth, skeleton, image_size, protocol)


def ridge_post_processing(train_pred: np.ndarray, train_truth: np.ndarray, test_pred: np.ndarray,
                          alpha: float = 0.0, fit_intercept: bool = True) -> tuple[np.ndarray, RidgeRegressor]:
    """Supervised post-processing (section 5): linear map fitted on labelled training images."""
    reg = RidgeRegressor(alpha=alpha, fit_intercept=fit_intercept).fit(train_pred, train_truth)
    return reg.predict(test_pred), reg
