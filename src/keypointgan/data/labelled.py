"""Test images with ground-truth keypoints from a COCO JSON: a :class:`LabelledSource`.

``file_name`` (relative to ``root``) names an image file, a frame folder (with
``frame_index`` into its naturally ordered frames) or a video file (with
``frame_index``, 0-based). Each image has at most one annotation (one object per
image, as the paper's benchmarks); images without one are ignored (counted).
Everything is checked at construction; an unreadable test image, or one whose size
differs from the JSON's ``width``/``height``, raises :class:`DataError` rather than
being skipped, because silently dropping test images would change the metrics.

Keypoints come out in the crop's normalised frame; ``visible`` is ``v > 0`` (the
position is labelled, occluded or not). ``box`` maps predictions back to pixels:
``CropBox(*box).to_pixels(uv)``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from ..config import Config, ConfigError
from ..pose.skeleton import Skeleton
from .base import DataError
from .coco import CocoImage, read_coco_keypoints
from .transforms import CropBox, bbox_box, center_box, crop_resize, keypoints_bbox, to_tensor
from .video import decode_video, frame_files, is_image, is_video_file, read_image

log = logging.getLogger("keypointgan.data")

CROPS = ("center", "bbox")


class LabelledFolder:
    """Labelled test frames of ``root`` described by ``coco_json``, at ``image_size``."""

    def __init__(self, root: str | Path, coco_json: str | Path, image_size: int,
                 skeleton: Optional[Skeleton] = None, *, crop: str = "center", margin: float = 0.25,
                 out_of_image: str = "keep") -> None:
        if crop not in CROPS:
            raise ConfigError(f"crop must be one of {CROPS}, got {crop!r}")
        self.root = Path(root)
        self.image_size = int(image_size)
        self.crop, self.margin = crop, float(margin)
        self.coco = read_coco_keypoints(coco_json, skeleton, out_of_image=out_of_image)
        self.skeleton = self.coco.skeleton
        self.json_path = Path(coco_json)
        seen: dict[int, int] = {}
        for a in range(len(self.coco)):
            i = int(self.coco.image_index[a])
            if i in seen:
                raise DataError(f"{self.json_path}: image id {self.coco.images[i].id} has more than one "
                                f"annotation; evaluation expects one object per image")
            seen[i] = a
        self.annotations = [seen[i] for i in sorted(seen)]
        self.unlabelled_images = len(self.coco.images) - len(self.annotations)
        if self.unlabelled_images:
            log.info("%s: %d images have no annotation and are ignored", self.json_path, self.unlabelled_images)
        if not self.annotations:
            raise DataError(f"{self.json_path}: no annotations, nothing to evaluate")
        self._sources = [self._resolve(self.coco.image_of(a)) for a in self.annotations]
        self._video_cache: dict[Path, dict[int, np.ndarray]] = {}

    def __len__(self) -> int:
        return len(self.annotations)

    def _resolve(self, im: CocoImage) -> tuple[str, Path, int]:
        """(kind, path, frame index) of an image entry; missing files fail here."""
        p = self.root / im.file_name
        where = f"{self.json_path}: image id {im.id} ('{im.file_name}')"
        if not im.file_name or not p.exists():
            raise DataError(f"{where}: file not found under {self.root}")
        if p.is_dir():
            frames = frame_files(p)
            fi = im.frame_index or 0
            if fi >= len(frames):
                raise DataError(f"{where}: frame_index {fi} but the folder has {len(frames)} frames")
            return "image", frames[fi], 0
        if is_video_file(p):
            if im.frame_index is None:
                raise DataError(f"{where}: a video file needs 'frame_index'")
            return "video", p, im.frame_index
        if not is_image(p):
            raise DataError(f"{where}: not an image or video file")
        return "image", p, 0

    def _read(self, k: int) -> np.ndarray:
        kind, path, fi = self._sources[k]
        if kind == "image":
            return read_image(path)
        if path not in self._video_cache:
            wanted = {f for kd, p, f in self._sources if kd == "video" and p == path}
            got: dict[int, np.ndarray] = {}
            dec = decode_video(path, keep=lambda i: i in wanted)
            # decode_video keeps frames in order of their indices
            for f, fr in zip(sorted(i for i in wanted), dec.frames):
                got[f] = fr
            if len(dec.frames) < len(wanted):
                missing = sorted(wanted - set(got))
                why = f" ({dec.error})" if dec.error else ""
                raise DataError(f"{path}: cannot read frame_index {missing[:5]} referenced by "
                                f"{self.json_path}: the video ends earlier{why}")
            self._video_cache[path] = got
        return self._video_cache[path][fi]

    def box(self, k: int, width: int, height: int) -> CropBox:
        """The square crop of labelled image ``k`` (centre of the shorter side, or its bbox)."""
        if self.crop == "center":
            return center_box(width, height)
        a = self.annotations[k]
        bbox = self.coco.bboxes[a] or keypoints_bbox(self.coco.keypoints[a], self.coco.visibility[a] > 0)
        return bbox_box(bbox, self.margin)

    def item(self, index: int) -> dict:
        """``{"image", "keypoints", "visible", "category", "video", "id"}`` plus ``box``,
        ``keypoints_px`` (the file's pixels) and ``file_name``."""
        a = self.annotations[index]
        im = self.coco.image_of(a)
        img = self._read(index)
        h, w = img.shape[:2]
        if (w, h) != (im.width, im.height):
            raise DataError(f"{self.json_path}: image id {im.id} ('{im.file_name}') is {w}x{h}, "
                            f"but the JSON says {im.width}x{im.height}")
        box = self.box(index, w, h)
        kp_px = self.coco.keypoints[a]
        video = im.video or (Path(im.file_name).parent.name if self._sources[index][0] == "image"
                             else Path(im.file_name).stem) or Path(im.file_name).stem
        return {
            "image": to_tensor(crop_resize(img, box, self.image_size)),
            "keypoints": torch.from_numpy(box.to_normalized(kp_px)).float(),
            "visible": torch.from_numpy(self.coco.visibility[a] > 0),
            "category": im.category or "all",
            "video": video,
            "id": im.id,
            "box": torch.tensor(box.as_list(), dtype=torch.float64),
            "keypoints_px": torch.from_numpy(kp_px.copy()),
            "file_name": im.file_name,
        }


def labelled_folder(root: Optional[str | Path], labels: str | Path, cfg: Config, skeleton: Skeleton,
                    what: str) -> LabelledFolder:
    """A :class:`LabelledFolder` of a user's COCO labels, cropped as ``cfg.data`` says (``test_crop``,
    ``bbox_margin``) at ``cfg.model.image_size``; errors say which file (``what``: "test", ...)
    and the model's K. ``root`` defaults to the labels' folder."""
    labels = Path(labels)
    if not labels.is_file():
        raise FileNotFoundError(f"{what} labels {labels}: no such file")
    try:
        return LabelledFolder(root if root is not None else labels.parent, labels, cfg.model.image_size, skeleton,
                              crop=cfg.data.test_crop, margin=cfg.data.bbox_margin)
    except DataError as e:
        raise DataError(f"{what} labels do not fit the model (skeleton '{skeleton.name}', "
                        f"K={skeleton.num_keypoints}): {e}") from None
