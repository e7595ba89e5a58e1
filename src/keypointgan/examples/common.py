"""The pieces every example is built from: decode, label, box, crop, split, write.

Conventions: keypoints are COCO pixels (pixel ``i``'s centre at ``x = i``, see
:mod:`keypointgan.pose.coords`) of the frame they were read in; a crop is a
:class:`~keypointgan.data.transforms.CropBox` in the full frame's pixels, resampled
by :func:`~keypointgan.data.transforms.crop_resize`, and keypoints move with it
through :func:`to_crop_pixels` / :func:`from_crop_pixels`, so pixels and keypoints
can never disagree.

A *labeler* is any callable ``image (H, W, 3) uint8 RGB -> (K, 2) or (K, 3)`` array of
``[x, y(, score)]`` pixels of that image, or ``None`` when it finds nothing. A
labeler that tracks across frames may have a ``reset()`` method; it is called before
every sequence of frames. Tests inject fake labelers; the real ones (dlib, MediaPipe)
live in :mod:`.faces` and :mod:`.bodies`.

The :func:`build` pipeline, per video: (1) the labeler on the full frames gives a
per-frame box (the keypoints' extent, with a margin), smoothed over time; (2) frames
are cropped to those boxes; (3) for prior and test frames, the labeler runs again on
the crops (the reference keypoints) and on a shifted and scaled second crop of the
same frames: their disagreement is the measured label noise. Training frames get no
keypoints written anywhere. Output goes to a temporary folder renamed into place at
the end, so a failed run leaves nothing half-written.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shlex
import shutil
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Optional, Sequence

import numpy as np
from PIL import Image

from ..data.base import DataError
from ..data.coco import write_coco_keypoints
from ..data.transforms import CropBox, crop_resize
from ..data.video import decode_video
from ..core.io import atomic_write_text
from ..pose.coords import normalized_to_pixels, pixels_to_normalized
from ..pose.skeleton import Skeleton, save_skeleton

log = logging.getLogger("keypointgan.examples")

Labeler = Callable[[np.ndarray], Optional[np.ndarray]]


class LabelerUnavailable(DataError):
    """The default labeler of an example cannot run here (a package or model file is missing)."""


def describe_labeler(labeler: Labeler) -> str:
    return str(getattr(labeler, "description", None) or type(labeler).__name__)
FrameRef = tuple[str, int]  # (source video, frame index in it): one physical frame
PARTS = ("train", "prior", "test")


# -- decoding ----------------------------------------------------------------------
def decode_frames(path: str | Path, transform: Optional[Callable[[int, np.ndarray], Any]] = None,
                  max_frames: Optional[int] = None) -> list:
    """All frames of a video file (RGB uint8), or ``transform(index, frame)`` of each.

    Uses :func:`keypointgan.data.video.decode_video` (PyAV); a video that breaks off
    mid-stream keeps the frames decoded so far (warned).
    """
    counter = iter(range(1 << 62))
    fn = None if transform is None else (lambda im: transform(next(counter), im))
    dec = decode_video(path, fn, max_frames=max_frames)
    if dec.error is not None:
        log.warning("%s: decoding stopped after %d frames (%s); using those", path, len(dec.frames), dec.error)
    return dec.frames


def video_info(path: str | Path) -> dict:
    """Frame count, size and frame rate from the container header (without decoding)."""
    import av

    with av.open(str(path)) as c:
        s = c.streams.video[0]
        return {"frames": int(s.frames or 0), "width": s.width, "height": s.height,
                "fps": float(s.average_rate) if s.average_rate else None, "codec": s.codec_context.name}


# -- keypoint tracks ---------------------------------------------------------------
@dataclass
class Track:
    """A labeler's output over ``T`` frames: ``keypoints`` (T, K, 2) frame pixels,
    ``scores`` (T, K), ``found`` (T,). Rows with ``found`` False are zeros."""

    keypoints: np.ndarray
    scores: np.ndarray
    found: np.ndarray

    @classmethod
    def empty(cls, t: int, k: int) -> "Track":
        return cls(np.zeros((t, k, 2)), np.zeros((t, k)), np.zeros(t, bool))

    def __len__(self) -> int:
        return len(self.found)


def _check_output(out: Any, k: Optional[int], where: str) -> np.ndarray:
    arr = np.asarray(out, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] not in (2, 3) or (k is not None and arr.shape[0] != k):
        want = f"({k}, 2|3)" if k else "(K, 2|3)"
        raise DataError(f"{where}: the labeler returned shape {arr.shape}, expected {want} [x, y(, score)]")
    if not np.isfinite(arr).all():
        raise DataError(f"{where}: the labeler returned NaN/inf keypoints")
    if arr.shape[1] == 2:
        arr = np.concatenate([arr, np.ones((len(arr), 1))], axis=1)
    return arr


def reset_labeler(labeler: Labeler) -> None:
    reset = getattr(labeler, "reset", None)
    if callable(reset):
        reset()


def label_images(images: Sequence[Optional[np.ndarray]], labeler: Labeler, num_keypoints: int,
                 where: str = "labeler") -> Track:
    """The labeler over a sequence of images (``None``: nothing to label), in pixels of each image."""
    reset_labeler(labeler)
    tr = Track.empty(len(images), num_keypoints)
    for t, im in enumerate(images):
        if im is None:
            continue
        out = labeler(im)
        if out is None:
            continue
        arr = _check_output(out, num_keypoints, f"{where}, frame {t}")
        tr.keypoints[t], tr.scores[t], tr.found[t] = arr[:, :2], arr[:, 2], True
    return tr


def label_crops(crops: Sequence[Optional[np.ndarray]], boxes: Sequence[Optional[CropBox]], labeler: Labeler,
                num_keypoints: int, where: str = "labeler") -> Track:
    """The labeler on crops of frames; keypoints are mapped back to the full frames' pixels."""
    tr = label_images(crops, labeler, num_keypoints, where)
    for t, (crop, box) in enumerate(zip(crops, boxes)):
        if tr.found[t]:
            tr.keypoints[t] = from_crop_pixels(tr.keypoints[t], box, crop.shape[1])
    return tr


