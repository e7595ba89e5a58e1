"""Keypoint evaluation metrics as pure functions (numpy in spirit; torch accepted).

Every function takes keypoints ``(N, K, 2)`` (a single ``(K, 2)`` pose is read as
``N = 1``) as numpy arrays, torch tensors or nested lists, computes in float64 and
returns Python floats or numpy arrays. ``visible`` is an optional ``(N, K)`` mask of
ground-truth keypoints to score; invisible keypoints are left out of every mean.

Coordinate spaces (see :mod:`keypointgan.pose.coords`): ``"normalized"`` is the
model's ``[-1, 1]`` (``align_corners=False``), ``"unit"`` a fraction ``[0, 1]`` of
the image size, ``"pixels"`` COCO pixels (pixel ``i``'s centre at ``x = i``).
Errors carry the units of their inputs unless the name says otherwise
(``..._fraction``, ``..._percent``, ``..._pixels``).

Protocols: Simplified Human3.6M (mean error as a fraction of image size over all 32
joints, averaged per activity then over activities; Zhang et al. 2018 and the
KeypointGAN release), full Human3.6M (mean pixel error over 17 joints), 300-W
(inter-ocular normalised error), and mmpose's PCK / AUC.
"""

from __future__ import annotations

import math
from typing import Any, Hashable, Literal, Optional, Sequence, Union

import numpy as np
import torch

from keypointgan.pose.coords import normalized_to_pixels, normalized_to_unit, pixels_to_normalized
from keypointgan.pose.skeleton import Skeleton, get_skeleton

ArrayLike = Union[np.ndarray, torch.Tensor, Sequence[Any]]
Space = Literal["unit", "normalized", "pixels"]
Size = Union[int, float, Sequence[float]]

__all__ = [
    "as_numpy", "to_unit", "to_pixels", "flip_keypoints",
    "keypoint_errors", "per_image_error", "average_by_category",
    "mean_error_fraction", "mean_error_percent", "mean_error_pixels",
    "min_over_flip", "orientation_correct",
    "interocular_normalised_errors", "interocular_normalised_error",
    "bbox_normalizer", "image_normalizer", "pck_per_keypoint", "pck", "pck_auc",
    "evaluate_keypoints",
]


# -- input handling ------------------------------------------------------------------
def as_numpy(a: ArrayLike) -> np.ndarray:
    """Any array-like (torch tensors included) as a float64 numpy array."""
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu().to(torch.float64).numpy()
    return np.asarray(a, dtype=np.float64)


def _keypoints(a: ArrayLike, name: str) -> np.ndarray:
    """``a`` as ``(N, K, 2)`` float64; a single ``(K, 2)`` pose becomes ``N = 1``."""
    x = as_numpy(a)
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3 or x.shape[-1] != 2:
        raise ValueError(f"{name}: expected keypoints of shape (N, K, 2) or (K, 2), got {x.shape} "
                         "(pass a COCO visibility channel as `visible`, not as a third coordinate)")
    return x


