"""Evaluation: keypoint metrics (pure functions) and supervised post-processing."""

from .metrics import (
    average_by_category, bbox_normalizer, evaluate_keypoints, flip_keypoints, image_normalizer,
    interocular_normalised_error, interocular_normalised_errors, keypoint_errors,
    mean_error_fraction, mean_error_percent, mean_error_pixels, min_over_flip,
    orientation_correct, pck, pck_auc, pck_per_keypoint, per_image_error, to_pixels, to_unit,
)
from .regression import RidgeRegressor

__all__ = [
    "RidgeRegressor", "average_by_category", "bbox_normalizer", "evaluate_keypoints",
    "flip_keypoints", "image_normalizer", "interocular_normalised_error",
    "interocular_normalised_errors", "keypoint_errors", "mean_error_fraction",
    "mean_error_percent", "mean_error_pixels", "min_over_flip", "orientation_correct", "pck",
    "pck_auc", "pck_per_keypoint", "per_image_error", "to_pixels", "to_unit",
]