# -- boxes -------------------------------------------------------------------------
@dataclass(frozen=True)
class BoxRule:
    """How a square crop follows an object: side ``max(w, h) * (1 + margin)`` of the
    keypoints' extent (those with score >= ``min_score``), centre moved by ``shift``
    (fractions of the side; e.g. up for a face's forehead), smoothed over time with a
    Gaussian of ``sigma`` frames; gaps up to ``max_gap`` frames are interpolated, a
    centre jump of more than ``max_jump`` sides starts a new segment."""

    margin: float = 0.25
    shift: tuple[float, float] = (0.0, 0.0)
    min_score: float = 0.0
    sigma: float = 2.0
    max_gap: int = 8
    max_jump: float = 0.5
    min_side: float = 8.0


def raw_boxes(track: Track, rule: BoxRule) -> np.ndarray:
    """Per-frame ``(cx, cy, side)`` from the track (NaN rows where there is none)."""
    out = np.full((len(track), 3), np.nan)
    for t in np.flatnonzero(track.found):
        ok = track.scores[t] >= rule.min_score
        if ok.sum() < 2:
            continue
        pts = track.keypoints[t][ok]
        lo, hi = pts.min(axis=0), pts.max(axis=0)
        side = max(float((hi - lo).max()) * (1.0 + rule.margin), rule.min_side)
        c = (lo + hi) / 2.0 + np.asarray(rule.shift) * side
        out[t] = (c[0], c[1], side)
    return out


def _segments(raw: np.ndarray, max_gap: int, max_jump: float) -> list[tuple[int, int]]:
    """Inclusive (first, last) valid frames of runs with no gap > max_gap and no jump > max_jump."""
    valid = np.flatnonzero(np.isfinite(raw[:, 0]))
    segs: list[tuple[int, int]] = []
    for a, b in zip(valid, list(valid[1:]) + [None]):
        if not segs or segs[-1][1] != a:
            segs.append((a, a))
        if b is None:
            break
        jump = np.hypot(*(raw[b, :2] - raw[a, :2])) / max(raw[a, 2], 1e-9)
        if b - a - 1 <= max_gap and jump <= max_jump:
            segs[-1] = (segs[-1][0], b)
    return segs


def _gaussian_smooth(x: np.ndarray, sigma: float) -> np.ndarray:
    """Centred Gaussian moving average of (T, C), renormalised at the ends (no padding bias)."""
    if sigma <= 0 or len(x) < 2:
        return x.copy()
    r = int(math.ceil(3 * sigma))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    out = np.empty_like(x)
    n = len(x)
    for t in range(n):
        lo, hi = max(0, t - r), min(n, t + r + 1)
        w = k[lo - t + r: hi - t + r]
        out[t] = (w[:, None] * x[lo:hi]).sum(axis=0) / w.sum()
    return out


def smooth_boxes(raw: np.ndarray, rule: BoxRule) -> tuple[np.ndarray, np.ndarray]:
    """Smooth per-frame ``(cx, cy, side)`` over time, per segment; NaN outside segments.

    Inside a segment, missing frames (gaps up to ``rule.max_gap``) are linearly
    interpolated first; the side is smoothed in log space (scale changes are relative).
    Returns the boxes and each frame's segment number (-1: none). A new segment starts
    after a longer gap or a jump of the box (e.g. the labeler switched to another person).
    """
    out = np.full_like(raw, np.nan)
    seg_id = np.full(len(raw), -1)
    for n, (a, b) in enumerate(_segments(raw, rule.max_gap, rule.max_jump)):
        t = np.arange(a, b + 1)
        seg = raw[a:b + 1].copy()
        seg[:, 2] = np.log(seg[:, 2])
        ok = np.isfinite(seg[:, 0])
        for c in range(3):
            seg[:, c] = np.interp(t, t[ok], seg[ok, c])
        seg = _gaussian_smooth(seg, rule.sigma)
        seg[:, 2] = np.exp(seg[:, 2])
        out[a:b + 1] = seg
        seg_id[a:b + 1] = n
    return out, seg_id


