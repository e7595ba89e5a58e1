"""Find the videos of a folder and read their frames as RGB uint8.

A video is a sub-folder of frames (natural order of names: ``2.png`` before
``10.png``), a video file decoded with PyAV, or a loose image in the root (a
one-frame video, for image-only data). Bad input policy:

- no video at all -> :class:`DataError` ("no videos found in X");
- an unreadable frame image -> :func:`read_image` raises ``DataError``; sources
  turn that into a counted skip (see :class:`SkipLog`), never a crash mid-training;
- a video file that cannot be opened or yields no frame -> ``DataError`` naming it;
  one that breaks off mid-stream keeps the frames decoded so far (counted, warned).
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import av
import numpy as np
from PIL import Image, UnidentifiedImageError

from .base import DataError

log = logging.getLogger("keypointgan.data")

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
VIDEO_EXTS = (".mp4", ".avi", ".mov", ".mkv", ".webm")
_AV_ERRORS = (av.FFmpegError, OSError, ValueError, EOFError, RuntimeError)


def natural_key(name: str) -> list:
    """Sort key that orders embedded numbers numerically (``f2`` < ``f10``)."""
    return [(0, int(t), "") if t.isdigit() else (1, 0, t.lower()) for t in re.split(r"(\d+)", name) if t]


def is_image(p: Path) -> bool:
    return p.suffix.lower() in IMAGE_EXTS


def is_video_file(p: Path) -> bool:
    return p.suffix.lower() in VIDEO_EXTS


@dataclass(frozen=True)
class VideoEntry:
    """One video: ``kind`` is "frames" (``frames`` lists its images) or "file"."""

    name: str
    path: Path
    kind: str
    frames: tuple[Path, ...] = ()


class SkipLog:
    """Counts skipped inputs by kind and logs the first of each kind only."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def skip(self, kind: str, message: str) -> None:
        if not self.counts[kind]:
            log.warning("%s (further '%s' skips are counted, not logged)", message, kind)
        self.counts[kind] += 1

    def total(self) -> int:
        return sum(self.counts.values())


def frame_files(folder: Path) -> list[Path]:
    """The frame images directly inside ``folder``, in natural order (hidden files ignored)."""
    files = [p for p in folder.iterdir() if p.is_file() and is_image(p) and not p.name.startswith(".")]
    return sorted(files, key=lambda p: natural_key(p.name))


def list_videos(root: str | Path, skips: Optional[SkipLog] = None) -> list[VideoEntry]:
    """The videos directly in ``root``, in natural order of names."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: video folder not found (or not a directory)")
    skips = skips or SkipLog()
    out: list[VideoEntry] = []
    for p in sorted(root.iterdir(), key=lambda q: natural_key(q.name)):
        if p.name.startswith("."):
            continue
        if p.is_dir():
            frames = frame_files(p)
            if frames:
                out.append(VideoEntry(p.name, p, "frames", tuple(frames)))
            else:
                skips.skip("empty_folder", f"{p}: no frame images ({', '.join(IMAGE_EXTS)}) in this "
                                           f"sub-folder; skipped (videos must be direct sub-folders of {root})")
        elif is_video_file(p):
            out.append(VideoEntry(p.stem, p, "file"))
        elif is_image(p):
            out.append(VideoEntry(p.stem, p, "frames", (p,)))
    if not out:
        raise DataError(f"no videos found in {root}: expected sub-folders of frames "
                        f"({', '.join(IMAGE_EXTS)}) or video files ({', '.join(VIDEO_EXTS)})")
    return out


def read_image(path: str | Path) -> np.ndarray:
    """An image file as RGB uint8 ``(H, W, 3)``; ``DataError`` naming the file if unreadable."""
    try:
        with Image.open(path) as im:
            im.load()
            if im.mode != "RGB":
                im = im.convert("RGB")
            arr = np.asarray(im)
    except FileNotFoundError:
        raise DataError(f"{path}: image file not found") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise DataError(f"{path}: unreadable image ({e})") from None
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise DataError(f"{path}: unexpected image shape {arr.shape}")
    return arr


@dataclass
class Decoded:
    """Frames decoded from a video file; ``error`` is set when decoding broke off early."""

    frames: list[np.ndarray]
    error: Optional[str] = None


def decode_video(path: str | Path, transform: Optional[Callable[[np.ndarray], np.ndarray]] = None,
                 keep: Optional[Callable[[int], bool]] = None, max_frames: Optional[int] = None) -> Decoded:
    """Decode a video file's first video stream to RGB uint8 frames.

    ``transform`` is applied to each kept frame as it is decoded (e.g. crop+resize to
    the model resolution, so only small frames are held); ``keep(i)`` selects frame
    indices (others are decoded but dropped; ``None`` keeps all in order).
    """
    path = Path(path)
    try:
        container = av.open(str(path))
    except _AV_ERRORS as e:
        raise DataError(f"{path}: cannot open video file, corrupt or truncated? ({e})") from None
    frames: list[np.ndarray] = []
    error = None
    try:
        if not container.streams.video:
            raise DataError(f"{path}: the file has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        expected = int(stream.frames or 0)  # from the container header; 0 when unknown
        count = 0
        for i, frame in enumerate(container.decode(stream)):
            if max_frames is not None and i >= max_frames:
                break
            count = i + 1
            if keep is None or keep(i):
                rgb = frame.to_ndarray(format="rgb24")
                frames.append(transform(rgb) if transform else rgb)
        if max_frames is None and 0 < count < expected:
            error = f"the header announces {expected} frames, only {count} decoded"
    except _AV_ERRORS as e:
        error = f"{type(e).__name__}: {e}"
    finally:
        container.close()
    if error is not None and not frames and keep is None:
        raise DataError(f"{path}: corrupt or truncated video, no frame could be decoded ({error})")
    if error is None and not frames and keep is None:
        raise DataError(f"{path}: the video has no frames")
    return Decoded(frames, error)
