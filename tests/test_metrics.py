"""Evaluation metrics and the post-processing regressor against hand-computed values."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from keypointgan.eval import (
    RidgeRegressor, average_by_category, bbox_normalizer, evaluate_keypoints, flip_keypoints,
    image_normalizer, interocular_normalised_error, keypoint_errors, mean_error_fraction,
    mean_error_percent, mean_error_pixels, min_over_flip, orientation_correct, pck, pck_auc,
    pck_per_keypoint, per_image_error, to_pixels, to_unit,
)
from keypointgan.pose.skeleton import Skeleton

approx = pytest.approx

# 2 images, 3 keypoints: distances are 3-4-5 triangles.
PRED = np.array([[[0, 0], [3, 4], [1, 1]], [[0, 0], [0, 0], [0, 0]]], dtype=float)
GT = np.array([[[0, 0], [0, 0], [1, 1]], [[6, 8], [0, 1], [0, 0]]], dtype=float)


# -- distances --------------------------------------------------------------------------
def test_keypoint_errors_and_visibility():
    assert keypoint_errors(PRED, GT) == approx(np.array([[0, 5, 0], [10, 1, 0]]))
    d = keypoint_errors(PRED, GT, visible=[[1, 0, 1], [1, 1, 1]])
    assert math.isnan(d[0, 1]) and d[1, 0] == 10
    assert per_image_error(PRED, GT) == approx([5 / 3, 11 / 3])
    assert per_image_error(PRED, GT, visible=[[1, 0, 1], [1, 1, 1]]) == approx([0.0, 11 / 3])
    assert per_image_error(PRED, GT, indices=[0, 1]) == approx([2.5, 5.5])
    # a single (K, 2) pose and torch tensors are accepted
    assert keypoint_errors(torch.tensor(PRED[0]), torch.tensor(GT[0])) == approx(np.array([[0, 5, 0]]))


def test_bad_shapes_are_rejected():
    with pytest.raises(ValueError, match="shapes differ"):
        keypoint_errors(PRED, GT[:, :2])
    with pytest.raises(ValueError, match="visibility"):
        keypoint_errors(np.zeros((2, 3, 3)), np.zeros((2, 3, 3)))


# -- Simplified Human3.6M -------------------------------------------------------------
# gt at the image centre; x offsets (fractions of the image) per image: mean 0.02, 0.04, 0.06.
OFFS = np.array([[0.01, 0.03], [0.04, 0.04], [0.09, 0.03]])
GT_U = np.full((3, 2, 2), 0.5)
PRED_U = GT_U.copy()
PRED_U[..., 0] += OFFS
CATS = ["walk", "walk", "pose"]


def test_category_average_is_mean_of_category_means():
    overall, per = mean_error_fraction(PRED_U, GT_U, CATS)
    assert per == {"pose": approx(0.06), "walk": approx(0.03)}
    assert overall == approx(0.045)  # (0.03 + 0.06) / 2, not the image mean 0.04
    assert mean_error_fraction(PRED_U, GT_U, CATS, category_average=False)[0] == approx(0.04)
    assert mean_error_fraction(PRED_U, GT_U)[0] == approx(0.04)
    pct, per_pct = mean_error_percent(PRED_U, GT_U, CATS)
    assert pct == approx(4.5) and per_pct == {"pose": approx(6.0), "walk": approx(3.0)}


def test_error_fraction_from_normalized_and_pixel_input():
    norm = (2 * PRED_U - 1, 2 * GT_U - 1)
    assert mean_error_fraction(*norm, CATS, space="normalized")[0] == approx(0.045)
    px = (PRED_U * 100 - 0.5, GT_U * 100 - 0.5)  # COCO pixels of a 100x100 image
    assert mean_error_fraction(*px, CATS, space="pixels", image_size=100)[0] == approx(0.045)
    assert to_unit(np.array([-1.0, 1.0]), "normalized") == approx([0.0, 1.0])
    assert to_pixels(np.array([[0.0, 0.0]]), "normalized", (64, 32)) == approx(np.array([[31.5, 15.5]]))
    assert to_unit(np.array([[31.5, 15.5]]), "pixels", (64, 32)) == approx(np.array([[0.5, 0.5]]))


def test_average_by_category_skips_nan_images():
    overall, per = average_by_category([1.0, np.nan, 3.0], ["a", "a", "b"])
    assert per == {"a": 1.0, "b": 3.0} and overall == 2.0


# -- left/right ------------------------------------------------------------------------
PERM = [0, 2, 1]  # keypoints 1 and 2 are a left/right pair
GT_LR = np.array([[[0.5, 0.2], [0.3, 0.5], [0.7, 0.5]]])


def test_min_over_flip_forgives_a_swapped_prediction():
    pred = GT_LR[:, PERM]  # exactly the left/right-swapped ground truth
    assert flip_keypoints(GT_LR, PERM) == approx(pred)
    assert per_image_error(pred, GT_LR) == approx([0.8 / 3])
    assert min_over_flip(pred, GT_LR, PERM) == approx([0.0])
    assert mean_error_percent(pred, GT_LR)[0] == approx(80 / 3)
    assert mean_error_percent(pred, GT_LR, flip_perm=PERM)[0] == approx(0.0)
    # an unswapped, slightly-off prediction keeps its plain error (0.03 on every keypoint)
    near = GT_LR + np.array([0.03, 0.0])
    assert min_over_flip(near, GT_LR, PERM) == approx([0.03])


def test_orientation_correct_swaps_exactly_the_flipped_images():
    ref = np.array([[[0.5, 0.2], [0.3, 0.5], [0.7, 0.5]],
                    [[0.5, 0.2], [0.3, 0.5], [0.7, 0.5]],
                    [[0.5, 0.2], [0.5, 0.5], [0.5, 0.5]]])
    pred = np.array([[[0.5, 0.2], [0.72, 0.5], [0.31, 0.5]],   # swapped w.r.t. ref -> swap
                     [[0.5, 0.2], [0.32, 0.5], [0.69, 0.5]],   # agrees with ref -> keep
                     [[0.5, 0.2], [0.4, 0.5], [0.6, 0.5]]])    # tie -> keep
    out, swapped = orientation_correct(pred, ref, PERM)
    assert swapped.tolist() == [True, False, False]
    assert out[0] == approx(np.array([[0.5, 0.2], [0.31, 0.5], [0.72, 0.5]]))
    assert out[1:] == approx(pred[1:])
    out_t, swapped_t = orientation_correct(torch.tensor(pred), torch.tensor(ref), PERM)
    assert isinstance(out_t, torch.Tensor) and swapped_t.tolist() == [True, False, False]
    assert out_t.numpy() == approx(out)


# -- full Human3.6M ---------------------------------------------------------------------
def test_mean_error_pixels_subset_and_categories():
    pred = np.array([[[3, 4], [100, 0], [0, 0]], [[6, 8], [100, 0], [1, 0]]], dtype=float)
    gt = np.zeros_like(pred)
    overall, per = mean_error_pixels(pred, gt, subset=[0, 2], categories=["x", "y"])
    assert overall == approx(4.0)  # image errors 2.5 and 5.5
    assert per == {"x": approx(2.5), "y": approx(5.5)}
    assert mean_error_pixels(pred, gt)[0] == approx((105 / 3 + 111 / 3) / 2)


# -- 300-W -------------------------------------------------------------------------------
def test_interocular_normalised_error():
    gt = np.array([[[0, 0], [5, 0], [10, 0]], [[0, 0], [0, 20], [0, 40]]], dtype=float)
    err = np.array([[[1, 0], [0, 0], [0, 2]], [[2, 0], [0, 2], [-2, 0]]], dtype=float)
    # image 0: mean error 1 / iod 10 = 0.1; image 1: 2 / 40 = 0.05 -> 7.5 %
    assert interocular_normalised_error(gt + err, gt, left_idx=0, right_idx=2) == approx(7.5)
    # default indices: outer eye corners of 68-point iBUG
    g68 = np.zeros((1, 68, 2))
    g68[0, 45] = [50.0, 0.0]
    p68 = g68 + np.array([1.0, 0.0])
    assert interocular_normalised_error(p68, g68) == approx(2.0)


# -- PCK / AUC (mmpose definitions) ------------------------------------------------------
def test_pck_mean_of_per_keypoint_accuracies():
    gt = np.zeros((2, 3, 2))
    pred = np.array([[[0.5, 0], [1.5, 0], [0, 0]], [[1.5, 0], [3.0, 0], [2.5, 0]]])
    vis = [[1, 1, 1], [1, 1, 0]]
    norm = [10.0, 20.0]  # per image, e.g. bbox size: normalised d = [.05 .15 0], [.075 .15 --]
    assert pck_per_keypoint(pred, gt, vis, 0.1, norm) == approx([1.0, 0.0, 1.0])
    assert pck(pred, gt, vis, 0.1, norm) == approx(2 / 3)  # pooled would be 3/5
    assert pck(pred, gt, vis, 0.05, norm) == approx(1 / 3)  # strict: 0.05 is not < 0.05
    assert pck(pred, gt, vis, 0.2, norm) == approx(1.0)
    assert bbox_normalizer([[0, 0, 10, 4], [1, 1, 3, 21]]) == approx([10.0, 20.0])
    assert bbox_normalizer([[5, 5, 4, 8]], fmt="xywh") == approx([8.0])
    # per-axis normaliser (image width, height): dx / 64 and dy / 32
    p2, g2 = np.array([[[3.2, 0.0], [0.0, 3.2]]]), np.zeros((1, 2, 2))
    assert pck(p2, g2, None, 0.06, image_normalizer((64, 32), 1)) == approx(0.5)


def test_pck_auc_matches_mmpose_thresholds():
    gt = np.zeros((1, 2, 2))
    pred = np.array([[[1.0, 0.0], [6.0, 0.0]]])
    # thresholds i/4 = 0, .25, .5, .75 of 10 px; normalised d = .1, .6 -> PCK 0, .5, .5, 1
    assert pck_auc(pred, gt, None, norm_factor=10.0, num_thresholds=4) == approx(0.5)
    assert pck_auc(gt, gt, None, norm_factor=30.0, num_thresholds=20) == approx(0.95)


# -- evaluate_keypoints ------------------------------------------------------------------
def test_evaluate_keypoints_dict():
    sk = Skeleton("toy", ("a", "l", "r"), ((0, 1), (0, 2)), flip_pairs=((1, 2),),
                  subsets={"arms": (1, 2)})
    gt = np.repeat(2 * GT_LR - 1, 2, axis=0)  # normalised, 2 images
    pred = gt.copy()
    pred[0] = pred[0][PERM]  # image 0 left/right swapped, image 1 exact
    out = evaluate_keypoints(pred, gt, ["c1", "c2"], sk, 100)
    assert out["error_percent"] == approx(80 / 6)  # (80/3 + 0) / 2
    assert out["error_percent_per_category"] == {"c1": approx(80 / 3), "c2": approx(0.0)}
    assert out["error_percent_min_over_flip"] == approx(0.0)
    assert out["error_px"] == approx(80 / 6)  # 100 px image: % == px
    assert out["error_percent_arms"] == approx(20.0)  # (40 + 0) / 2
    assert out["pck@0.05"] == approx(2 / 3)  # keypoint 0 always right, 1 and 2 half the time
    assert "auc@30px" in out and out["num_images"] == 2
    json.dumps(out, allow_nan=False)


# -- supervised post-processing ----------------------------------------------------------
def test_ridge_recovers_affine_map_and_shrinks():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3, 2))
    w = rng.normal(size=(6, 4))
    b = np.array([0.5, -1.0, 2.0, 0.25])
    y = (x.reshape(40, 6) @ w + b).reshape(40, 2, 2)
    ols = RidgeRegressor().fit(x, y)
    assert ols.coef_ == approx(w, abs=1e-10) and ols.intercept_ == approx(b, abs=1e-10)
    assert ols.predict(x[:5]) == approx(y[:5], abs=1e-10)
    assert ols.predict(torch.tensor(x[:5])).shape == (5, 2, 2)
    ridge = RidgeRegressor(alpha=10.0).fit(x, y)
    assert np.linalg.norm(ridge.coef_) < np.linalg.norm(ols.coef_)
    assert np.abs(ridge.predict(x) - y).max() > 1e-3
    huge = RidgeRegressor(alpha=1e12).fit(x, y)  # everything shrunk: predicts the mean
    assert huge.predict(x[:1])[0] == approx(y.mean(axis=0), abs=1e-6)
    # closed form check on one case: w_alpha = (Xc'Xc + aI)^-1 Xc'Yc
    xc = x.reshape(40, 6) - x.reshape(40, 6).mean(0)
    yc = y.reshape(40, 4) - y.reshape(40, 4).mean(0)
    assert ridge.coef_ == approx(np.linalg.solve(xc.T @ xc + 10 * np.eye(6), xc.T @ yc))


def test_ridge_without_intercept_and_errors():
    x = np.array([[[1.0, 0.0]], [[0.0, 1.0]], [[1.0, 1.0]]])
    y = 2 * x
    r = RidgeRegressor(fit_intercept=False).fit(x, y)
    assert r.coef_ == approx(2 * np.eye(2)) and r.intercept_ == approx([0.0, 0.0])
    with pytest.raises(RuntimeError):
        RidgeRegressor().predict(x)
    with pytest.raises(ValueError, match="shape"):
        r.predict(np.zeros((1, 2, 2)))
    with pytest.raises(ValueError):
        RidgeRegressor(alpha=-1)


@pytest.mark.parametrize("suffix", [".json", ".npz"])
def test_ridge_save_load_round_trip(tmp_path, suffix):
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(10, 4, 2)), rng.normal(size=(10, 3, 2))
    r = RidgeRegressor(alpha=0.5).fit(x, y)
    path = tmp_path / f"ridge{suffix}"
    r.save(path)
    r2 = RidgeRegressor.load(path)
    assert (r2.alpha, r2.fit_intercept, r2.in_shape, r2.out_shape) == (0.5, True, (4, 2), (3, 2))
    np.testing.assert_array_equal(r2.predict(x), r.predict(x))
    with pytest.raises(ValueError):
        r.save(tmp_path / "ridge.pkl")