def _pair(pred: ArrayLike, gt: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    p, g = _keypoints(pred, "pred"), _keypoints(gt, "gt")
    if p.shape != g.shape:
        raise ValueError(f"pred and gt shapes differ: {p.shape} vs {g.shape}")
    return p, g


def _visible(visible: Optional[ArrayLike], n: int, k: int) -> np.ndarray:
    """``(N, K)`` bool mask; ``None`` means every keypoint is scored."""
    if visible is None:
        return np.ones((n, k), dtype=bool)
    v = visible.detach().cpu().numpy() if isinstance(visible, torch.Tensor) else np.asarray(visible)
    v = v.reshape(-1, k) if v.size == n * k else v
    if v.shape != (n, k):
        raise ValueError(f"visible: expected shape ({n}, {k}), got {np.shape(visible)}")
    return v > 0


def _index(indices: Optional[Sequence[int]], k: int) -> np.ndarray:
    idx = np.arange(k) if indices is None else np.asarray(list(indices), dtype=np.int64)
    if idx.size == 0 or idx.min() < -k or idx.max() >= k:
        raise ValueError(f"keypoint indices {list(idx)} are empty or out of range for {k} keypoints")
    return idx


def _wh(size: Size) -> np.ndarray:
    """Image size as ``[width, height]``; a number means a square image."""
    if isinstance(size, (int, float)):
        return np.array([float(size), float(size)])
    w, h = size
    return np.array([float(w), float(h)])


def _mean_rows(values: np.ndarray) -> np.ndarray:
    """Row means ignoring NaN; NaN for an all-NaN row (no warning)."""
    ok = ~np.isnan(values)
    cnt = ok.sum(axis=-1)
    tot = np.where(ok, values, 0.0).sum(axis=-1)
    return np.divide(tot, cnt, out=np.full(tot.shape, np.nan), where=cnt > 0)


def _nanmean(values: np.ndarray) -> float:
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[~np.isnan(v)]
    return float(v.mean()) if v.size else math.nan


# -- coordinate spaces ---------------------------------------------------------------
def to_unit(kp: ArrayLike, space: Space = "normalized", image_size: Optional[Size] = None) -> np.ndarray:
    """Keypoints in ``space`` -> fractions ``[0, 1]`` of the image size (x by width, y by height)."""
    x = as_numpy(kp)
    if space == "unit":
        return x
    if space == "normalized":
        return normalized_to_unit(x)
    if space == "pixels":
        if image_size is None:
            raise ValueError("to_unit: pixel coordinates need image_size")
        return normalized_to_unit(pixels_to_normalized(x, tuple(_wh(image_size))))
    raise ValueError(f"unknown coordinate space '{space}' (unit, normalized, pixels)")


def to_pixels(kp: ArrayLike, space: Space = "normalized", image_size: Optional[Size] = None) -> np.ndarray:
    """Keypoints in ``space`` -> COCO pixel coordinates of an image of ``image_size``."""
    x = as_numpy(kp)
    if space == "pixels":
        return x
    if image_size is None:
        raise ValueError("to_pixels: converting to pixels needs image_size")
    uv = x if space == "normalized" else 2.0 * to_unit(x, space) - 1.0
    return normalized_to_pixels(uv, tuple(_wh(image_size)))


def flip_keypoints(kp: ArrayLike, flip_perm: Sequence[int]) -> ArrayLike:
    """Swap left/right keypoint *labels*: ``kp[..., flip_perm, :]`` (no mirroring of coordinates).

    Returns the input's type (torch in, torch out). ``flip_perm`` is
    :meth:`Skeleton.flip_permutation`.
    """
    perm = list(flip_perm)
    if isinstance(kp, torch.Tensor):
        return kp[..., torch.as_tensor(perm, device=kp.device), :]
    return np.asarray(kp)[..., perm, :]


# -- distances -----------------------------------------------------------------------
def keypoint_errors(pred: ArrayLike, gt: ArrayLike, visible: Optional[ArrayLike] = None) -> np.ndarray:
    """Euclidean distance ``||pred - gt||_2`` per image and keypoint, ``(N, K)``.

    In the units of the inputs; NaN where ``visible`` is false.
    """
    p, g = _pair(pred, gt)
    d = np.linalg.norm(p - g, axis=-1)
    return np.where(_visible(visible, *d.shape), d, np.nan)


def per_image_error(pred: ArrayLike, gt: ArrayLike, visible: Optional[ArrayLike] = None,
                    indices: Optional[Sequence[int]] = None) -> np.ndarray:
    """Mean Euclidean error over the (visible) keypoints ``indices`` of each image, ``(N,)``.

    NaN for an image with no visible keypoint among ``indices``.
    """
    d = keypoint_errors(pred, gt, visible)
    return _mean_rows(d[:, _index(indices, d.shape[1])])


def average_by_category(values: ArrayLike, categories: Optional[Sequence[Hashable]] = None,
                        category_average: bool = True) -> tuple[float, dict[str, float]]:
    """Average per-image values, per category and overall.

    Returns ``(overall, {str(category): mean})``. With ``category_average`` the overall
    value is the mean of the category means (the Simplified Human3.6M protocol: each
    activity weighs the same); otherwise it is the plain mean over images. NaN values
    (images with nothing to score) are skipped. Without categories the per-category
    dict is empty and the overall value is the mean over images.
    """
    v = as_numpy(values).ravel()
    if categories is None:
        return _nanmean(v), {}
    cats = [str(c) for c in categories]
    if len(cats) != v.size:
        raise ValueError(f"categories: got {len(cats)} labels for {v.size} images")
    labels = np.asarray(cats)
    per = {c: _nanmean(v[labels == c]) for c in sorted(set(cats))}
    overall = _nanmean(np.array(list(per.values()))) if category_average else _nanmean(v)
    return overall, per


# -- Simplified Human3.6M ------------------------------------------------------------
def min_over_flip(pred: ArrayLike, gt: ArrayLike, flip_perm: Sequence[int],
                  visible: Optional[ArrayLike] = None,
                  indices: Optional[Sequence[int]] = None) -> np.ndarray:
    """Per-image ``min(err(pred, gt), err(pred, gt[flip_perm]))``, ``(N,)``.

    The KeypointGAN release's "min distance": forgives a prediction that has the whole
    body's left and right sides swapped (a frontal/dorsal confusion). The flipped
    ground truth carries its own visibility (``visible[:, flip_perm]``). Needs ground
    truth, so it is an optimistic diagnostic, not the headline number.
    """
    p, g = _pair(pred, gt)
    perm = list(flip_perm)
    vis = _visible(visible, *p.shape[:2])
    plain = per_image_error(p, g, vis, indices)
    flipped = per_image_error(p, g[:, perm], vis[:, perm], indices)
    return np.fmin(plain, flipped)


def orientation_correct(pred: ArrayLike, reference: ArrayLike,
                        flip_perm: Sequence[int]) -> tuple[ArrayLike, ArrayLike]:
    """Swap ``pred``'s left/right labels in images where the swapped pose is closer to ``reference``.

    The paper's unsupervised orientation fix (appendix F.2): fine-tuned eta loses some
    ability to tell frontal from dorsal views, so the pre-trained, frozen eta's
    reading of the reconstructed skeleton serves as ``reference`` (the caller computes
    it; this function is pure). Closeness is the per-image mean Euclidean distance over
    all keypoints; ties keep ``pred``. Returns ``(corrected, swapped)`` with ``swapped``
    an ``(N,)`` bool mask, both of the input's type (torch in, torch out).
    """
    p, r = _pair(pred, reference)
    perm = list(flip_perm)
    swap = per_image_error(p[:, perm], r) < per_image_error(p, r)
    single = np.ndim(pred) == 2
    if isinstance(pred, torch.Tensor):
        mask = torch.as_tensor(swap, device=pred.device)
        m = mask[0] if single else mask.view(-1, 1, 1)
        return torch.where(m, flip_keypoints(pred, perm), pred), (mask[0] if single else mask)
    out = np.where(swap[:, None, None], p[:, perm], p)
    return (out[0], swap[0]) if single else (out, swap)


def mean_error_fraction(pred: ArrayLike, gt: ArrayLike, categories: Optional[Sequence[Hashable]] = None, *,
                        space: Space = "unit", image_size: Optional[Size] = None,
                        indices: Optional[Sequence[int]] = None, visible: Optional[ArrayLike] = None,
                        flip_perm: Optional[Sequence[int]] = None,
                        category_average: bool = True) -> tuple[float, dict[str, float]]:
    """Simplified Human3.6M error as a fraction of image size: ``(overall, per_category)``.

    Coordinates are taken to ``[0, 1]`` of the image (``space="normalized"`` accepts
    the model's ``[-1, 1]``, ``"pixels"`` needs ``image_size``); each image's error is
    the mean Euclidean (not squared) distance over keypoints ``indices`` (default all,
    32 for H3.6M); images are averaged per category (activity) and the category means
    averaged (Zhang et al. 2018; the KeypointGAN release). With ``flip_perm`` each
    image's error is :func:`min_over_flip`'s. Multiply by 100 for the paper's "%".
    """
    p, g = _pair(to_unit(pred, space, image_size), to_unit(gt, space, image_size))
    err = (min_over_flip(p, g, flip_perm, visible, indices) if flip_perm is not None
           else per_image_error(p, g, visible, indices))
    return average_by_category(err, categories, category_average)


def mean_error_percent(pred: ArrayLike, gt: ArrayLike, categories: Optional[Sequence[Hashable]] = None,
                       **kwargs: Any) -> tuple[float, dict[str, float]]:
    """:func:`mean_error_fraction` x 100: the number Table 1 of the paper reports."""
    overall, per = mean_error_fraction(pred, gt, categories, **kwargs)
    return 100.0 * overall, {c: 100.0 * v for c, v in per.items()}


# -- full Human3.6M ------------------------------------------------------------------
def mean_error_pixels(pred_px: ArrayLike, gt_px: ArrayLike, subset: Optional[Sequence[int]] = None,
                      categories: Optional[Sequence[Hashable]] = None, *,
                      visible: Optional[ArrayLike] = None,
                      category_average: bool = False) -> tuple[float, dict[str, float]]:
    """Full Human3.6M error in pixels: ``(overall, per_category)``.

    Per image, the mean Euclidean pixel error over the joints ``subset`` (the 17 of the
    protocol: ``skeleton.subset("eval17")``; default all); overall is the mean over
    images (``category_average=True`` averages category means instead); the
    per-category dict (activities, as in the paper's supplementary) is empty without
    ``categories``. Pixels are those of the image the coordinates are given in.
    """
    err = per_image_error(pred_px, gt_px, visible, subset)
    return average_by_category(err, categories, category_average)


# -- 300-W ---------------------------------------------------------------------------
def interocular_normalised_errors(pred: ArrayLike, gt: ArrayLike, left_idx: int = 36, right_idx: int = 45,
                                  visible: Optional[ArrayLike] = None) -> np.ndarray:
    """Per-image mean error divided by the ground truth's outer-eye-corner distance, ``(N,)``.

    A fraction (not %); NaN where that distance is zero.
    """
    p, g = _pair(pred, gt)
    iod = np.linalg.norm(g[:, left_idx] - g[:, right_idx], axis=-1)
    err = per_image_error(p, g, visible)
    return np.divide(err, iod, out=np.full(err.shape, np.nan), where=iod > 0)


def interocular_normalised_error(pred: ArrayLike, gt: ArrayLike, left_idx: int = 36, right_idx: int = 45,
                                 visible: Optional[ArrayLike] = None) -> float:
    """300-W inter-ocular normalised error **in %** (Table 3; Zhang et al. 2014, TCDCN).

    ``100 * mean_n( mean_k ||pred_nk - gt_nk|| / ||gt_n[left_idx] - gt_n[right_idx]|| )``;
    indices 36 and 45 are the outer eye corners in 68-point iBUG order (mmpose's
    ``keypoint_distance`` NME for 300w uses the same pair). Any coordinate units.
    """
    return 100.0 * _nanmean(interocular_normalised_errors(pred, gt, left_idx, right_idx, visible))


# -- PCK and AUC (mmpose) ------------------------------------------------------------
def bbox_normalizer(bboxes: ArrayLike, fmt: Literal["xyxy", "xywh"] = "xyxy") -> np.ndarray:
    """mmpose's PCK ``bbox`` normaliser: ``max(width, height)`` of each box, ``(N,)``."""
    b = as_numpy(bboxes).reshape(-1, 4)
    wh = b[:, 2:] - b[:, :2] if fmt == "xyxy" else b[:, 2:]
    return wh.max(axis=1)


def image_normalizer(image_size: Size, n: int) -> np.ndarray:
    """Per-axis normaliser ``(N, 2)`` = image ``(width, height)``: distances in image fractions."""
    return np.tile(_wh(image_size), (n, 1))


def _normalised_distances(pred: ArrayLike, gt: ArrayLike, visible: Optional[ArrayLike],
                          normalize: Union[float, ArrayLike]) -> np.ndarray:
    """``||(pred - gt) / norm||`` per image and keypoint, NaN where not scored (mmpose rules).

    ``normalize`` is a number, ``(N,)`` (one per image) or ``(N, 2)`` (per axis x, y).
    Keypoints of images with a non-positive normaliser are not scored.
    """
    p, g = _pair(pred, gt)
    n, k, _ = p.shape
    norm = as_numpy(normalize)
    if norm.ndim == 0:
        norm = np.full((n, 2), float(norm))
    elif norm.ndim == 1:
        if norm.shape[0] != n:
            raise ValueError(f"normalize: expected {n} per-image values, got {norm.shape[0]}")
        norm = np.repeat(norm[:, None], 2, axis=1)
    norm = np.broadcast_to(norm, (n, 2))
    ok = _visible(visible, n, k) & (norm > 0).all(axis=1)[:, None]
    d = np.linalg.norm((p - g) / np.where(norm > 0, norm, 1.0)[:, None, :], axis=-1)
    return np.where(ok, d, np.nan)


def _pck_from_distances(d: np.ndarray, alpha: float) -> np.ndarray:
    """Per-keypoint fraction of scored images with ``d < alpha``, ``(K,)``; NaN if none scored."""
    ok = ~np.isnan(d)
    cnt = ok.sum(axis=0)
    hit = (np.where(ok, d, np.inf) < alpha).sum(axis=0)
    return np.divide(hit, cnt, out=np.full(cnt.shape, np.nan), where=cnt > 0)


def pck_per_keypoint(pred: ArrayLike, gt: ArrayLike, visible: Optional[ArrayLike] = None,
                     threshold_alpha: float = 0.05, normalize: Union[float, ArrayLike] = 1.0) -> np.ndarray:
    """PCK of each keypoint, ``(K,)`` in ``[0, 1]`` (mmpose ``keypoint_pck_accuracy``'s ``acc``).

    A visible keypoint is correct when ``||(pred - gt) / norm|| < threshold_alpha``
    (strict); NaN for a keypoint never scored.
    """
    return _pck_from_distances(_normalised_distances(pred, gt, visible, normalize), threshold_alpha)


def pck(pred: ArrayLike, gt: ArrayLike, visible: Optional[ArrayLike] = None, threshold_alpha: float = 0.05,
        normalize: Union[float, ArrayLike] = 1.0) -> float:
    """Percentage of Correct Keypoints as a fraction ``[0, 1]`` (mmpose ``keypoint_pck_accuracy``).

    ``normalize`` is the per-image normaliser: a number, ``(N,)`` (e.g.
    :func:`bbox_normalizer`, ``max(w, h)`` of the box: mmpose's ``PCK``) or ``(N, 2)``
    per axis (e.g. :func:`image_normalizer`). Distance ``||(pred - gt) / norm||``,
    correct when ``< threshold_alpha``; invisible keypoints excluded. As in mmpose the
    result is the mean over keypoints of each keypoint's accuracy (keypoints never
    scored skipped; 0.0 if nothing is scored), not the pooled fraction.
    """
    acc = pck_per_keypoint(pred, gt, visible, threshold_alpha, normalize)
    return _nanmean(acc) if np.any(~np.isnan(acc)) else 0.0


def pck_auc(pred: ArrayLike, gt: ArrayLike, visible: Optional[ArrayLike] = None,
            norm_factor: float = 30.0, num_thresholds: int = 20) -> float:
    """Area under the PCK curve, ``[0, 1)`` (mmpose ``keypoint_auc``, metric ``AUC``).

    ``AUC = (1/T) sum_{i=0}^{T-1} PCK(alpha = i/T, normalize = norm_factor)`` with
    ``T = num_thresholds``: distances in the inputs' units (mmpose: pixels) divided by
    one ``norm_factor`` (mmpose default 30 px, 20 thresholds), i.e. pixel thresholds
    0, 1.5, ..., 28.5. The thresholds are mmpose's ``i/T`` for ``i < T`` (not
    ``linspace(0, 1, T)``); with the strict ``<`` the first is never met, so a
    perfect prediction scores ``(T-1)/T`` (0.95), as in mmpose.
    """
    d = _normalised_distances(pred, gt, visible, float(norm_factor))
    accs = []
    for i in range(num_thresholds):
        acc = _pck_from_distances(d, i / num_thresholds)
        accs.append(_nanmean(acc) if np.any(~np.isnan(acc)) else 0.0)
    return float(np.mean(accs))


# -- everything at once --------------------------------------------------------------
def _json_float(x: float) -> Optional[float]:
    return None if x is None or math.isnan(x) else float(x)


def _json_dict(d: dict[str, float]) -> dict[str, Optional[float]]:
    return {k: _json_float(v) for k, v in d.items()}


def evaluate_keypoints(pred: ArrayLike, gt: ArrayLike, categories: Optional[Sequence[Hashable]] = None,
                       skeleton: Union[Skeleton, str, None] = None, image_size: Size = 128, *,
                       space: Space = "normalized", visible: Optional[ArrayLike] = None,
                       pck_alphas: Sequence[float] = (0.05, 0.1), auc_norm_px: float = 30.0,
                       auc_num_thresholds: int = 20) -> dict[str, Any]:
    """All applicable metrics as a JSON-ready dict (NaN written as ``None``).

    Keys: ``num_images``, ``num_keypoints``; ``error_percent`` (+ ``_per_category``;
    Simplified H3.6M: % of image size, category-averaged); with flip pairs
    ``error_percent_min_over_flip`` (+ ``_per_category``); ``error_px`` (+
    ``_per_category``; pixels at ``image_size``, mean over images); for each skeleton
    subset ``S``: ``error_percent_S`` and ``error_px_S`` (e.g. ``eval17``), except a
    subset ``outer_eye_corners`` which gives ``nme_interocular_percent``;
    ``pck@A`` for each alpha (normalised by image width/height per axis); and
    ``auc@Npx`` (mmpose AUC, ``auc_norm_px`` pixels at ``image_size``).
    """
    unit = _keypoints(to_unit(pred, space, image_size), "pred")
    unit_gt = _keypoints(to_unit(gt, space, image_size), "gt")
    px = _keypoints(to_pixels(pred, space, image_size), "pred")
    px_gt = _keypoints(to_pixels(gt, space, image_size), "gt")
    n, k = unit.shape[:2]
    sk = get_skeleton(skeleton) if skeleton is not None else None
    if sk is not None:
        sk.check_keypoints(unit.shape, "evaluate_keypoints")
    out: dict[str, Any] = {"num_images": int(n), "num_keypoints": int(k), "image_size": _wh(image_size).tolist()}

    def put(key: str, value: tuple[float, dict[str, float]], percent: bool) -> None:
        s = 100.0 if percent else 1.0
        out[key] = _json_float(s * value[0])
        if categories is not None:
            out[key + "_per_category"] = _json_dict({c: s * v for c, v in value[1].items()})

    put("error_percent", mean_error_fraction(unit, unit_gt, categories, visible=visible), True)
    if sk is not None and sk.flip_pairs:
        put("error_percent_min_over_flip", mean_error_fraction(
            unit, unit_gt, categories, visible=visible, flip_perm=sk.flip_permutation()), True)
    put("error_px", mean_error_pixels(px, px_gt, None, categories, visible=visible), False)
    for name, idx in (sk.subsets.items() if sk is not None else ()):
        if name == "outer_eye_corners" and len(idx) == 2:
            out["nme_interocular_percent"] = _json_float(
                interocular_normalised_error(px, px_gt, idx[0], idx[1], visible))
            continue
        put(f"error_percent_{name}", mean_error_fraction(unit, unit_gt, categories, visible=visible,
                                                         indices=idx), True)
        put(f"error_px_{name}", mean_error_pixels(px, px_gt, idx, categories, visible=visible), False)
    norm = image_normalizer(image_size, n)
    for a in pck_alphas:
        out[f"pck@{a:g}"] = _json_float(pck(px, px_gt, visible, a, norm))
    out[f"auc@{auc_norm_px:g}px"] = _json_float(pck_auc(px, px_gt, visible, auc_norm_px, auc_num_thresholds))
    return out
