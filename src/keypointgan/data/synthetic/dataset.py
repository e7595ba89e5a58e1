"""The synthetic dataset: videos split by video into train / prior / test, and its sources.

``SyntheticWorld`` knows every video (name, activity, split) and draws any frame of
any video at any resolution, deterministically from the seed. The three sources
implement the protocols of ``data.base``:

- :class:`SyntheticVideos` (train): frames only, a ``VideoSource``;
- :class:`SyntheticPoses` (prior): poses only, from videos disjoint from train and test;
- :class:`SyntheticLabelled` (test): frames + ground-truth keypoints + activity.

Frames are rendered once per split into a uint8 tensor in memory (optionally cached on
disk as ``.npz`` with ``cache_dir``), or, for splits too large for memory, on demand.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

import numpy as np
import torch

from ...config import ConfigError
from ...pose.skeleton import Skeleton, get_skeleton
from ..base import DataError
from .appearance import render_background
from .motion import ACTIVITIES
from .raster import Parts, render_parts
from .scene import VideoScene, make_scene, occlusion, scene_parts

GENERATOR_VERSION = 1  # bump when the generator's pixels change (invalidates disk caches)
SPLITS = ("train", "prior", "test")
BACKGROUNDS = ("clutter", "plain")
MEMORY_LIMIT_BYTES = 1 << 29  # "auto" storage keeps a split in memory up to 512 MiB


@dataclass(frozen=True)
class SynthParams:
    """What defines a synthetic dataset (the image size is chosen when drawing)."""

    num_videos: int = 240
    num_frames: int = 60
    seed: int = 0
    split: tuple[float, float, float] = (0.6, 0.2, 0.2)  # train / prior / test fractions of videos
    activities: tuple[str, ...] = ACTIVITIES
    test_stride: int = 3  # every n-th frame of a test video is a test image
    skeleton: str = "synth_humanoid"
    background: str = "clutter"  # "clutter" or "plain" (black, as foreground-masked frames)

    def __post_init__(self) -> None:
        if self.background not in BACKGROUNDS:
            raise DataError(f"synthetic background (data.synthetic_background) must be one of {', '.join(BACKGROUNDS)}, got {self.background!r}")
        if self.num_videos < 3:
            raise DataError(f"synthetic data needs at least 3 videos (train, prior, test), got {self.num_videos}")
        if self.num_frames < 1 or self.test_stride < 1:
            raise DataError("synthetic num_frames and test_stride must be positive")
        if len(self.split) != 3 or min(self.split) < 0 or sum(self.split) <= 0:
            raise DataError(f"synthetic split must be 3 non-negative fractions, got {self.split}")
        bad = [a for a in self.activities if a not in ACTIVITIES]
        if bad or not self.activities:
            raise DataError(f"unknown synthetic activities {bad}; known: {', '.join(ACTIVITIES)}")

    @classmethod
    def from_config(cls, data: Any, skeleton: str = "synth_humanoid") -> "SynthParams":
        """From a ``DataConfig`` (its ``synthetic_*`` fields)."""
        acts = getattr(data, "synthetic_activities", None)
        return cls(
            num_videos=data.synthetic_videos, num_frames=data.synthetic_frames, seed=data.synthetic_seed,
            split=tuple(getattr(data, "synthetic_split", cls.split)),
            activities=tuple(acts) if acts else ACTIVITIES,
            test_stride=getattr(data, "synthetic_test_stride", cls.test_stride), skeleton=skeleton,
            background=getattr(data, "synthetic_background", cls.background),
        )

    def key(self, image_size: int) -> str:
        """A short hash of everything that determines the pixels (names disk caches)."""
        d = asdict(self) | {"image_size": image_size, "version": GENERATOR_VERSION}
        if self.background == "clutter":  # the default keeps the keys of caches written before the option
            del d["background"]
        return hashlib.sha1(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class VideoInfo:
    vid: int  # index in the whole dataset; seeds the video's content
    name: str
    category: str  # the activity
    split: str


def assign_splits(num_videos: int, activities: Sequence[str], fractions: Sequence[float]) -> list[VideoInfo]:
    """Activities round-robin by video id; splits stratified by activity.

    Videos are visited activity by activity and dealt to splits by error diffusion, so
    each split holds its fraction of every activity and, globally, of all videos.
    """
    f = np.asarray(fractions, dtype=np.float64) / sum(fractions)
    cats = [activities[v % len(activities)] for v in range(num_videos)]
    order = sorted(range(num_videos), key=lambda v: (v % len(activities), v))
    counts = np.zeros(3)
    split = {}
    for i, v in enumerate(order, 1):
        s = int(np.argmax(f * i - counts))
        counts[s] += 1
        split[v] = SPLITS[s]
    missing = [s for s in SPLITS if s not in split.values()]
    if missing:
        raise DataError(f"synthetic data: {num_videos} videos with split {tuple(fractions)} leave "
                        f"{missing} empty; use more videos")
    return [VideoInfo(v, f"{cats[v]}_{v:04d}", cats[v], split[v]) for v in range(num_videos)]


@contextmanager
def _one_thread() -> Iterator[None]:
    """Draw with one intra-op thread: the rasteriser's ops are small, and on a busy
    2-core machine two threads were measured 3-5x slower (OpenMP contention)."""
    n = torch.get_num_threads()
    if n > 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if n > 1:
            torch.set_num_threads(n)


class SyntheticWorld:
    """Every video of one synthetic dataset; draws frames at any resolution."""

    def __init__(self, params: SynthParams | None = None, skeleton: Skeleton | str | None = None,
                 max_backgrounds: int = 256):
        self.params = params or SynthParams()
        self.skeleton = get_skeleton(skeleton or self.params.skeleton)
        self.videos = assign_splits(self.params.num_videos, self.params.activities, self.params.split)
        self._scenes: dict[int, VideoScene] = {}
        self._bgs: OrderedDict[tuple[int, int], torch.Tensor] = OrderedDict()
        self._max_bgs = max_backgrounds

    def ids(self, split: str) -> list[int]:
        if split not in SPLITS:
            raise ValueError(f"unknown split '{split}'; known: {', '.join(SPLITS)}")
        return [v.vid for v in self.videos if v.split == split]

    def scene(self, vid: int) -> VideoScene:
        if vid not in self._scenes:
            info = self.videos[vid]
            self._scenes[vid] = make_scene(vid, info.name, info.category, self.params.seed,
                                           self.params.num_frames, self.skeleton)
        return self._scenes[vid]

    def keypoints(self, vid: int) -> np.ndarray:
        """(T,K,2) normalised keypoints of a video (float64)."""
        return self.scene(vid).keypoints

    def background(self, vid: int, size: int) -> torch.Tensor:
        if self.params.background == "plain":
            return torch.zeros(3, size, size)
        key = (vid, size)
        if key not in self._bgs:
            with _one_thread():
                self._bgs[key] = render_background(self.scene(vid).background, size)
            if len(self._bgs) > self._max_bgs:
                self._bgs.popitem(last=False)
        self._bgs.move_to_end(key)
        return self._bgs[key]

    def render(self, vid: int, frames: Sequence[int], size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Frames of one video: uint8 (B,3,H,W) and part ids (B,H,W) (-1: background)."""
        return self.render_many([vid] * len(frames), frames, size)

    def render_many(self, vids: Sequence[int], frames: Sequence[int], size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Frames of any videos, drawn in one batch (B = len(vids))."""
        vids, frames = [int(v) for v in vids], [int(f) for f in frames]
        if not vids:
            return torch.zeros(0, 3, size, size, dtype=torch.uint8), torch.zeros(0, size, size, dtype=torch.int8)
        groups: dict[int, list[int]] = {}
        for i, v in enumerate(vids):
            groups.setdefault(v, []).append(i)
        parts, bgs, pos = [], [], []
        for v, rows in groups.items():
            parts.append(scene_parts(self.scene(v), [frames[i] for i in rows], size))
            bgs.append(self.background(v, size).expand(len(rows), -1, -1, -1))
            pos += rows
        with _one_thread():
            img, ids = render_parts(Parts.cat(parts), bgs[0] if len(bgs) == 1 else torch.cat(bgs))
        inv = torch.empty(len(pos), dtype=torch.long)
        inv[torch.tensor(pos)] = torch.arange(len(pos))
        img = (img * 255.0 + 0.5).to(torch.uint8)
        return img[inv], ids.to(torch.int8)[inv]


def _cache_path(cache_dir: str | Path, params: SynthParams, size: int, split: str, frames: Sequence[int]) -> Path:
    """One file per (dataset, size, split, frame set): e.g. all train frames for training
    and every test_stride-th train frame for a labelled view of the train split."""
    fr = hashlib.sha1(np.asarray(frames, dtype=np.int64).tobytes()).hexdigest()[:6]
    return Path(cache_dir) / f"synthetic-{params.key(size)}-{split}-{size}px-{len(frames)}f{fr}.npz"


class FrameStore:
    """The frames of some videos at one size: in memory (rendered once) or on demand.

    ``storage``: ``"memory"`` renders all frames on first use into a uint8 tensor
    (N, F, 3, H, W), loaded from / saved to ``cache_dir`` when given; ``"lazy"`` draws
    frames when asked (batched across videos); ``"auto"`` is memory unless the split
    would take more than 512 MiB.
    """

    def __init__(self, world: SyntheticWorld, vids: Sequence[int], frames: Sequence[int], size: int,
                 split: str, storage: str = "auto", cache_dir: Optional[str | Path] = None):
        if storage not in ("auto", "memory", "lazy"):
            raise ConfigError(f"storage must be 'auto', 'memory' or 'lazy', got '{storage}'")
        self.world, self.vids, self.frames, self.size, self.split = world, list(vids), list(frames), size, split
        nbytes = len(self.vids) * len(self.frames) * 3 * size * size
        self.storage = ("memory" if nbytes <= MEMORY_LIMIT_BYTES else "lazy") if storage == "auto" else storage
        self.cache_dir = cache_dir
        self._frames: Optional[torch.Tensor] = None
        self._occluded: Optional[torch.Tensor] = None
        self._slot = {f: i for i, f in enumerate(self.frames)}

    def _render_all(self) -> tuple[torch.Tensor, torch.Tensor]:
        n, f, s, k = len(self.vids), len(self.frames), self.size, self.world.skeleton.num_keypoints
        out = torch.empty((n, f, 3, s, s), dtype=torch.uint8)
        occ = torch.zeros((n, f, k), dtype=torch.bool)
        for i, v in enumerate(self.vids):
            img, ids = self.world.render(v, self.frames, s)
            out[i] = img
            occ[i] = torch.from_numpy(occlusion(self.world.scene(v), self.frames, ids, self.world.skeleton))
        return out, occ

    def _load(self) -> None:
        path = (_cache_path(self.cache_dir, self.world.params, self.size, self.split, self.frames)
                if self.cache_dir else None)
        expect = (len(self.vids), len(self.frames), 3, self.size, self.size)
        if path is not None and path.is_file():
            try:
                with np.load(path, allow_pickle=False) as z:
                    frames, occ = z["frames"], z["occluded"]
            except (OSError, ValueError, KeyError, zipfile.BadZipFile):
                frames = occ = None  # a damaged cache file: draw again and replace it
            if frames is not None and frames.shape == expect and occ.shape == expect[:2] + (self.world.skeleton.num_keypoints,):
                self._frames, self._occluded = torch.from_numpy(frames), torch.from_numpy(occ)
                return
        self._frames, self._occluded = self._render_all()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
            np.savez(tmp, frames=self._frames.numpy(), occluded=self._occluded.numpy())
            os.replace(tmp, path)

    def prepare(self) -> None:
        """Render (or load from the cache) every frame now, e.g. before DataLoader workers
        fork, so they share one copy instead of each rendering its own."""
        if self.storage == "memory" and self._frames is None:
            self._load()

    def get(self, rows: Sequence[int], frames: Sequence[int]) -> torch.Tensor:
        """uint8 (B,3,H,W): frame ``frames[i]`` of the ``rows[i]``-th video of the store."""
        if self.storage == "memory":
            if self._frames is None:
                self._load()
            slots = [self._slot[int(f)] for f in frames]
            return self._frames[torch.as_tensor(list(rows), dtype=torch.long), torch.as_tensor(slots)]
        return self.world.render_many([self.vids[int(r)] for r in rows], frames, self.size)[0]

    def occluded(self, row: int, frame: int) -> torch.Tensor:
        """(K,) bool: keypoints hidden behind another body part in this frame."""
        if self.storage == "memory":
            if self._occluded is None:
                self._load()
            return self._occluded[row, self._slot[frame]]
        v = self.vids[row]
        _, ids = self.world.render(v, [frame], self.size)
        return torch.from_numpy(occlusion(self.world.scene(v), [frame], ids, self.world.skeleton)[0])


def _to_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 [0,255] -> float [-1,1]."""
    return x.float().div_(127.5).sub_(1.0)


class SyntheticVideos:
    """Train split: a ``VideoSource`` of frames only."""

    def __init__(self, world: SyntheticWorld, image_size: int, split: str = "train", storage: str = "auto",
                 cache_dir: Optional[str | Path] = None):
        self.world, self.image_size = world, int(image_size)
        self.vids = world.ids(split)
        self.store = FrameStore(world, self.vids, range(world.params.num_frames), self.image_size, split,
                                storage, cache_dir)

    def __len__(self) -> int:
        return len(self.vids)

    def prepare(self) -> "SyntheticVideos":
        """Render all frames now (memory storage); see :meth:`FrameStore.prepare`."""
        self.store.prepare()
        return self

    def num_frames(self, video: int) -> int:
        return self.world.params.num_frames

    def video_name(self, video: int) -> str:
        return self.world.videos[self.vids[video]].name

    def category(self, video: int) -> str:
        return self.world.videos[self.vids[video]].category

    def frame(self, video: int, index: int) -> torch.Tensor:
        """(3,H,W) float in [-1,1]."""
        self._check(video, index)
        return _to_float(self.store.get([video], [index])[0])

    def frames(self, videos: Sequence[int], indices: Sequence[int]) -> torch.Tensor:
        """A batch (B,3,H,W) in [-1,1]; faster than many ``frame`` calls in lazy storage."""
        for v, i in zip(videos, indices):
            self._check(int(v), int(i))
        return _to_float(self.store.get([int(v) for v in videos], [int(i) for i in indices]))

    def background(self, video: int) -> torch.Tensor:
        """(3,H,W) float in [-1,1]: the video's background exactly as its frames hold it
        (rounded to uint8 like them); for ``data.background_swap``."""
        if not 0 <= video < len(self):
            raise IndexError(f"video {video} out of range: {len(self)} videos")
        bg = self.world.background(self.vids[video], self.image_size)
        return _to_float((bg * 255.0 + 0.5).to(torch.uint8))

    def _check(self, video: int, index: int) -> None:
        if not (0 <= video < len(self) and 0 <= index < self.world.params.num_frames):
            raise IndexError(f"frame ({video}, {index}) out of range: {len(self)} videos of "
                             f"{self.world.params.num_frames} frames")


class SyntheticLabelled:
    """Test split: a ``LabelledSource`` of frames with keypoints, activity and video name."""

    def __init__(self, world: SyntheticWorld, image_size: int, storage: str = "auto",
                 cache_dir: Optional[str | Path] = None, split: str = "test"):
        self.world, self.image_size = world, int(image_size)
        self.vids = world.ids(split)
        self.frame_indices = list(range(0, world.params.num_frames, world.params.test_stride))
        self.store = FrameStore(world, self.vids, self.frame_indices, self.image_size, split, storage, cache_dir)
        self._items = [(r, f) for r in range(len(self.vids)) for f in self.frame_indices]

    def __len__(self) -> int:
        return len(self._items)

    def prepare(self) -> "SyntheticLabelled":
        self.store.prepare()
        return self

    def locate(self, index: int) -> tuple[str, int]:
        """(video name, frame index) of a labelled image."""
        r, f = self._items[index]
        return self.world.videos[self.vids[r]].name, f

    def keypoints(self, index: int) -> torch.Tensor:
        """(K,2) normalised ground truth, without drawing the image."""
        r, f = self._items[index]
        return torch.from_numpy(self.world.keypoints(self.vids[r])[f]).float()

    def item(self, index: int) -> dict:
        """``image`` (3,H,W) [-1,1], ``keypoints`` (K,2) normalised, ``visible`` (K,) (all
        labelled: True), ``occluded`` (K,) (hidden by another body part), ``category``
        (the activity), ``video``, ``frame_index``, ``id`` (its image id in test.json)."""
        if not 0 <= index < len(self):
            raise IndexError(f"labelled image {index} out of range ({len(self)})")
        r, f = self._items[index]
        info = self.world.videos[self.vids[r]]
        kp = self.keypoints(index)
        return {"image": _to_float(self.store.get([r], [f])[0]), "keypoints": kp,
                "visible": torch.ones(kp.shape[0], dtype=torch.bool), "occluded": self.store.occluded(r, f),
                "category": info.category, "video": info.name, "frame_index": f, "id": index + 1}


class SyntheticPoses:
    """Prior split: a ``PoseSource`` of every frame's pose of the prior videos."""

    def __init__(self, world: SyntheticWorld, split: str = "prior"):
        self.world = world
        self.vids = world.ids(split)

    def __len__(self) -> int:
        return len(self.vids) * self.world.params.num_frames

    def poses(self) -> torch.Tensor:
        """(M,K,2) normalised keypoints, M = prior videos x frames."""
        return torch.from_numpy(np.concatenate([self.world.keypoints(v) for v in self.vids])).float()

    def to_prior(self) -> Any:
        """The poses as ``data.prior.PriorPoses`` (all visible), e.g. for ``subset(n)``."""
        from ..prior import PriorPoses

        kp = self.poses()
        return PriorPoses(kp, torch.ones(kp.shape[:2], dtype=torch.bool), self.world.skeleton, "synthetic prior")

    def records(self) -> list[tuple[str, str, int]]:
        """(video name, category, frame index) of every pose, in ``poses()`` order."""
        t = self.world.params.num_frames
        return [(self.world.videos[v].name, self.world.videos[v].category, f) for v in self.vids for f in range(t)]


@dataclass
class SyntheticSources:
    """The three sources of one synthetic dataset at one image size."""

    train: SyntheticVideos
    prior: SyntheticPoses
    test: SyntheticLabelled
    world: SyntheticWorld = field(repr=False)


def synthetic_sources(data: Any = None, image_size: int = 64, skeleton: Skeleton | str = "synth_humanoid",
                      storage: str = "auto") -> SyntheticSources:
    """Train / prior / test sources from a ``DataConfig`` (or ``SynthParams``; None: defaults)."""
    if data is None:
        params, cache = SynthParams(skeleton=str(getattr(skeleton, "name", skeleton))), None
    elif isinstance(data, SynthParams):
        params, cache = data, None
    else:
        params = SynthParams.from_config(data, skeleton=str(getattr(skeleton, "name", skeleton)))
        cache = getattr(data, "cache_dir", None)
        storage = getattr(data, "synthetic_storage", storage) if storage == "auto" else storage
    world = SyntheticWorld(params, skeleton if isinstance(skeleton, Skeleton) else None)
    return SyntheticSources(
        train=SyntheticVideos(world, image_size, storage=storage, cache_dir=cache),
        prior=SyntheticPoses(world),
        test=SyntheticLabelled(world, image_size, storage=storage, cache_dir=cache),
        world=world,
    )
