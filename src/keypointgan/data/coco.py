"""COCO keypoint JSON: read with validation, write atomically.

Coordinates stay in COCO pixels here (pixel ``i``'s centre at ``x = i``); callers
normalise through :mod:`keypointgan.data.transforms` / :mod:`keypointgan.pose.coords`.
Every problem raises :class:`DataError` naming the file and the cause, so a bad label
file fails at load time, never deep inside training or evaluation.

Out-of-image keypoints (labelled, but outside ``[-0.5, W - 0.5] x [-0.5, H - 0.5]``)
are legal in COCO (a limb leaving the frame). By default they are kept and *counted*
(``CocoKeypoints.num_out_of_image``, one warning per file); ``out_of_image="invisible"``
marks them not labelled (``v = 0``) and ``"error"`` rejects the file.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from ..core.io import atomic_write_text
from ..pose.skeleton import Skeleton, SkeletonError
from .base import DataError

log = logging.getLogger("keypointgan.data")

OUT_OF_IMAGE_MODES = ("keep", "invisible", "error")


@dataclass(frozen=True)
class CocoImage:
    """One ``images`` entry; ``video``/``frame_index``/``category`` are optional extras."""

    id: int
    file_name: str
    width: int
    height: int
    video: Optional[str] = None
    frame_index: Optional[int] = None
    category: Optional[str] = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"id": self.id, "file_name": self.file_name,
                             "width": self.width, "height": self.height}
        for key in ("video", "frame_index", "category"):
            if getattr(self, key) is not None:
                d[key] = getattr(self, key)
        return d


@dataclass
class CocoKeypoints:
    """A validated COCO keypoint file: one row per annotation.

    ``keypoints`` (A, K, 2) float64 pixels; ``visibility`` (A, K) int8 in {0, 1, 2};
    ``image_index`` (A,) index into ``images`` of each annotation's image.
    """

    path: Path
    skeleton: Skeleton
    images: list[CocoImage]
    image_index: np.ndarray
    keypoints: np.ndarray
    visibility: np.ndarray
    annotation_ids: np.ndarray
    bboxes: list[Optional[tuple[float, float, float, float]]] = field(default_factory=list)
    scores: Optional[np.ndarray] = None  # (A, K) per-keypoint confidence when the file has it
    num_out_of_image: int = 0

    def __len__(self) -> int:
        return len(self.image_index)

    def image_of(self, ann: int) -> CocoImage:
        return self.images[int(self.image_index[ann])]


# -- reading ---------------------------------------------------------------------
def _load_json(path: Path) -> Any:
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot read file: {e}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: malformed JSON at line {e.lineno}, column {e.colno}: {e.msg}") from None


def _need(d: Any, key: str, where: str, path: Path, kind: type | tuple[type, ...] = object) -> Any:
    if not isinstance(d, Mapping):
        raise DataError(f"{path}: {where} must be an object, got {type(d).__name__}")
    if key not in d:
        raise DataError(f"{path}: {where} is missing required field '{key}'")
    value = d[key]
    if kind is not object and (not isinstance(value, kind) or isinstance(value, bool)):
        names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise DataError(f"{path}: {where} field '{key}' must be {names}, got {value!r:.60}")
    return value


def _positive_int(d: Mapping, key: str, where: str, path: Path) -> int:
    v = _need(d, key, where, path, (int, float))
    if not (math.isfinite(v) and float(v).is_integer() and v > 0):
        raise DataError(f"{path}: {where} field '{key}' must be a positive integer, got {v!r}")
    return int(v)


def _parse_image(d: Any, i: int, path: Path) -> CocoImage:
    where = f"images[{i}]"
    img_id = _need(d, "id", where, path, int)
    where = f"image id {img_id}"
    fi = d.get("frame_index")
    if fi is not None and (isinstance(fi, bool) or not isinstance(fi, int) or fi < 0):
        raise DataError(f"{path}: {where}: 'frame_index' must be a non-negative integer, got {fi!r}")
    return CocoImage(
        id=img_id,
        file_name=str(d.get("file_name", "")),
        width=_positive_int(d, "width", where, path),
        height=_positive_int(d, "height", where, path),
        video=None if d.get("video") is None else str(d["video"]),
        frame_index=fi,
        category=None if d.get("category") is None else str(d["category"]),
    )


def _category_skeleton(cat: Mapping, path: Path) -> Skeleton:
    try:
        return Skeleton.from_coco_category(cat, source=f"{path} category {cat.get('id')}")
    except SkeletonError as e:
        raise DataError(f"{path}: bad category {cat.get('id')}: {e}") from None


def _parse_triplets(raw: Any, k: int, where: str, path: Path) -> np.ndarray:
    if not isinstance(raw, list):
        raise DataError(f"{path}: {where}: 'keypoints' must be a list, got {type(raw).__name__}")
    if len(raw) % 3:
        raise DataError(f"{path}: {where}: 'keypoints' has {len(raw)} numbers, not a multiple of 3 (x, y, v)")
    if len(raw) != 3 * k:
        raise DataError(f"{path}: {where}: {len(raw) // 3} keypoints, but the skeleton has K={k}")
    for j, v in enumerate(raw):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise DataError(f"{path}: {where}: keypoint {j // 3} has a non-numeric value {v!r}")
    arr = np.asarray(raw, dtype=np.float64).reshape(k, 3)
    bad = ~np.isfinite(arr).all(axis=1)
    if bad.any():
        j = int(np.argmax(bad))
        raise DataError(f"{path}: {where}: keypoint {j} has a NaN/inf coordinate {arr[j].tolist()}")
    vis = arr[:, 2]
    if not np.isin(vis, (0, 1, 2)).all():
        j = int(np.argmax(~np.isin(vis, (0, 1, 2))))
        raise DataError(f"{path}: {where}: keypoint {j} visibility must be 0, 1 or 2, got {vis[j]:g}")
    return arr


def _parse_bbox(raw: Any, where: str, path: Path) -> Optional[tuple[float, float, float, float]]:
    if raw is None:
        return None
    ok = isinstance(raw, list) and len(raw) == 4 and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in raw)
    if not ok or raw[2] <= 0 or raw[3] <= 0:
        raise DataError(f"{path}: {where}: 'bbox' must be [x, y, w, h] with w, h > 0, got {raw!r:.80}")
    return tuple(float(v) for v in raw)  # type: ignore[return-value]


def read_coco_keypoints(path: str | Path, skeleton: Optional[Skeleton] = None, *,
                        out_of_image: str = "keep", require_images: bool = True) -> CocoKeypoints:
    """Read and validate a COCO keypoint file.

    ``skeleton`` defaults to the first category that lists keypoints; when given,
    every annotation must have its K keypoints. Category keypoint names that differ
    from the skeleton's (same K) only warn: names are labels, order is what counts.
    ``require_images=False`` lets annotations point at no ``images`` entry (they get
    no image; used nowhere by default).
    """
    path = Path(path)
    if out_of_image not in OUT_OF_IMAGE_MODES:
        raise ValueError(f"out_of_image must be one of {OUT_OF_IMAGE_MODES}, got {out_of_image!r}")
    data = _load_json(path)
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a JSON object at the top level, got {type(data).__name__}")
    images_raw = _need(data, "images", "the file", path, list)
    anns_raw = _need(data, "annotations", "the file", path, list)
    cats_raw = _need(data, "categories", "the file", path, list)

    images = [_parse_image(d, i, path) for i, d in enumerate(images_raw)]
    by_id: dict[int, int] = {}
    for i, im in enumerate(images):
        if im.id in by_id:
            raise DataError(f"{path}: duplicate image id {im.id}")
        by_id[im.id] = i

    cats: dict[int, Mapping] = {}
    for i, c in enumerate(cats_raw):
        cid = _need(c, "id", f"categories[{i}]", path, int)
        cats[cid] = c
    kp_cats = [c for c in cats_raw if isinstance(c, Mapping) and "keypoints" in c]
    if skeleton is None:
        if not kp_cats:
            raise DataError(f"{path}: no category lists 'keypoints' (and 'skeleton'), and no skeleton was given")
        skeleton = _category_skeleton(kp_cats[0], path)
    k = skeleton.num_keypoints
    for c in kp_cats:
        names = [str(n) for n in c["keypoints"]]
        if len(names) != k:
            raise DataError(f"{path}: category {c.get('id')} lists {len(names)} keypoint names, "
                            f"but skeleton '{skeleton.name}' has K={k}")
        if tuple(names) != skeleton.keypoint_names:
            log.warning("%s: category %s keypoint names differ from skeleton '%s' (same K=%d); "
                        "keypoints are matched by order", path, c.get("id"), skeleton.name, k)

    n = len(anns_raw)
    kps = np.zeros((n, k, 2))
    vis = np.zeros((n, k), dtype=np.int8)
    img_idx = np.full(n, -1, dtype=np.int64)
    ann_ids = np.zeros(n, dtype=np.int64)
    scores = np.ones((n, k), dtype=np.float32)
    has_scores = False
    bboxes: list[Optional[tuple[float, float, float, float]]] = []
    out = 0
    for a, d in enumerate(anns_raw):
        aid = _need(d, "id", f"annotations[{a}]", path, int)
        where = f"annotation id {aid}"
        image_id = _need(d, "image_id", where, path, int)
        cid = d.get("category_id")
        if cid is not None and cats and cid not in cats:
            raise DataError(f"{path}: {where}: category_id {cid} is not in 'categories'")
        if image_id not in by_id and require_images:
            raise DataError(f"{path}: {where}: image_id {image_id} has no entry in 'images'")
        arr = _parse_triplets(_need(d, "keypoints", where, path), k, where, path)
        kps[a], vis[a], ann_ids[a] = arr[:, :2], arr[:, 2].astype(np.int8), aid
        img_idx[a] = by_id.get(image_id, -1)
        bboxes.append(_parse_bbox(d.get("bbox"), where, path))
        ks = d.get("keypoint_scores")
        if ks is not None:
            ks_arr = np.asarray(ks, dtype=np.float64) if isinstance(ks, list) else np.zeros(0)
            if ks_arr.shape != (k,) or not np.isfinite(ks_arr).all():
                raise DataError(f"{path}: {where}: 'keypoint_scores' must be {k} finite numbers")
            scores[a], has_scores = ks_arr, True
        if img_idx[a] >= 0:
            im = images[img_idx[a]]
            x, y = kps[a, :, 0], kps[a, :, 1]
            outside = (vis[a] > 0) & ((x < -0.5) | (x > im.width - 0.5) | (y < -0.5) | (y > im.height - 0.5))
            if outside.any():
                if out_of_image == "error":
                    j = int(np.argmax(outside))
                    raise DataError(f"{path}: {where}: keypoint {j} ({x[j]:g}, {y[j]:g}) is outside "
                                    f"image id {image_id} of size {im.width}x{im.height}")
                if out_of_image == "invisible":
                    vis[a][outside] = 0
                out += int(outside.sum())
    if out:
        log.warning("%s: %d labelled keypoints lie outside their image (%s)", path, out,
                    "kept" if out_of_image == "keep" else "marked not labelled")
    return CocoKeypoints(path, skeleton, images, img_idx, kps, vis, ann_ids, bboxes,
                         scores if has_scores else None, out)


# -- writing ---------------------------------------------------------------------
def _image_dict(im: CocoImage | Mapping[str, Any], i: int) -> dict[str, Any]:
    d = im.to_dict() if isinstance(im, CocoImage) else dict(im)
    d.setdefault("id", i + 1)
    for key in ("file_name", "width", "height"):
        if key not in d:
            raise DataError(f"write_coco_keypoints: image {i} is missing '{key}'")
    return d


def write_coco_keypoints(path: str | Path, images: Sequence[CocoImage | Mapping[str, Any]],
                         keypoints_px: Any, scores: Any, skeleton: Skeleton, *,
                         visibility: Any = None, category_id: int = 1) -> None:
    """Write one annotation per image (e.g. predictions) as COCO keypoint JSON.

    ``keypoints_px`` (N, K, 2) COCO pixels; ``scores`` (N, K) per-keypoint confidence
    or None. Each annotation stores ``keypoint_scores`` (per keypoint, as mmpose
    writes) and ``score`` (their mean, as COCO results do); ``v`` is 2 unless
    ``visibility`` (N, K) says otherwise. ``bbox`` is the keypoints' extent.
    """
    kp = np.asarray(keypoints_px.detach().cpu() if hasattr(keypoints_px, "detach") else keypoints_px,
                    dtype=np.float64)
    n = len(images)
    if kp.shape != (n, skeleton.num_keypoints, 2):
        raise DataError(f"{path}: expected keypoints of shape ({n}, {skeleton.num_keypoints}, 2), "
                        f"got {tuple(kp.shape)}")
    if not np.isfinite(kp).all():
        raise DataError(f"{path}: refusing to write NaN/inf keypoints (image {int(np.argwhere(~np.isfinite(kp))[0, 0])})")
    sc = None
    if scores is not None:
        sc = np.asarray(scores.detach().cpu() if hasattr(scores, "detach") else scores, dtype=np.float64)
        if sc.shape != kp.shape[:2] or not np.isfinite(sc).all():
            raise DataError(f"{path}: scores must be finite with shape {kp.shape[:2]}, got {tuple(sc.shape)}")
    vis = np.full(kp.shape[:2], 2, dtype=np.int64) if visibility is None else np.asarray(visibility).astype(np.int64)
    anns, imgs = [], []
    for i in range(n):
        im = _image_dict(images[i], i)
        imgs.append(im)
        trip = np.concatenate([kp[i], vis[i][:, None]], axis=1)
        x0, y0 = kp[i].min(axis=0)
        x1, y1 = kp[i].max(axis=0)
        ann: dict[str, Any] = {
            "id": i + 1, "image_id": im["id"], "category_id": category_id,
            "keypoints": [float(v) if c < 2 else int(v) for row in trip for c, v in enumerate(row)],
            "num_keypoints": int((vis[i] > 0).sum()),
            "bbox": [float(x0), float(y0), float(x1 - x0), float(y1 - y0)],
            "area": float((x1 - x0) * (y1 - y0)), "iscrowd": 0,
        }
        if sc is not None:
            ann["score"] = float(sc[i].mean())
            ann["keypoint_scores"] = [float(v) for v in sc[i]]
        anns.append(ann)
    doc = {"images": imgs, "annotations": anns, "categories": [skeleton.to_coco_category(category_id)]}
    atomic_write_text(path, json.dumps(doc, allow_nan=False))