def square_box(cx: float, cy: float, side: float, width: int, height: int) -> CropBox:
    """A square of ``side`` centred at (cx, cy), shifted inside the image where it fits
    (else it stays centred and the part outside is padded black by ``crop_resize``)."""
    x0, y0 = cx - side / 2.0, cy - side / 2.0
    if side <= width:
        x0 = min(max(x0, -0.5), width - 0.5 - side)
    if side <= height:
        y0 = min(max(y0, -0.5), height - 0.5 - side)
    return CropBox(float(x0), float(y0), float(side))


def boxes_from_track(track: Track, rule: BoxRule, width: int, height: int
                     ) -> tuple[list[Optional[CropBox]], np.ndarray]:
    """Smoothed square crop boxes for each frame of a track (``None``: no box, frame
    dropped) and each frame's segment number (see :func:`smooth_boxes`)."""
    sm, seg = smooth_boxes(raw_boxes(track, rule), rule)
    return [None if not np.isfinite(r[0]) else square_box(r[0], r[1], r[2], width, height) for r in sm], seg


def keypoint_extents(track: Track, min_score: float = 0.0, pad: float = 0.15,
                     head: float = 0.15) -> list[Optional[tuple[float, float, float, float]]]:
    """Per frame, the rectangle ``(x0, y0, x1, y1)`` of the keypoints (score >= ``min_score``)
    grown by ``pad`` of its larger side on every side and ``head`` more at the top
    (the region to black out to hide this object), or None."""
    out: list = []
    for t in range(len(track)):
        ok = track.scores[t] >= min_score
        if not track.found[t] or ok.sum() < 2:
            out.append(None)
            continue
        lo, hi = track.keypoints[t][ok].min(axis=0), track.keypoints[t][ok].max(axis=0)
        m = float((hi - lo).max())
        out.append((lo[0] - pad * m, lo[1] - (pad + head) * m, hi[0] + pad * m, hi[1] + pad * m))
    return out


def perturb_box(box: CropBox, dx: float, dy: float, scale: float) -> CropBox:
    """``box`` with its centre moved by (dx, dy) sides and its side times ``scale``."""
    s = box.size * scale
    cx, cy = box.x0 + box.size / 2.0 + dx * box.size, box.y0 + box.size / 2.0 + dy * box.size
    return CropBox(cx - s / 2.0, cy - s / 2.0, s)


# -- crops and keypoints -----------------------------------------------------------
def to_crop_pixels(xy: np.ndarray, box: CropBox, size: int) -> np.ndarray:
    """Frame pixels -> pixels of ``box`` resampled to ``size x size``."""
    return normalized_to_pixels(box.to_normalized(np.asarray(xy, dtype=np.float64)), size)


def from_crop_pixels(xy: np.ndarray, box: CropBox, size: int) -> np.ndarray:
    """Pixels of ``box`` resampled to ``size x size`` -> frame pixels."""
    return box.to_pixels(pixels_to_normalized(np.asarray(xy, dtype=np.float64), size))


def crop(frame: np.ndarray, box: Optional[CropBox], size: int) -> Optional[np.ndarray]:
    return None if box is None else crop_resize(frame, box, size)


def camera_background(frames: Sequence[np.ndarray], max_frames: int = 64, rows: int = 64) -> np.ndarray:
    """The per-pixel median ``(H, W, 3)`` uint8 of up to ``max_frames`` evenly spread frames
    of a fixed camera: its background wherever people move off a pixel in most frames.
    Computed in bands of ``rows`` rows (memory: a band of every frame at a time)."""
    n = len(frames)
    if n == 0:
        raise DataError("camera_background: no frames")
    idx = sorted({int(i * n / min(n, max_frames)) for i in range(min(n, max_frames))})
    h = frames[0].shape[0]
    out = np.empty_like(frames[0])
    for r in range(0, h, rows):
        band = np.stack([frames[i][r:r + rows] for i in idx])
        out[r:r + rows] = np.median(band, axis=0).round().astype(np.uint8)
    return out


def mask_rect(frame: np.ndarray, rect: Optional[tuple[float, float, float, float]]) -> np.ndarray:
    """A copy of ``frame`` with the pixels whose centres lie in ``(x0, y0, x1, y1)`` black
    (to hide one person from the labeler)."""
    out = frame.copy()
    if rect is not None:
        h, w = frame.shape[:2]
        x0, y0 = max(0, int(math.ceil(rect[0]))), max(0, int(math.ceil(rect[1])))
        x1, y1 = min(w, int(math.floor(rect[2])) + 1), min(h, int(math.floor(rect[3])) + 1)
        out[y0:y1, x0:x1] = 0
    return out


