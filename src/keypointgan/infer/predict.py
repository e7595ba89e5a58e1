"""Detect keypoints in images, folders of images and video files: COCO JSON + overlays.

Every image (or video frame) is centre-cropped to the square of its shorter side and
resized to the model's resolution, exactly as test images are in evaluation; the
keypoints eta reads in that crop's normalised frame are mapped back to the ORIGINAL
image's pixels (COCO convention, pixel ``i``'s centre at ``x = i``) through the crop
box. Per-keypoint confidence is the heatmap mass near the soft-argmax location
(:func:`keypointgan.pose.softargmax.keypoint_confidence`). When the checkpoint holds
the frozen pre-trained eta, left/right labels are oriented with it as evaluation does
(appendix F.2).

Videos are decoded frame by frame (never held in memory whole); batches never mix
frames of two videos, so an annotated video can be written as it is decoded.

Overlays are drawn and written (PNGs, video frames) by one background thread, in
submission order, so decoding and detecting the next batch overlap with drawing the
last one; its queue is bounded, and its first error is raised by ``predict``.
"""

from __future__ import annotations

import logging
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence

import av
import numpy as np
import torch

from ..data.base import DataError
from ..data.coco import write_coco_keypoints
from ..data.transforms import CropBox, center_box, crop_resize, to_tensor_batch
from ..data.video import IMAGE_EXTS, VIDEO_EXTS, is_image, is_video_file, natural_key, read_image
from ..errors import UsageError
from ..pose.softargmax import keypoint_confidence
from ..core import checkpoint as ckpt
from ..viz import draw_skeleton, side_colors
from .loading import TrainedModel, load_trained

log = logging.getLogger("keypointgan.infer")

PathLike = str | Path
_AV_ERRORS = (av.FFmpegError, OSError, ValueError, EOFError, RuntimeError)
MIN_OVERLAY_SIZE = 256  # overlays of smaller images are enlarged (nearest) so lines stay readable
OVERLAY_QUEUE: Optional[int] = None  # overlays queued for the writer thread at most; None: batch_size, 0: inline


# -- loading -------------------------------------------------------------------------
def resolve_checkpoint(path: PathLike) -> Path:
    """A run folder (``RUN/checkpoints/latest``) or a checkpoint folder -> what ``load_checkpoint`` reads."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p}: checkpoint or run folder not found")
    return p  # run folders are resolved by ckpt.latest_checkpoint


def load_model(checkpoint: PathLike, device: str = "auto", precision: str = "auto",
               channels_last: Optional[bool] = None, weights: str = "auto") -> TrainedModel:
    """:func:`load_trained` that also accepts a run folder (``RUN`` as written by ``train --out RUN``)."""
    return load_trained(resolve_checkpoint(checkpoint), device=device, precision=precision,
                        channels_last=channels_last, weights_kind=weights)


# -- model calls -------------------------------------------------------------------------
def prepare(image: np.ndarray, size: int) -> tuple[np.ndarray, CropBox]:
    """The centred square of the shorter side resized to ``size`` (uint8), and its box."""
    h, w = image.shape[:2]
    box = center_box(w, h)
    return crop_resize(image, box, size), box


@torch.no_grad()
def detect(tm: TrainedModel, crops: Sequence[np.ndarray] | torch.Tensor,
           orient: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Keypoints (B,K,2) in the crops' normalised frame and confidence (B,K), float32 on the CPU.

    ``crops`` are uint8 (S,S,3) images at the model resolution or a (B,3,S,S) tensor in
    [-1, 1]. With ``orient`` and a pre-trained eta in the checkpoint, each pose's
    left/right labels are swapped where that makes it closer to what the frozen eta
    reads from the rendered skeleton (as the evaluation does).
    """
    from ..eval.metrics import orientation_correct

    model, rt = tm.model, tm.runtime
    x = crops if isinstance(crops, torch.Tensor) else to_tensor_batch(list(crops))
    x = rt.tensor(x)
    with rt.autocast():
        det = model.detect(x)
    kp = det.keypoints.float()
    conf = keypoint_confidence(det.heatmaps, model.eta.softargmax, model.eta.temperature).float()
    if orient and tm.eta_pretrained is not None:
        with rt.autocast():
            ref = tm.eta_pretrained(rt.tensor(model.render(kp))).keypoints.float()
        perm = tm.skeleton.flip_permutation()
        kp, swapped = orientation_correct(kp, ref, perm)
        conf = torch.where(swapped.view(-1, 1), conf[:, perm], conf)
    return kp.cpu(), conf.clamp(0.0, 1.0).cpu()


