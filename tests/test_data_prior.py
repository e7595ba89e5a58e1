"""Pose prior: COCO / .npy loading, validation, seeded subsets, skeleton mapping, sampler."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from fixtures import coco_doc, write_json

from keypointgan.data import DataError, PoseSource, PriorSampler, load_prior
from keypointgan.pose.coords import pixels_to_normalized
from keypointgan.pose.skeleton import get_skeleton


def _poses(m: int, k: int, size=(64, 64), seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(0, min(size) - 1, (m, k, 2))


def test_npy_prior_normalised(tmp_path):
    sk = get_skeleton("synth_humanoid")
    arr = _poses(20, sk.num_keypoints)
    np.save(tmp_path / "p.npy", arr)
    prior = load_prior(tmp_path / "p.npy", sk, image_size=[64, 64])
    assert isinstance(prior, PoseSource) and prior.poses().shape == (20, sk.num_keypoints, 2)
    np.testing.assert_allclose(prior.poses().numpy(), pixels_to_normalized(arr, 64), atol=1e-6)
    assert prior.visible.all()


def test_npy_errors(tmp_path):
    sk = get_skeleton("synth_humanoid")
    k = sk.num_keypoints
    np.save(tmp_path / "wrongk.npy", _poses(4, k + 1))
    with pytest.raises(DataError, match=rf"wrongk.npy: poses have K={k + 1} keypoints.*K={k}"):
        load_prior(tmp_path / "wrongk.npy", sk, image_size=64)
    arr = _poses(6, k)
    arr[4, 3, 1] = np.nan
    np.save(tmp_path / "nan.npy", arr)
    with pytest.raises(DataError, match=r"nan.npy: row 4, keypoint 3 has a NaN/inf"):
        load_prior(tmp_path / "nan.npy", sk, image_size=64)
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match="obj.npy: cannot read"):
        load_prior(tmp_path / "obj.npy", sk, image_size=64)
    np.save(tmp_path / "ok.npy", _poses(3, k))
    with pytest.raises(DataError, match="prior_image_size"):
        load_prior(tmp_path / "ok.npy", sk)
    with pytest.raises(DataError, match="not found"):
        load_prior(tmp_path / "none.npy", sk, image_size=64)


def test_coco_prior_normalised_per_image(tmp_path):
    sk = get_skeleton("synth_humanoid")
    k = sk.num_keypoints
    imgs = [{"id": 1, "file_name": "", "width": 64, "height": 64},
            {"id": 2, "file_name": "", "width": 128, "height": 128},
            {"id": 3, "file_name": "", "width": 100, "height": 50}]
    kps = [_poses(1, k, seed=i)[0] for i in range(3)]
    vis = [np.full(k, 2), np.full(k, 2), np.r_[np.zeros(2), np.full(k - 2, 2)]]
    doc = coco_doc(imgs, kps, sk.keypoint_names, sk.edges, vis)
    path = write_json(tmp_path / "prior.json", doc)
    prior = load_prior(path, sk)
    np.testing.assert_allclose(prior.poses()[0].numpy(), pixels_to_normalized(kps[0], 64), atol=1e-6)
    np.testing.assert_allclose(prior.poses()[1].numpy(), pixels_to_normalized(kps[1], 128), atol=1e-6)
    # non-square: the centred square (columns 25..74), as frames are cropped
    np.testing.assert_allclose(prior.poses()[2, 5].numpy(), pixels_to_normalized(kps[2][5] - [25, 0], 50),
                               atol=1e-6)
    full = load_prior(path, sk, crop="full")
    np.testing.assert_allclose(full.poses()[2, 5].numpy(), pixels_to_normalized(kps[2][5], (100, 50)), atol=1e-6)
    # v = 0 keypoints are missing: masked, placed at the mean of the visible ones
    assert not prior.visible[2, :2].any() and prior.visible[2, 2:].all()
    assert torch.allclose(prior.poses()[2, 0], prior.poses()[2, 2:].mean(0), atol=1e-6)
    with pytest.raises(DataError, match=r"prior.json: category 1 lists 15 keypoint names.*K=32"):
        load_prior(path, get_skeleton("h36m"))


def test_subset_is_seeded():
    sk = get_skeleton("synth_humanoid")
    from keypointgan.data import PriorPoses
    prior = PriorPoses(torch.randn(100, sk.num_keypoints, 2), torch.ones(100, sk.num_keypoints, dtype=torch.bool), sk)
    a, b, c = prior.subset(50, seed=1), prior.subset(50, seed=1), prior.subset(50, seed=2)
    assert len(a) == 50 and torch.equal(a.poses(), b.poses()) and not torch.equal(a.poses(), c.poses())
    assert len({tuple(p.flatten().tolist()) for p in a.poses()}) == 50  # distinct poses
    with pytest.raises(DataError, match="subset of 500 prior poses, but it has 100"):
        prior.subset(500)


def test_num_from_file(tmp_path):
    sk = get_skeleton("synth_humanoid")
    np.save(tmp_path / "p.npy", _poses(30, sk.num_keypoints))
    p = load_prior(tmp_path / "p.npy", sk, image_size=64, num=5, seed=3)
    assert len(p) == 5
    assert torch.equal(p.poses(), load_prior(tmp_path / "p.npy", sk, image_size=64, num=5, seed=3).poses())


def test_map_3dhp_to_h36m(tmp_path):
    src, dst = get_skeleton("mpi_inf_3dhp"), get_skeleton("h36m")
    arr = _poses(8, src.num_keypoints, size=(128, 128))
    np.save(tmp_path / "hp.npy", arr)
    prior = load_prior(tmp_path / "hp.npy", dst, image_size=128, prior_skeleton=src)
    assert prior.poses().shape == (8, 32, 2) and prior.skeleton is dst
    shared = [n for n in src.keypoint_names if n in dst.keypoint_names]
    assert len(shared) >= 17  # the 17 evaluation joints, plus clavicles and hands
    assert int(prior.visible[0].sum()) == len(shared)
    for n in ("pelvis", "l_wrist", "head_top", "r_ankle"):
        np.testing.assert_allclose(prior.poses()[:, dst.index(n)].numpy(),
                                   pixels_to_normalized(arr[:, src.index(n)], 128), atol=1e-6)
    for n in ("thorax", "r_toes", "l_thumb"):
        assert not prior.visible[:, dst.index(n)].any()
    assert torch.isfinite(prior.poses()).all()


def test_prior_sampler_seeded_resumable():
    sk = get_skeleton("synth_humanoid")
    from keypointgan.data import PriorPoses
    prior = PriorPoses(torch.randn(40, sk.num_keypoints, 2), torch.ones(40, sk.num_keypoints, dtype=torch.bool), sk)
    s = PriorSampler(prior, 8, seed=4)
    it = iter(s)
    for _ in range(3):
        next(it)
    nxt = next(it)
    assert nxt["keypoints"].shape == (8, sk.num_keypoints, 2) and nxt["visible"].shape == (8, sk.num_keypoints)
    r = PriorSampler(prior, 8)
    r.load_state_dict({"seed": 4, "step": 3})
    assert torch.equal(next(iter(r))["keypoints"], nxt["keypoints"])
