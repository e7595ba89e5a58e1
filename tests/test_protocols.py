"""Named evaluation protocols: each computes its headline itself, and agrees with the metrics."""

from __future__ import annotations

import numpy as np
import pytest

from keypointgan.config import ConfigError
from keypointgan.eval.methods import LEGACY_KEYS, columns, summary_keys, upgrade_metrics
from keypointgan.eval.metrics import evaluate_keypoints
from keypointgan.eval.protocols import PROTOCOLS, get_protocol, list_protocols
from keypointgan.pose import get_skeleton

SKELETON = {"simplified_h36m": "synth_humanoid", "h36m_17": "h36m", "iod_nme": "ibug68", "pck": "synth_humanoid"}


def poses(k: int, n: int = 12, seed: int = 0, noise: float = 0.08):
    rng = np.random.default_rng(seed)
    gt = rng.uniform(-0.8, 0.8, (n, k, 2))
    return gt + rng.normal(0, noise, gt.shape), gt, [f"c{i % 3}" for i in range(n)]


def test_the_protocols_are_named():
    assert list_protocols() == ["simplified_h36m", "h36m_17", "iod_nme", "pck"]
    assert set(SKELETON) == set(PROTOCOLS)
    with pytest.raises(ConfigError, match="unknown evaluation protocol 'mpjpe'.*simplified_h36m, h36m_17"):
        get_protocol("mpjpe")


@pytest.mark.parametrize("name", list(SKELETON))
def test_the_headline_is_the_protocols_own_and_matches_evaluate_keypoints(name):
    p, sk = get_protocol(name), get_skeleton(SKELETON[name])
    pred, gt, cats = poses(sk.num_keypoints)
    vis = np.ones(gt.shape[:2], bool)
    vis[0, :3] = False
    ref = evaluate_keypoints(pred, gt, cats, sk, 64, space="normalized", visible=vis)
    out = p.score(pred, gt, cats, sk, 64, vis)
    assert set(out) == set(ref)  # every metric, whichever protocol
    assert out[p.key] == pytest.approx(ref[p.key], rel=1e-12) and out[p.key] is not None
    assert p.headline(pred, gt, cats, sk, 64, vis) == pytest.approx(ref[p.key], rel=1e-12)
    d = p.describe()
    assert d["name"] == name and d["metric"] == p.key and d["description"] and d["citation"]


def test_simplified_h36m_averages_activities_and_h36m_17_is_pixels_over_17_joints():
    sk = get_skeleton("h36m")
    gt = np.zeros((4, sk.num_keypoints, 2))
    pred = gt.copy()
    pred[:3, :, 0] += 2 * 0.1  # 10% of the image width off in three images of one activity
    cats = ["walk", "walk", "walk", "sit"]
    assert get_protocol("simplified_h36m").headline(pred, gt, cats, sk, 100) == pytest.approx(5.0)  # (10 + 0) / 2
    # 17 joints off by 4 px (of a 64 px image), the others by much more: only the 17 count
    pred = gt.copy()
    pred[:, :, 0] += 1.0
    pred[:, list(sk.subset("eval17")), 0] = gt[:, list(sk.subset("eval17")), 0] + 4 * 2 / 64
    assert get_protocol("h36m_17").headline(pred, gt, None, sk, 64) == pytest.approx(4.0)


def test_iod_nme_divides_by_the_outer_eye_corners():
    sk = get_skeleton("ibug68")
    left, right = sk.subset("outer_eye_corners")
    gt = np.zeros((1, 68, 2))
    gt[0, left], gt[0, right] = (-0.5, 0.0), (0.5, 0.0)  # eye corners 32 px apart at 64 px
    pred = gt + np.array([2 * 3.2 / 64, 0.0])  # every point 3.2 px off: 10% of the distance
    assert get_protocol("iod_nme").headline(pred, gt, None, sk, 64) == pytest.approx(10.0)


def test_a_protocol_refuses_a_skeleton_without_what_it_needs():
    sk = get_skeleton("synth_humanoid")
    pred, gt, _ = poses(sk.num_keypoints)
    for name, subset in (("iod_nme", "outer_eye_corners"), ("h36m_17", "eval17")):
        with pytest.raises(ConfigError, match=f"'{name}' needs a skeleton with a '{subset}' subset.*data.protocol"):
            get_protocol(name).score(pred, gt, None, sk, 64)


def test_columns_and_summary_add_the_headline_once():
    base = [k for k, _ in columns()]
    assert base == ["error_percent", "error_percent_min_over_flip", "error_px", "pck@0.05", "pck@0.1", "auc@30px"]
    assert [k for k, _ in columns(get_protocol("simplified_h36m"))] == base
    assert [k for k, _ in columns(get_protocol("iod_nme"))] == base + ["nme_interocular_percent"]
    assert dict(columns(arrows=True))["pck@0.1"] == "PCK@0.1 (↑)"
    assert summary_keys(get_protocol("pck")) == summary_keys()
    assert summary_keys(get_protocol("h36m_17"))[-1] == "error_px_eval17"


def test_old_metrics_files_read_with_the_new_row_names(tmp_path):
    from keypointgan.commands.evaluate import read_metrics

    assert LEGACY_KEYS["unsupervised_raw"] == "unsupervised_no_lr_fix"
    old = {"methods": {"unsupervised": {"error_percent": 9.0}, "unsupervised_raw": {"error_percent": 11.0}},
           "per_category_error_percent": {"walk": {"unsupervised": 9.0, "unsupervised_raw": 11.0}},
           "summary": {"step": 3, "error_percent": {"unsupervised": 9.0, "unsupervised_raw": 11.0}}}
    new = upgrade_metrics(old)
    assert list(new["methods"]) == ["unsupervised", "unsupervised_no_lr_fix"]
    assert new["per_category_error_percent"]["walk"]["unsupervised_no_lr_fix"] == 11.0
    assert new["summary"]["error_percent"]["unsupervised_no_lr_fix"] == 11.0 and new["summary"]["step"] == 3
    assert "unsupervised_raw" in old["methods"]  # the input is not changed
    (tmp_path / "metrics.json").write_text(__import__("json").dumps(old))
    assert read_metrics(tmp_path) == new == read_metrics(tmp_path / "metrics.json")