# -- inputs ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Source:
    """One input: an image file or a video file (``kind`` "image" or "video")."""

    path: Path
    kind: str


def collect_inputs(inputs: Sequence[PathLike]) -> list[Source]:
    """Image files, video files and the images/videos directly inside folders, in the order given.

    Errors name the path: a path that does not exist, a file that is neither an image
    nor a video by its extension, a folder with neither, no input at all.
    """
    if isinstance(inputs, (str, Path)):
        inputs = [inputs]
    out: list[Source] = []
    for raw in inputs:
        p = Path(raw)
        if not p.exists():
            raise DataError(f"{p}: input not found")
        if p.is_dir():
            found = [q for q in sorted(p.iterdir(), key=lambda q: natural_key(q.name))
                     if q.is_file() and not q.name.startswith(".") and (is_image(q) or is_video_file(q))]
            if not found:
                raise DataError(f"{p}: no images ({', '.join(IMAGE_EXTS)}) or videos "
                                f"({', '.join(VIDEO_EXTS)}) found in this folder")
            out.extend(Source(q, "image" if is_image(q) else "video") for q in found)
        elif is_image(p):
            out.append(Source(p, "image"))
        elif is_video_file(p):
            out.append(Source(p, "video"))
        else:
            raise DataError(f"{p}: not an image ({', '.join(IMAGE_EXTS)}) or video ({', '.join(VIDEO_EXTS)}) file")
    if not out:
        raise DataError("no inputs given")
    return out


class VideoReader:
    """Frames of a video file's first video stream, decoded one at a time as RGB uint8.

    Opening errors (not a video, corrupt, no video stream) and a video of which no
    frame decodes are :class:`DataError` naming the file; a stream that breaks off
    later keeps the frames decoded so far (warned).
    """

    def __init__(self, path: PathLike) -> None:
        self.path = Path(path)
        try:
            self._container = av.open(str(self.path))
        except _AV_ERRORS as e:
            raise DataError(f"{self.path}: cannot open video file, corrupt or not a video? ({e})") from None
        if not self._container.streams.video:
            self._container.close()
            raise DataError(f"{self.path}: the file has no video stream")
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = "AUTO"
        self.num_frames = int(self._stream.frames or 0)  # from the header; 0 when unknown
        rate = self._stream.average_rate or self._stream.base_rate
        self.fps = Fraction(rate) if rate else Fraction(25)

    def __iter__(self) -> Iterator[np.ndarray]:
        count = 0
        try:
            for frame in self._container.decode(self._stream):
                count += 1
                yield frame.to_ndarray(format="rgb24")
        except _AV_ERRORS as e:
            if count == 0:
                raise DataError(f"{self.path}: corrupt or truncated video, no frame could be decoded "
                                f"({type(e).__name__}: {e})") from None
            log.warning("%s: decoding stopped after %d frames (%s: %s); kept those", self.path, count,
                        type(e).__name__, e)
        finally:
            self._container.close()
        if count == 0:
            raise DataError(f"{self.path}: the video has no frames")


class VideoWriter:
    """An mp4 written frame by frame with PyAV (libx264 when available, else mpeg4)."""

    CODECS = ("libx264", "mpeg4")

    def __init__(self, path: PathLike, fps: Fraction = Fraction(25)) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.codec = pick_codec(self.CODECS)
        self.fps = fps if 0 < fps <= 240 else Fraction(25)
        self._out: Any = None  # opened with the first frame (its size fixes the stream's)
        self._stream: Any = None

    def write(self, frame: np.ndarray) -> None:
        frame = _even(frame)  # yuv420p needs even width and height
        if self._stream is None:
            self._out = av.open(str(self.path), "w")
            s = self._out.add_stream(self.codec, rate=self.fps)
            s.height, s.width = frame.shape[:2]
            s.pix_fmt = "yuv420p"
            if self.codec == "libx264":
                s.options = {"crf": "18", "preset": "veryfast"}
            self._stream = s
        for pkt in self._stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
            self._out.mux(pkt)

    def close(self) -> None:
        if self._out is None:
            return
        for pkt in self._stream.encode():
            self._out.mux(pkt)
        self._out.close()
        self._out = None


def pick_codec(candidates: Sequence[str]) -> str:
    """The first of ``candidates`` this PyAV/FFmpeg build can encode with."""
    for name in candidates:
        try:
            av.codec.Codec(name, "w")
            return name
        except Exception:  # noqa: BLE001 - codec absent in this build
            continue
    raise RuntimeError(f"no video encoder among {list(candidates)} in this PyAV build")


