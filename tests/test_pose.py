"""The dual pose representation: skeleton data, coordinates, beta and soft-argmax."""

import json

import numpy as np
import pytest
import torch

from keypointgan.pose import (Skeleton, SkeletonError, get_skeleton, heatmaps_to_keypoints, keypoint_confidence,
                              list_skeletons, load_skeleton, normalized_to_pixels, pixel_centers,
                              pixels_to_normalized, render_skeleton)
from keypointgan.pose.render import SkeletonRenderer, render_skeleton_dense
from keypointgan.pose.skeleton import name_mapping, save_skeleton


# -- skeletons as data ---------------------------------------------------------------
def test_builtin_skeletons_match_the_release_facts():
    assert set(list_skeletons()) >= {"h36m", "mpi_inf_3dhp", "ibug68", "cat_head", "synth_humanoid"}
    h36 = get_skeleton("h36m")
    assert h36.num_keypoints == 32
    simple = {(1, 11), (2, 1), (3, 2), (5, 3), (6, 11), (7, 6), (8, 7), (10, 8), (13, 11), (15, 13), (17, 13),
              (18, 17), (19, 18), (25, 13), (26, 25), (27, 26)}
    assert set(h36.edges) == simple
    assert len(get_skeleton("h36m:full").edges) == 19
    assert sorted(h36.subset("eval17")) == [1, 2, 3, 6, 7, 8, 11, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27]
    pairs = {tuple(sorted(p)) for p in h36.flip_pairs}
    assert pairs == {(1, 6), (2, 7), (3, 8), (4, 9), (5, 10), (16, 24), (17, 25), (18, 26), (19, 27), (20, 28),
                     (21, 29), (22, 30), (23, 31)}
    assert get_skeleton("mpi_inf_3dhp").num_keypoints == 28
    face = get_skeleton("ibug68")
    assert face.num_keypoints == 68 and face.subset("outer_eye_corners") == (36, 45)
    assert face.flip_permutation()[36] == 45 and face.flip_permutation()[0] == 16
    assert len(get_skeleton("cat_head").subset("seven")) == 7
    assert get_skeleton("synth_humanoid").num_keypoints >= 14


def test_flip_permutation_is_an_involution():
    for name in list_skeletons():
        perm = get_skeleton(name).flip_permutation()
        assert [perm[p] for p in perm] == list(range(len(perm)))


def test_user_skeleton_file_and_coco_category_roundtrip(tmp_path):
    sk = get_skeleton("synth_humanoid")
    save_skeleton(sk, tmp_path / "mine.yaml")
    again = get_skeleton(tmp_path / "mine.yaml")
    assert again.keypoint_names == sk.keypoint_names and again.edges == sk.edges
    assert again.flip_pairs == sk.flip_pairs
    cat = sk.to_coco_category()
    (tmp_path / "coco.json").write_text(json.dumps({"categories": [cat], "images": [], "annotations": []}))
    from_coco = load_skeleton(tmp_path / "coco.json")
    assert from_coco.edges == sk.edges
    assert {tuple(sorted(p)) for p in from_coco.flip_pairs} == {tuple(sorted(p)) for p in sk.flip_pairs}


def test_name_mapping_3dhp_to_h36m_covers_the_common_17():
    src, dst = get_skeleton("mpi_inf_3dhp"), get_skeleton("h36m")
    mapped = {src.keypoint_names[i] for i, j in name_mapping(src, dst)}
    assert {src.keypoint_names[i] for i in src.subset("common_h36m")} <= mapped
    assert all(src.keypoint_names[i] == dst.keypoint_names[j] for i, j in name_mapping(src, dst))


@pytest.mark.parametrize("text,msg", [
    ("name: x\nkeypoints: [a, b]\nlinks: [[a, c]]\n", "unknown keypoint name 'c'"),
    ("name: x\nkeypoints: [a, a]\nlinks: [[0, 1]]\n", "duplicate keypoint names"),
    ("name: x\nkeypoints: [a, b]\nlinks: [[0, 5]]\n", "out of range"),
    ("keypoints: [a, b]\nlinks: [[0, 1]]\n", "missing required field 'name'"),
    ("name: x\nkeypoints: [a, b]\nlinks: [[0, 1]\n", "cannot parse"),
])
def test_bad_skeleton_files_name_file_and_cause(tmp_path, text, msg):
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    with pytest.raises(SkeletonError) as e:
        load_skeleton(p)
    assert msg in str(e.value) and "bad.yaml" in str(e.value)


def test_unknown_skeleton_and_wrong_k():
    with pytest.raises(SkeletonError, match="unknown skeleton"):
        get_skeleton("no_such_skeleton")
    sk = get_skeleton("synth_humanoid")
    with pytest.raises(SkeletonError, match=r"expected \(\.\.\., 15, 2\)"):
        SkeletonRenderer(sk, 16)(torch.zeros(1, 14, 2))


# -- coordinates -----------------------------------------------------------------------
def test_pixel_normalised_round_trip_and_pixel_centres():
    xy = np.array([[0.0, 0.0], [63.0, 31.0], [-0.5, -0.5]])
    uv = pixels_to_normalized(xy, (64, 32))
    assert np.allclose(uv[0], [-1 + 1 / 64, -1 + 1 / 32])
    assert np.allclose(uv[1], [1 - 1 / 64, 1 - 1 / 32])
    assert np.allclose(uv[2], [-1, -1])  # outer edge of the first pixel
    assert np.allclose(normalized_to_pixels(uv, (64, 32)), xy)
    t = torch.tensor(xy, dtype=torch.float32)
    assert torch.allclose(normalized_to_pixels(pixels_to_normalized(t, 64), 64), t, atol=1e-5)
    # pixel centres of a coarse grid are the centres of the fine pixels' blocks: no drift
    fine, coarse = pixel_centers(128), pixel_centers(16)
    assert torch.allclose(coarse, fine.view(16, 8).mean(1), atol=1e-6)