# -- splits ------------------------------------------------------------------------
def time_split(num_frames: int, fractions: Mapping[str, float], gap: int) -> dict[str, range]:
    """Consecutive parts of one video by fractions of its length, ``gap`` frames left out
    before each part boundary (so neighbouring, near-identical frames do not leak)."""
    if num_frames <= 0:
        raise DataError("time_split: the video has no frames")
    total = sum(fractions.values())
    names = list(fractions)
    cuts = [0]
    acc = 0.0
    for n in names:
        acc += fractions[n] / total
        cuts.append(int(round(acc * num_frames)))
    parts = {}
    for i, n in enumerate(names):
        end = cuts[i + 1] - (gap if i + 1 < len(names) else 0)
        if end <= cuts[i]:
            raise DataError(f"time_split: part '{n}' is empty ({num_frames} frames, gap {gap})")
        parts[n] = range(cuts[i], end)
    return parts


def check_disjoint(parts: Mapping[str, Iterable[FrameRef]], gap: int = 0) -> None:
    """Raise :class:`DataError` unless the parts are disjoint.

    ``parts`` maps a part name (train / prior / test) to the physical frames it uses,
    ``(source video, frame index)``. A frame in two parts is an error; so are frames
    of two different parts of one source video with fewer than ``gap`` frames between
    them (:func:`time_split` leaves ``gap`` frames out, so its parts pass with the
    same ``gap``).
    """
    owner: dict[FrameRef, str] = {}
    by_src: dict[str, list[tuple[int, str]]] = {}
    for part, refs in parts.items():
        for src, fi in refs:
            ref = (str(src), int(fi))
            other = owner.setdefault(ref, part)
            if other != part:
                raise DataError(f"split is not disjoint: frame {ref[1]} of '{ref[0]}' is in both "
                                f"'{other}' and '{part}'")
            by_src.setdefault(ref[0], []).append((ref[1], part))
    if gap > 0:
        for src, lst in by_src.items():
            lst.sort()
            for (f0, p0), (f1, p1) in zip(lst, lst[1:]):
                if p0 != p1 and f1 - f0 - 1 < gap:
                    raise DataError(f"split leaks: frames {f0} ('{p0}') and {f1} ('{p1}') of '{src}' have "
                                    f"{f1 - f0 - 1} frames between them, fewer than the gap of {gap}")


# -- label noise -------------------------------------------------------------------
def frame_disagreement(a: Track, b: Track, boxes: Sequence[Optional[CropBox]], min_score: float = 0.0
                       ) -> list[Optional[np.ndarray]]:
    """Per frame, the distance of each keypoint (scored >= ``min_score`` in both) between
    two tracks of the same frames, in % of the frame's box side; None where not comparable."""
    out: list[Optional[np.ndarray]] = []
    for t in range(len(a)):
        if not (a.found[t] and b.found[t]) or boxes[t] is None:
            out.append(None)
            continue
        d = np.linalg.norm(a.keypoints[t] - b.keypoints[t], axis=1) / boxes[t].size * 100.0
        ok = (a.scores[t] >= min_score) & (b.scores[t] >= min_score)
        out.append(np.where(ok, d, np.nan))
    return out


def summarise_disagreement(per_frame: Sequence[Optional[np.ndarray]], names: Optional[Sequence[str]] = None) -> dict:
    """Mean / median / 90th percentile (and per keypoint) of :func:`frame_disagreement` values."""
    rows = [d for d in per_frame if d is not None]
    flat = np.concatenate([d[np.isfinite(d)] for d in rows]) if rows else np.zeros(0)
    out: dict[str, Any] = {"frames": len(rows), "keypoints": int(flat.size)}
    if flat.size:
        out.update(mean_percent=round(float(flat.mean()), 3), median_percent=round(float(np.median(flat)), 3),
                   p90_percent=round(float(np.percentile(flat, 90)), 3))
        if names is not None:
            m = np.stack(rows)
            with np.errstate(invalid="ignore"):
                per_k = [float(np.nanmean(m[:, k])) if np.isfinite(m[:, k]).any() else None
                         for k in range(m.shape[1])]
            out["per_keypoint_percent"] = {n: round(v, 2) for n, v in zip(names, per_k) if v is not None}
    return out


def disagreement(a: Track, b: Track, boxes: Sequence[Optional[CropBox]], min_score: float = 0.0,
                 names: Optional[Sequence[str]] = None) -> dict:
    """Mean distance between two tracks of the same frames, in % of each frame's box side."""
    return summarise_disagreement(frame_disagreement(a, b, boxes, min_score), names)


def _frame_mean(d: Optional[np.ndarray]) -> Optional[float]:
    if d is None or not np.isfinite(d).any():
        return None
    return float(np.nanmean(d))


def pool_disagreements(items: Sequence[dict]) -> dict:
    """Keypoint-weighted mean of several :func:`disagreement` results."""
    n = sum(i.get("keypoints", 0) for i in items)
    if not n:
        return {"frames": 0, "keypoints": 0}
    mean = sum(i["mean_percent"] * i["keypoints"] for i in items if i.get("keypoints")) / n
    return {"frames": sum(i["frames"] for i in items), "keypoints": n, "mean_percent": round(mean, 3)}


# -- writing -----------------------------------------------------------------------
def save_png(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(image, dtype=np.uint8)).save(path, compress_level=6)