def _even(frame: np.ndarray) -> np.ndarray:
    h, w = frame.shape[:2]
    if h % 2 or w % 2:
        frame = np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    return frame


# -- overlays ----------------------------------------------------------------------------
def overlay(image: np.ndarray, keypoints_px: np.ndarray, tm: TrainedModel) -> np.ndarray:
    """The skeleton (right red, left blue, centre green) drawn on the original image.

    Images smaller than ``MIN_OVERLAY_SIZE`` are enlarged first (nearest neighbour).
    """
    sk = tm.skeleton
    scale = max(1, MIN_OVERLAY_SIZE // max(image.shape[:2]))
    return draw_skeleton(image, keypoints_px, sk.edges, color=side_colors(sk.keypoint_names, sk.edges), scale=scale)


def _unique(name: str, used: set[str]) -> str:
    """``name``, or ``name_2``, ``name_3``, ... if already taken (two inputs with one stem)."""
    cand, n = name, 1
    while cand in used:
        n += 1
        cand = f"{name}_{n}"
    used.add(cand)
    return cand


# -- prediction ----------------------------------------------------------------------------
@dataclass
class _Item:
    image: dict[str, Any]  # COCO image entry
    box: CropBox
    crop: np.ndarray
    original: Optional[np.ndarray]  # kept only when an overlay is drawn
    png: Optional[Path] = None
    writer: Optional[VideoWriter] = None


@dataclass
class _Results:
    images: list[dict[str, Any]] = field(default_factory=list)
    keypoints: list[np.ndarray] = field(default_factory=list)
    scores: list[np.ndarray] = field(default_factory=list)


class _Background:
    """Runs jobs one at a time, in submission order, on a worker thread (``depth`` 0: inline).

    At most ``depth`` jobs wait or run (``submit`` blocks until one finishes), so
    memory stays bounded. A job's exception is re-raised, as is, by the next
    ``submit`` or ``drain`` in the calling thread (jobs already queued still run).
    """

    def __init__(self, depth: int) -> None:
        self._depth = depth
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="keypointgan-overlays") if depth > 0 else None
        self._pending: deque[Future[None]] = deque()

    def submit(self, fn: Callable[..., None], *args: Any) -> None:
        """Queue ``fn(*args)`` (after waiting for room); first raise any finished job's error."""
        if self._pool is None:
            fn(*args)
            return
        while self._pending and (self._pending[0].done() or len(self._pending) >= self._depth):
            self._pending.popleft().result()  # raises the job's exception
        self._pending.append(self._pool.submit(fn, *args))

    def drain(self) -> None:
        """Wait for every submitted job; raise the first error among them."""
        while self._pending:
            self._pending.popleft().result()

    def close(self) -> None:
        """Wait for the submitted jobs and stop the thread; errors not yet raised are dropped.

        Called after ``drain`` on success, or while another error propagates.
        """
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        self._pending.clear()


