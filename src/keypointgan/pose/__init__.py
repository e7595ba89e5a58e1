"""The dual pose representation: skeletons as data, the renderer beta, soft-argmax."""

from .coords import normalized_to_pixels, pixel_centers, pixels_to_normalized
from .render import SkeletonRenderer, render_skeleton
from .skeleton import Skeleton, SkeletonError, get_skeleton, list_skeletons, load_skeleton
from .softargmax import heatmaps_to_keypoints, keypoint_confidence

__all__ = [
    "Skeleton", "SkeletonError", "SkeletonRenderer", "get_skeleton", "heatmaps_to_keypoints",
    "keypoint_confidence", "list_skeletons", "load_skeleton", "normalized_to_pixels",
    "pixel_centers", "pixels_to_normalized", "render_skeleton",
]