def frame_name(index: int) -> str:
    return f"{index:06d}.png"


def write_frames(folder: Path, frames: Mapping[int, np.ndarray]) -> list[str]:
    """``folder/000012.png`` ... one PNG per frame index; returns the file names."""
    names = []
    for i in sorted(frames):
        save_png(folder / frame_name(i), frames[i])
        names.append(frame_name(i))
    return names


@dataclass
class Labelled:
    """Labelled images for one COCO file: image entries, crop pixels, visibility, scores."""

    images: list[dict] = field(default_factory=list)
    keypoints: list[np.ndarray] = field(default_factory=list)
    visibility: list[np.ndarray] = field(default_factory=list)
    scores: list[np.ndarray] = field(default_factory=list)

    def add(self, image: dict, keypoints: np.ndarray, visibility: np.ndarray, scores: np.ndarray) -> None:
        self.images.append(dict(image, id=len(self.images) + 1))
        self.keypoints.append(np.asarray(keypoints, np.float64))
        self.visibility.append(np.asarray(visibility, np.int64))
        self.scores.append(np.asarray(scores, np.float64))

    def __len__(self) -> int:
        return len(self.images)

    def write(self, path: Path, skeleton: Skeleton) -> None:
        """COCO keypoint JSON through :func:`keypointgan.data.coco.write_coco_keypoints`."""
        k = skeleton.num_keypoints
        kp = np.stack(self.keypoints) if self.images else np.zeros((0, k, 2))
        vis = np.stack(self.visibility) if self.images else np.zeros((0, k), np.int64)
        sc = np.stack(self.scores) if self.images else np.zeros((0, k))
        write_coco_keypoints(path, self.images, kp, sc, skeleton, visibility=vis)


