"""Data: videos of frames, test labels and the pose prior, from files on disk.

Sources implement the protocols of :mod:`.base`; samplers (:mod:`.pairs`,
:mod:`.prior`) turn them into seeded, resumable batches. File formats:
``docs/data-format.md``.
"""

from .base import DataError, LabelledSource, PoseSource, VideoSource
from .coco import CocoImage, CocoKeypoints, read_coco_keypoints, write_coco_keypoints
from .folder import FolderVideos
from .labelled import LabelledFolder
from .pairs import PairSampler, TPSPairSampler, step_rng
from .prior import PriorPoses, PriorSampler, load_prior, map_skeleton
from .tps import TPSParams
from .transforms import CropBox, bbox_box, center_box, crop_resize, to_tensor, to_uint8
from .video import IMAGE_EXTS, VIDEO_EXTS, SkipLog, VideoEntry, decode_video, list_videos, read_image

__all__ = [
    "DataError", "VideoSource", "LabelledSource", "PoseSource",
    "CocoImage", "CocoKeypoints", "read_coco_keypoints", "write_coco_keypoints",
    "FolderVideos", "LabelledFolder",
    "PairSampler", "TPSPairSampler", "step_rng",
    "PriorPoses", "PriorSampler", "load_prior", "map_skeleton",
    "TPSParams",
    "CropBox", "bbox_box", "center_box", "crop_resize", "to_tensor", "to_uint8",
    "IMAGE_EXTS", "VIDEO_EXTS", "SkipLog", "VideoEntry", "decode_video", "list_videos", "read_image",
]
