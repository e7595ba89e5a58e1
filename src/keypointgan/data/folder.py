"""A user's own folder of videos as a :class:`VideoSource`.

Frames are centre-cropped (shorter side) and resized to ``image_size`` on read.
Frame folders are read lazily, one image per ``frame()`` call. Video files are
decoded once, at construction, straight to the model resolution and kept in memory
(``N * image_size^2 * 3`` bytes per clip: 48 KiB per frame at 128 px, so 20,000
frames ~ 1 GiB), or, with ``cache_dir``, in ``.npy`` files memory-mapped on later
runs. That suits short clips; cut long videos (or give ``max_frames``) first.

Unreadable frame images are skipped: the nearest readable frame of the same video
is returned instead, the bad index is remembered, the first skip is logged and all
are counted (``skips.counts``). A video none of whose frames can be read raises
:class:`DataError`.

``background_root`` (optional, ``data.background_root``) holds each video's background
for ``data.background_swap``, by video name: ``<name>/`` with one image per frame (in the
frames' natural order: tracked crops of a fixed camera, each cut from the camera's
background like its frame) or ``<name>.png`` (one image for the whole video: full
frames of a fixed camera). Videos without one are never swapped.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Iterator, Optional, Sequence

import numpy as np
import torch

from .base import DataError
from .labelled import LabelledFolder  # noqa: F401  (LabelledFolder lives in labelled.py)
from .transforms import center_box, crop_resize, to_tensor, to_tensor_batch
from .video import IMAGE_EXTS, SkipLog, VideoEntry, decode_video, frame_files, list_videos, read_image

log = logging.getLogger("keypointgan.data")


def _center_resize(image: np.ndarray, size: int) -> np.ndarray:
    h, w = image.shape[:2]
    return crop_resize(image, center_box(w, h), size)


def _nearest_first(index: int, n: int) -> Iterator[int]:
    """``index``, then its neighbours by distance (earlier first): ``i, i-1, i+1, i-2, ...``."""
    yield index
    for d in range(1, n):
        for j in (index - d, index + d):
            if 0 <= j < n:
                yield j


class FolderVideos:
    """Videos of ``root`` (frame sub-folders, video files, loose images) at ``image_size``."""

    def __init__(self, root: str | Path, image_size: int, *, cache_dir: str | Path | None = None,
                 max_frames: Optional[int] = None, background_root: str | Path | None = None) -> None:
        self.root = Path(root)
        self.image_size = int(image_size)
        self.max_frames = max_frames
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.skips = SkipLog()
        self.videos: list[VideoEntry] = list_videos(self.root, self.skips)
        self._clips: dict[int, np.ndarray] = {}
        self._bad: dict[int, set[int]] = {}
        for v, e in enumerate(self.videos):
            if e.kind == "file":
                self._clips[v] = self._load_clip(e)
        self.backgrounds = FolderBackgrounds(background_root, self) if background_root else None

    # -- VideoSource -------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.videos)

    def num_frames(self, video: int) -> int:
        e = self.videos[video]
        n = len(self._clips[video]) if e.kind == "file" else len(e.frames)
        return n if self.max_frames is None else min(n, self.max_frames)

    def frame(self, video: int, index: int) -> torch.Tensor:
        """Frame ``index`` of ``video``, ``(3, S, S)`` float in ``[-1, 1]``."""
        return to_tensor(self.frame_uint8(video, index))

    # -- extras ------------------------------------------------------------------
    def frames(self, videos: Sequence[int], indices: Sequence[int]) -> torch.Tensor:
        """A batch ``(B, 3, S, S)`` of frames (the samplers' batched read)."""
        return to_tensor_batch([self.frame_uint8(v, i) for v, i in zip(videos, indices)])

    def video_name(self, video: int) -> str:
        return self.videos[video].name

    def frame_uint8(self, video: int, index: int) -> np.ndarray:
        """Frame as uint8 ``(S, S, 3)``; a bad frame image is replaced by the nearest good one."""
        n = self.num_frames(video)
        if not 0 <= index < n:
            raise IndexError(f"frame {index} out of range for video '{self.video_name(video)}' ({n} frames)")
        e = self.videos[video]
        if e.kind == "file":
            return np.asarray(self._clips[video][index])
        bad = self._bad.setdefault(video, set())
        for j in _nearest_first(index, n):
            if j in bad:
                continue
            try:
                return _center_resize(read_image(e.frames[j]), self.image_size)
            except DataError as err:
                bad.add(j)
                self.skips.skip("bad_frame", f"{err}; using the nearest readable frame instead")
        raise DataError(f"{e.path}: all {n} frames of video '{e.name}' are unreadable")

    def _load_clip(self, e: VideoEntry) -> np.ndarray:
        """Decode a video file at the model resolution (through the ``.npy`` cache if any)."""
        cache = self._cache_path(e.path)
        if cache is not None and cache.is_file():
            try:
                return np.load(cache, mmap_mode="r", allow_pickle=False)
            except (OSError, ValueError) as err:
                log.warning("%s: unreadable cache file (%s); decoding again", cache, err)
        dec = decode_video(e.path, lambda im: _center_resize(im, self.image_size), max_frames=self.max_frames)
        if dec.error is not None:
            self.skips.skip("truncated_video", f"{e.path}: decoding stopped after {len(dec.frames)} "
                                               f"frames ({dec.error}); using those")
        clip = np.stack(dec.frames)
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_name(cache.name + ".tmp.npy")
            np.save(tmp, clip)
            tmp.replace(cache)
        return clip

    def _cache_path(self, path: Path) -> Optional[Path]:
        if self.cache_dir is None:
            return None
        st = path.stat()
        key = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{self.image_size}|{self.max_frames}|center"
        return self.cache_dir / f"{path.stem}-{hashlib.sha1(key.encode()).hexdigest()[:16]}.npy"


class FolderBackgrounds:
    """Backgrounds of a :class:`FolderVideos`' videos, read from ``root`` by video name
    (``<name>/`` one image per frame, or ``<name>.<ext>`` one for the video), centre-cropped
    and resized like the frames, kept in memory once read. ``get(video, index)`` is
    ``(3, S, S)`` in ``[-1, 1]``, ``None`` for a video without a background."""

    def __init__(self, root: str | Path, videos: FolderVideos) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataError(f"{self.root}: data.background_root not found (or not a directory)")
        self.videos = videos
        self.files: dict[int, tuple[Path, ...]] = {}
        for v in range(len(videos)):
            name = videos.video_name(v)
            folder = self.root / name
            if folder.is_dir():
                files = tuple(frame_files(folder))
                n = videos.num_frames(v)
                if len(files) < n:
                    raise DataError(f"{folder}: {len(files)} background images for the {n} frames of video "
                                    f"'{name}' (one per frame, in the frames' order, or one {name}.png for all)")
                self.files[v] = files[:n]
                continue
            single = [self.root / f"{name}{ext}" for ext in IMAGE_EXTS if (self.root / f"{name}{ext}").is_file()]
            if single:
                self.files[v] = (single[0],)
        if not self.files:
            raise DataError(f"{self.root}: no background for any training video (expected <video name>/ "
                            f"folders of per-frame images or <video name>.png files, e.g. "
                            f"{self.root / videos.video_name(0)}.png)")
        self._cache: dict[Path, torch.Tensor] = {}

    def has(self, video: int) -> bool:
        return video in self.files

    def get(self, video: int, index: int) -> Optional[torch.Tensor]:
        files = self.files.get(video)
        if files is None:
            return None
        path = files[index if len(files) > 1 else 0]
        if path not in self._cache:
            self._cache[path] = to_tensor(_center_resize(read_image(path), self.videos.image_size))
        return self._cache[path]