@contextmanager
def staged_dir(out: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """Write into a temporary sibling of ``out``; rename it to ``out`` only on success.

    Refuses a non-empty ``out`` unless ``overwrite`` (then the old folder is replaced
    only once the new one is complete).
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise DataError(f"{out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise DataError(f"{out}: folder exists and is not empty; give another folder or --overwrite")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.partial"
    tmp.mkdir()  # (not mkdtemp: the folder keeps the usual permissions once renamed)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if out.is_dir():
        if any(out.iterdir()):
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            os.replace(out, old)
        else:
            out.rmdir()
    os.replace(tmp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def contact_sheet(images: Sequence[np.ndarray], keypoints: Sequence[Optional[np.ndarray]],
                  visible: Sequence[Optional[np.ndarray]], skeleton: Skeleton, ncols: int = 8,
                  scale: int = 2) -> np.ndarray:
    """Crops with their keypoints drawn (right red, left blue), tiled into one image."""
    from ..viz import draw_skeleton, make_grid, side_colors

    colors = side_colors(skeleton.keypoint_names, skeleton.edges)
    tiles = []
    for im, kp, vis in zip(images, keypoints, visible):
        if kp is None:
            big = np.kron(im, np.ones((scale, scale, 1), np.uint8))
            tiles.append(big)
        else:
            tiles.append(draw_skeleton(im, kp, skeleton.edges, color=colors, scale=scale, visible=vis,
                                       width=1, radius=1.2))
    return make_grid(tiles, ncols)


# -- the pipeline ------------------------------------------------------------------
@dataclass
class VideoJob:
    """One output video: ``frames`` (a callable giving the decoded frames, called when the
    job runs, so one video at a time is in memory) of source ``source``, the frame
    ``indices`` it uses (default: all), and the ``part`` they go to. ``hide_from`` names
    an earlier job on the same frames whose person is blacked out before labelling,
    so that the labeler finds the next person (multi-person videos)."""

    name: str
    source: str
    part: str
    frames: Callable[[], Sequence[np.ndarray]]
    indices: Optional[Sequence[int]] = None
    category: Optional[str] = None
    hide_from: Optional[str] = None  # an earlier job (same part) on the same frames: black out its person
    fixed_camera: bool = False  # train: also write each crop's background (train_backgrounds/), cut from
    #                             the per-pixel median of the full frames, for data.background_swap


@dataclass
class BuildSpec:
    """What :func:`build` needs to know about an example."""

    name: str
    skeleton: Skeleton
    skeleton_ref: str  # what to put in the train command (a built-in name)
    rule: BoxRule
    label_size: int  # crops are labelled at this resolution
    min_score: float = 0.0  # a keypoint scored below this is written as not labelled (v = 0)
    noise_perturbation: tuple[float, float, float] = (0.05, 0.05, 1.1)  # dx, dy (sides), scale
    train_args: tuple[str, ...] = ()  # extra KEY=VALUE for the train command
    min_train_frames: int = 10  # shorter training segments are dropped (too short for frame pairs)
    noise_note: str = ""  # how the second opinion was obtained (for example.json)
    max_disagreement: Optional[float] = None  # % of the crop: frames whose two opinions differ more (or
    #                                            that have no second opinion) get no label


@dataclass
class VideoResult:
    job: VideoJob
    indices: list[int]
    boxes: list[Optional[CropBox]]  # smoothed, per used frame (None: dropped)
    segments: np.ndarray  # per used frame: its segment (-1: none); train videos are written per segment
    extents: list  # per used frame: the region of this object, to hide it from another job
    cropped: int = 0
    outputs: list[str] = field(default_factory=list)  # the video folders written
    labelled: int = 0
    detect_found: int = 0
    noise: dict = field(default_factory=dict)  # over every frame with two opinions
    noise_kept: dict = field(default_factory=dict)  # over the frames whose label was kept
    rejected: int = 0  # frames not labelled: the two opinions disagreed too much, or there was no second one
    backgrounds: int = 0  # train folders written with per-frame backgrounds (fixed camera)

    @property
    def frames_total(self) -> int:
        return len(self.indices)


@dataclass
class SheetTile:
    part: str
    video: str
    image: np.ndarray
    keypoints: Optional[np.ndarray] = None
    visible: Optional[np.ndarray] = None


def process_video(job: VideoJob, spec: BuildSpec, labeler: Labeler, image_size: int, out: Path,
                  prior: Labelled, test: Labelled, sheet: list[SheetTile],
                  done: Optional[Mapping[str, VideoResult]] = None,
                  noise_labeler: Optional[Labeler] = None) -> VideoResult:
    """Boxes, crops and (prior/test) labels of one video, written under ``out``."""
    frames = job.frames()
    if not len(frames):
        raise DataError(f"{job.name}: the video has no frames")
    idx = list(job.indices) if job.indices is not None else list(range(len(frames)))
    if idx and max(idx) >= len(frames):
        raise DataError(f"{job.name}: frame {max(idx)} asked for, the video has {len(frames)}")
    h, w = frames[0].shape[:2]
    hide: dict[int, tuple] = {}
    if job.hide_from is not None:
        other = (done or {}).get(f"{job.part}/{job.hide_from}")
        if other is None:
            raise DataError(f"{job.name}: hide_from='{job.hide_from}' is not an earlier '{job.part}' video")
        hide = {fi: r for fi, r in zip(other.indices, other.extents) if r is not None}
    view = [mask_rect(frames[i], hide[i]) if i in hide else frames[i] for i in idx]  # what the labeler sees
    k = spec.skeleton.num_keypoints
    det = label_images(view, labeler, k, f"{job.name} (detection on full frames)")
    boxes, segments = boxes_from_track(det, spec.rule, w, h)
    res = VideoResult(job, idx, boxes, segments, keypoint_extents(det, spec.rule.min_score),
                      detect_found=int(det.found.sum()))
    crops = {fi: crop(frames[fi], b, image_size) for fi, b in zip(idx, boxes) if b is not None}  # unmasked
    camera = camera_background(frames) if job.fixed_camera and job.part == "train" else None
    del frames
    res.cropped = len(crops)
    if job.part == "train":
        # one folder per segment: frame pairs must come from one track of one object
        segs = sorted({int(q) for q in segments if q >= 0})
        box = dict(zip(idx, boxes))
        for n, q in enumerate(segs):
            part = {fi: crops[fi] for fi, sq in zip(idx, segments) if sq == q and fi in crops}
            if len(part) < spec.min_train_frames:
                res.cropped -= len(part)
                continue
            name = job.name if len(segs) == 1 else f"{job.name}_s{n}"
            write_frames(out / "train" / name, part)
            res.outputs.append(name)
            if camera is not None:  # each crop's background, cut from the camera's like the crop
                write_frames(out / "train_backgrounds" / name, {fi: crop(camera, box[fi], image_size) for fi in part})
                res.backgrounds += 1
            keys = list(part)
            sheet.extend(SheetTile("train", name, part[fi]) for fi in keys[:: max(1, len(keys) // 2)][:2])
        return res
    # reference labels on the crops, and a second opinion on shifted / scaled crops
    dx, dy, sc = spec.noise_perturbation
    alt_boxes = [None if b is None else perturb_box(b, dx, dy, sc) for b in boxes]
    ref = label_crops([crop(f, b, spec.label_size) for f, b in zip(view, boxes)], boxes, labeler, k,
                      f"{job.name} (labels on crops)")
    alt = label_crops([crop(f, b, spec.label_size) for f, b in zip(view, alt_boxes)], alt_boxes,
                      noise_labeler or labeler, k, f"{job.name} (labels on shifted crops)")
    del view
    per_frame = frame_disagreement(ref, alt, boxes, spec.min_score)
    res.noise = summarise_disagreement(per_frame, spec.skeleton.keypoint_names)
    if job.part == "test":
        write_frames(out / "test" / job.name, crops)
        res.outputs.append(job.name)
    shown, kept = [], []
    for t, fi in enumerate(idx):
        b = boxes[t]
        if b is None or not ref.found[t]:
            continue
        noise = _frame_mean(per_frame[t])
        if spec.max_disagreement is not None and (noise is None or noise > spec.max_disagreement):
            res.rejected += 1  # inconsistent, or unverified (no second opinion)
            continue
        kp = to_crop_pixels(ref.keypoints[t], b, image_size)
        vis = np.where(ref.scores[t] >= spec.min_score, 2, 0)
        if (vis > 0).sum() < 2:
            continue
        image = {"file_name": f"{job.name}/{frame_name(fi)}" if job.part == "test" else "",
                 "width": image_size, "height": image_size, "video": job.name, "frame_index": int(fi),
                 "source": job.source, "crop_box": [round(v, 3) for v in b.as_list()],
                 "label_noise_percent": None if noise is None else round(noise, 3)}
        if job.category:
            image["category"] = job.category
        (test if job.part == "test" else prior).add(image, kp, vis, ref.scores[t])
        res.labelled += 1
        kept.append(per_frame[t])
        shown.append(SheetTile(job.part, job.name, crops[fi], kp, vis > 0))
    res.noise_kept = summarise_disagreement(kept)
    sheet.extend(shown[:: max(1, len(shown) // 3)][:3])
    return res


def frame_refs(results: Sequence[VideoResult], part: str) -> list[FrameRef]:
    """The physical frames (source, index) a part uses."""
    out = []
    for r in results:
        if r.job.part != part:
            continue
        out.extend((r.job.source, fi) for fi, b in zip(r.indices, r.boxes) if b is not None)
    return out


def train_command(out: Path, spec: BuildSpec, run: str) -> str:
    args = ["keypointgan", "train", "--config", "cpu", "--out", run, "data.source=folder",
            f"data.root={out / 'train'}", f"data.prior={out / 'prior.json'}", f"data.test_root={out / 'test'}",
            f"data.test_labels={out / 'test' / 'test.json'}", f"skeleton={spec.skeleton_ref}", *spec.train_args]
    return " ".join(shlex.quote(a) for a in args)  # e.g. data.frame_gap=[20,99] is a glob to zsh


def build(out_dir: str | Path, spec: BuildSpec, jobs: Sequence[VideoJob], labeler: Labeler, *,
          image_size: int, provenance: dict, split: dict, gap: int = 0, overwrite: bool = False,
          progress: Optional[Callable[[str], None]] = None, noise_labeler: Optional[Labeler] = None) -> dict:
    """Run every job and write the example to ``out_dir`` (atomically). Returns example.json.

    ``noise_labeler`` gives the second opinion of the label-noise measurement (default:
    ``labeler`` itself, on the shifted crops)."""
    out_final = Path(out_dir).resolve()
    t0 = time.monotonic()
    say = progress or (lambda msg: log.info("%s", msg))
    with staged_dir(out_final, overwrite) as out:
        prior, test, sheet = Labelled(), Labelled(), []
        results: list[VideoResult] = []
        done: dict[str, VideoResult] = {}
        for job in jobs:
            if job.part not in PARTS:
                raise DataError(f"{job.name}: unknown part '{job.part}' (one of {PARTS})")
            t1 = time.monotonic()
            key = f"{job.part}/{job.name}"
            if key in done:
                raise DataError(f"{spec.name}: two '{job.part}' videos are named '{job.name}'")
            r = process_video(job, spec, labeler, image_size, out, prior, test, sheet, done, noise_labeler)
            results.append(r)
            done[key] = r
            say(f"{spec.name}: {job.name} ({job.part}): {r.cropped}/{r.frames_total} frames cropped, "
                f"{r.labelled} labelled"
                + (f" ({r.rejected} rejected: inconsistent or unverified)" if r.rejected else "")
                + f", {time.monotonic() - t1:.1f} s")
        check_disjoint({p: frame_refs(results, p) for p in PARTS}, gap=gap)
        if not any(r.cropped for r in results if r.job.part == "train"):
            raise DataError(f"{spec.name}: no training frame could be cropped (the labeler found nothing)")
        if not len(prior):
            raise DataError(f"{spec.name}: no prior pose (the labeler found nothing on the prior frames)")
        if not len(test):
            raise DataError(f"{spec.name}: no labelled test frame (the labeler found nothing on the test frames)")
        prior.write(out / "prior.json", spec.skeleton)
        test.write(out / "test" / "test.json", spec.skeleton)
        save_skeleton(spec.skeleton, out / "skeleton.yaml")
        caps = {"train": 8, "test": 8, "prior": 16}  # rows of 8: train, test, then prior
        tiles = [t for part in ("train", "test", "prior") for t in [u for u in sheet if u.part == part][:caps[part]]]
        if tiles:
            save_png(out / "preview.png", contact_sheet([t.image for t in tiles], [t.keypoints for t in tiles],
                                                        [t.visible for t in tiles], spec.skeleton, ncols=8))
        noise = {f"{r.job.part}/{r.job.name}": dict(r.noise, rejected=r.rejected) for r in results if r.noise}
        kept = [r.noise_kept for r in results if r.noise_kept]
        run = f"runs/examples-{spec.name}"
        summary = {
            "example": spec.name,
            "image_size": image_size,
            "skeleton": spec.skeleton_ref,
            "counts": {
                "train_videos": sum(len(r.outputs) for r in results if r.job.part == "train"),
                "train_frames": sum(r.cropped for r in results if r.job.part == "train"),
                "train_videos_with_backgrounds": sum(r.backgrounds for r in results),
                "prior_poses": len(prior),
                "test_videos": sum(1 for r in results if r.job.part == "test" and r.cropped),
                "test_images": sum(r.cropped for r in results if r.job.part == "test"),
                "test_labelled": len(test),
            },
            "videos": [{"name": r.job.name, "source": r.job.source, "part": r.job.part,
                        "frames": r.frames_total, "detected_full_frame": r.detect_found,
                        "cropped": r.cropped, "labelled": r.labelled, "written_as": r.outputs} for r in results],
            "split": split,
            "label_noise": {
                "what": (f"the labeler run twice on each labelled frame: on its crop and on a crop shifted by "
                         f"({spec.noise_perturbation[0]:g}, {spec.noise_perturbation[1]:g}) sides and scaled by "
                         f"{spec.noise_perturbation[2]:g}; mean keypoint distance in % of the crop side"
                         + (f"; {spec.noise_note}" if spec.noise_note else "")
                         + (f". Frames whose mean disagreement exceeds {spec.max_disagreement:g} %, or without a "
                            f"second opinion, get no label ('kept': the frames labelled)"
                            if spec.max_disagreement is not None else "")),
                "max_disagreement_percent": spec.max_disagreement,
                "all": pool_disagreements(list(noise.values())),
                "test": pool_disagreements([r.noise for r in results if r.job.part == "test" and r.noise]),
                "prior": pool_disagreements([r.noise for r in results if r.job.part == "prior" and r.noise]),
                "kept": pool_disagreements(kept),
                "kept_test": pool_disagreements([r.noise_kept for r in results
                                                 if r.job.part == "test" and r.noise_kept]),
                "rejected_frames": sum(r.rejected for r in results),
                "per_video": noise,
            },
            "provenance": provenance,
            "commands": {
                "train": train_command(out_final, spec, run),
                "evaluate": f"keypointgan evaluate {shlex.quote(run)}",
                **({"train_background_swap": train_command(out_final, spec, run + "-bgswap") + " data.background_swap=0.5 "
                    + shlex.quote(f"data.background_root={out_final / 'train_backgrounds'}")}
                   if any(r.backgrounds for r in results) else {}),
            },
            "seconds": round(time.monotonic() - t0, 1),
        }
        atomic_write_text(out / "example.json", json.dumps(summary, indent=1))
        atomic_write_text(out / "README.md", readme(summary))
    return summary


def readme(s: dict) -> str:
    c = s["counts"]
    n = s["label_noise"]
    lines = [
        f"# keypointgan example '{s['example']}'",
        "",
        f"Written by `keypointgan examples prepare {s['example']}` ({s['image_size']} px square crops).",
        "",
        "```",
        "train/<video>/NNNNNN.png   training frames (no labels)",
        *(["train_backgrounds/<video>/NNNNNN.png   each training crop's background (fixed cameras: "
           "per-pixel median of the full frames, cropped like the frame; data.background_root)"]
          if c.get("train_videos_with_backgrounds") else []),
        "prior.json                 prior poses (COCO keypoints, crop pixels), from frames disjoint from train/test",
        "test/<video>/NNNNNN.png    test frames; test/test.json: their reference keypoints",
        "skeleton.yaml              the skeleton (also built in: " + s["skeleton"] + ")",
        "preview.png                train crops, then test and prior crops with their keypoints",
        "example.json               all of this, machine-readable",
        "```",
        "",
        f"Counts: {c['train_videos']} training videos, {c['train_frames']} training frames; {c['prior_poses']} "
        f"prior poses; {c['test_labelled']} labelled test images (of {c['test_images']} test frames).",
        "",
        "Train and evaluate:",
        "",
        "```bash",
        s["commands"]["train"],
        s["commands"]["evaluate"],
        "```",
        "",
        *(["Beyond the paper: Phi also shown each training frame's figure in front of another video's "
           "background (data.background_swap, docs/results.md):", "", "```bash",
           s["commands"]["train_background_swap"], "```", ""] if "train_background_swap" in s["commands"] else []),
        "Split:",
        "",
        *[f"- {k}: {v}" for k, v in s["split"].items()],
        "",
        f"The reference keypoints are another model's output ({s['provenance'].get('labeler', '?')}), "
        "not human annotation.",
        "",
        f"Label noise ({n['what']}): {n['all'].get('mean_percent', 'n/a')} % over all frames, "
        f"{n['kept'].get('mean_percent', 'n/a')} % over the labels kept, {n['kept_test'].get('mean_percent', 'n/a')} % "
        f"on the test labels; {n['rejected_frames']} frames got no label for it.",
        "",
        "Sources:",
        "",
    ]
    for f in s["provenance"].get("videos", []):
        lines.append(f"- `{f['member']}` from {f['package']} {f['version']} ({f['origin']}, "
                     f"sha256 {f['sha256'][:16]}...)")
    return "\n".join(lines) + "\n"