# -- the renderer beta -----------------------------------------------------------------
def _random_pose(b, k, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, k, 2, generator=g, dtype=dtype) * 1.6 - 0.8


@pytest.mark.parametrize("form", ["release", "paper"])
def test_renderer_matches_brute_force_and_its_gradients(form):
    sk = get_skeleton("h36m:full")
    kp = _random_pose(3, 32, torch.float64).requires_grad_()
    fast = render_skeleton(kp, sk.edges, (20, 24), 0.2, form)
    ref = render_skeleton_dense(kp, sk.edges, (20, 24), 0.2, form)
    assert torch.allclose(fast, ref, atol=1e-12)
    w = torch.randn_like(ref)
    g1, = torch.autograd.grad((fast * w).sum(), kp)
    g2, = torch.autograd.grad((ref * w).sum(), kp)
    assert torch.allclose(g1, g2, atol=1e-9)


@pytest.mark.parametrize("form", ["release", "paper"])
def test_renderer_gradcheck(form):
    sk = get_skeleton("synth_humanoid")
    kp = _random_pose(2, 15, torch.float64, seed=1).requires_grad_()
    assert torch.autograd.gradcheck(lambda k: render_skeleton(k, sk.edges, (9, 11), 0.3, form), (kp,))


def test_renderer_brute_force_by_hand():
    # one horizontal link from (-0.5, 0) to (0.5, 0) on a 4x4 grid: centres at +-0.25, +-0.75
    kp = torch.tensor([[[-0.5, 0.0], [0.5, 0.0]]])
    img = render_skeleton(kp, [(0, 1)], 4, sigma=0.5, form="paper")[0, 0]
    gy, gx = torch.meshgrid(pixel_centers(4), pixel_centers(4), indexing="ij")
    dx = (gx.abs() - 0.5).clamp_min(0)
    expected = torch.exp(-(dx**2 + gy**2) / 0.25)
    assert torch.allclose(img, expected, atol=1e-6)


def test_renderer_degenerate_link_is_safe():
    kp = torch.full((1, 2, 2), 0.125, dtype=torch.float64, requires_grad=True)  # coincident, on a pixel centre
    img = render_skeleton(kp, [(0, 1)], 8)
    img.sum().backward()
    assert torch.isfinite(img).all() and torch.isfinite(kp.grad).all()
    assert img.max() > 0.5


def test_renderer_scales_with_resolution():
    sk = get_skeleton("synth_humanoid")
    kp = _random_pose(1, 15)
    hi = render_skeleton(kp, sk.edges, 128, form="paper")
    lo = render_skeleton(kp, sk.edges, 32, form="paper")
    assert torch.allclose(torch.nn.functional.avg_pool2d(hi, 4), lo, atol=0.08)


def test_renderer_signed_range_and_autocast_dtype():
    sk = get_skeleton("synth_humanoid")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = SkeletonRenderer(sk, 16, signed=True)(_random_pose(2, 15))
    assert y.dtype == torch.float32 and y.min() >= -1 and y.max() <= 1 and y.max() > 0.5


# -- soft-argmax -------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["marginal", "spatial"])
def test_soft_argmax_of_a_peak_is_its_pixel_centre(mode):
    hm = torch.full((1, 2, 16, 16), -1e4)
    hm[0, 0, 3, 12] = 0.0
    hm[0, 1, 15, 0] = 0.0
    kp = heatmaps_to_keypoints(hm, mode)
    c = pixel_centers(16)
    if mode == "spatial":
        assert torch.allclose(kp[0, 0], torch.stack([c[12], c[3]]), atol=1e-5)
        assert torch.allclose(kp[0, 1], torch.stack([c[0], c[15]]), atol=1e-5)
    conf = keypoint_confidence(hm * 100 if mode == "marginal" else hm, mode)
    assert conf.shape == (1, 2)


def test_soft_argmax_marginal_follows_release_definition():
    g = torch.Generator().manual_seed(0)
    hm = torch.randn(2, 3, 8, 8, generator=g)
    kp = heatmaps_to_keypoints(hm, "marginal")
    px = hm.mean(2).softmax(-1)
    assert torch.allclose(kp[..., 0], (px * pixel_centers(8)).sum(-1), atol=1e-6)


def test_confidence_is_high_for_sharp_and_low_for_flat_heatmaps():
    sharp = torch.zeros(1, 1, 16, 16)
    sharp[0, 0, 5, 5] = 50.0
    flat = torch.zeros(1, 1, 16, 16)
    assert keypoint_confidence(sharp, "spatial") > 0.9
    assert keypoint_confidence(flat, "spatial") < 0.1


def test_renderer_leaves_out_links_with_a_missing_end():
    sk = get_skeleton("synth_humanoid")
    kp = _random_pose(2, 15, torch.float64, seed=3).requires_grad_()
    vis = torch.ones(2, 15, dtype=torch.bool)
    vis[0, sk.index("l_wrist")] = False
    keep = [e for e in sk.edges if sk.index("l_wrist") not in e]
    masked = render_skeleton(kp, sk.edges, 16, visible=vis)
    assert torch.allclose(masked[0], render_skeleton(kp[:1], keep, 16)[0])
    assert torch.allclose(masked[1], render_skeleton(kp[1:], sk.edges, 16)[0])
    assert torch.autograd.gradcheck(lambda k: render_skeleton(k, sk.edges, (7, 9), 0.3, visible=vis), (kp,))
    masked.sum().backward()
    assert float(kp.grad[0, sk.index("l_wrist")].abs().sum()) == 0.0  # a missing keypoint gets no gradient