def _save_png(path: Path, image: np.ndarray) -> None:
    """Write ``image`` (H,W,3 uint8) as a PNG, creating its folder.

    zlib level 1: the same pixels, about 2.5x faster to write than PIL's default (6) for
    ~12% larger files (measured on 640x480 frames); saving was over half of predict's time."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path, compress_level=1)


def _draw(tm: TrainedModel, image: np.ndarray, keypoints_px: np.ndarray, png: Optional[Path],
          writer: Optional[VideoWriter]) -> None:
    """One overlay: draw it, save it as ``png`` and/or append it to ``writer`` (a background job)."""
    drawn = overlay(image, keypoints_px, tm)
    if png is not None:
        _save_png(png, drawn)
    if writer is not None:
        writer.write(drawn)


def _flush(tm: TrainedModel, items: list[_Item], res: _Results, orient: bool, bg: _Background) -> None:
    """Run a batch through the detector, record its results and hand its overlays to ``bg``."""
    if not items:
        return
    kp, conf = detect(tm, [it.crop for it in items], orient=orient)
    for it, k, c in zip(items, kp.numpy().astype(np.float64), conf.numpy()):
        px = it.box.to_pixels(k)
        res.images.append(it.image)
        res.keypoints.append(px)
        res.scores.append(c)
        if it.original is not None:
            bg.submit(_draw, tm, it.original, px, it.png, it.writer)
    items.clear()


def _close_quietly(writers: Sequence[VideoWriter]) -> None:
    """Close videos left open by a failure; their errors are logged (the failure is what is raised)."""
    for w in writers:
        try:
            w.close()
        except Exception as e:  # noqa: BLE001 - secondary to the error being raised
            log.warning("%s: closing the overlay video failed too (%s: %s)", w.path, type(e).__name__, e)


def _count_frames(sources: Sequence[Source]) -> Optional[int]:
    """Images + frames announced by the video headers (None when a header does not say)."""
    total = 0
    for s in sources:
        if s.kind == "image":
            total += 1
            continue
        try:
            with av.open(str(s.path)) as c:
                n = int(c.streams.video[0].frames or 0) if c.streams.video else 0
        except _AV_ERRORS:
            n = 0  # reported when the video is read
        if n <= 0:
            return None
        total += n
    return total


def predict(checkpoint: PathLike, inputs: Sequence[PathLike] | PathLike, out: PathLike, batch_size: int = 32,
            overlays: bool = True, video_overlay: bool = False, *, orient: bool = True, device: str = "auto",
            precision: str = "auto", progress: bool = True, weights: str = "auto") -> Path:
    """Detect keypoints in ``inputs``; write ``out/keypoints.json`` (COCO) and overlays; return the JSON path.

    - ``out/keypoints.json``: one image entry per image or video frame (``file_name``
      the input path; video frames add ``video`` (the file's stem) and ``frame_index``),
      one annotation each: ``keypoints`` ``[x, y, 2, ...]`` in original-image pixels,
      ``keypoint_scores`` (K confidences in [0, 1]) and ``score`` (their mean);
    - ``overlays``: ``out/overlays/<stem>.png`` per image and
      ``out/overlays/<video>/<frame:06d>.png`` per video frame;
    - ``video_overlay``: ``out/overlays/<video>.mp4``, the annotated video.
    """
    from tqdm.auto import tqdm

    if batch_size < 1:
        raise UsageError(f"batch_size must be >= 1, got {batch_size}")
    sources = collect_inputs(inputs)
    out = Path(out)
    tm = load_model(checkpoint, device=device, precision=precision, weights=weights)
    size = tm.model.image_size
    res, batch, used = _Results(), [], set()  # type: ignore[var-annotated]
    writers: list[VideoWriter] = []
    bg = _Background(batch_size if OVERLAY_QUEUE is None else OVERLAY_QUEUE)
    bar = tqdm(total=_count_frames(sources), unit="img", desc="predicting", disable=not progress)
    try:
        for src in sources:
            if src.kind == "image":
                img = read_image(src.path)
                crop, box = prepare(img, size)
                entry = {"file_name": str(src.path), "width": int(img.shape[1]), "height": int(img.shape[0])}
                png = out / "overlays" / f"{_unique(src.path.stem, used)}.png" if overlays else None
                batch.append(_Item(entry, box, crop, img if overlays else None, png))
                bar.update(1)
                if len(batch) >= batch_size:
                    _flush(tm, batch, res, orient, bg)
                continue
            _flush(tm, batch, res, orient, bg)  # batches never mix a video with other inputs
            name = _unique(src.path.stem, used)
            reader = VideoReader(src.path)
            writer = VideoWriter(out / "overlays" / f"{name}.mp4", reader.fps) if video_overlay else None
            if writer is not None:
                writers.append(writer)
            for i, frame in enumerate(reader):
                crop, box = prepare(frame, size)
                entry = {"file_name": str(src.path), "width": int(frame.shape[1]),
                         "height": int(frame.shape[0]), "video": src.path.stem, "frame_index": i}
                png = out / "overlays" / name / f"{i:06d}.png" if overlays else None
                keep = frame if (overlays or video_overlay) else None
                batch.append(_Item(entry, box, crop, keep, png, writer))
                bar.update(1)
                if len(batch) >= batch_size:
                    _flush(tm, batch, res, orient, bg)
            _flush(tm, batch, res, orient, bg)
            if writer is not None:
                bg.submit(writer.close)  # queued after its last frame
        _flush(tm, batch, res, orient, bg)
        bg.drain()  # every overlay written, every video closed; raises the first failure
    finally:
        bg.close()
        _close_quietly(writers)  # no-op unless a failure left a video open
        bar.close()
    path = out / "keypoints.json"
    write_coco_keypoints(path, res.images, np.stack(res.keypoints), np.stack(res.scores), tm.skeleton)
    log.info("wrote %d predictions to %s", len(res.images), path)
    return path
