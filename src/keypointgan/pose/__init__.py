"""The dual pose representation: skeletons as data, the renderer beta, soft-argmax."""

from .coords import normalized_to_pixels, pixel_centers, pixels_to_normalized
from .skeleton import Skeleton, SkeletonError, get_skeleton, list_skeletons, load_skeleton

__all__ = [
    "Skeleton", "SkeletonError", "get_skeleton", "list_skeletons", "load_skeleton",
    "normalized_to_pixels", "pixels_to_normalized", "pixel_centers",
]
