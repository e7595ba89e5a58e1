"""Crop + resize keep keypoints and image content consistent with pose.coords."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from keypointgan.data import CropBox, bbox_box, center_box, crop_resize, to_tensor, to_uint8
from keypointgan.pose.coords import pixel_centers, pixels_to_normalized


def _centroid(img: np.ndarray) -> np.ndarray:
    w = img[..., 0].astype(np.float64)
    ys, xs = np.mgrid[: img.shape[0], : img.shape[1]]
    return np.array([(w * xs).sum(), (w * ys).sum()]) / w.sum()


def test_center_box_is_identity_for_square():
    box = center_box(64, 64)
    xy = np.array([[0.0, 0.0], [63.0, 10.5], [-0.5, 63.5]])
    np.testing.assert_allclose(box.to_normalized(xy), pixels_to_normalized(xy, 64))
    np.testing.assert_allclose(box.to_pixels(box.to_normalized(xy)), xy)


def test_center_crop_of_wide_image():
    box = center_box(100, 60)  # keeps columns 20..79
    assert (box.x0, box.y0, box.size) == (19.5, -0.5, 60.0)
    np.testing.assert_allclose(box.to_normalized(np.array([[20.0, 0.0]])), [[-1 + 1 / 60, -1 + 1 / 60]])
    img = np.zeros((60, 100, 3), np.uint8)
    img[:, 20:80] = 200
    out = crop_resize(img, box, 60)
    assert out.shape == (60, 60, 3) and (out == 200).all()


@pytest.mark.parametrize("factor", [2, 4])
def test_downscale_keeps_pixel_centres(factor):
    """A keypoint at the centre of output pixel j's footprint lands on pixel j's centre."""
    n, size = 32 * factor, 32
    j = (9, 20)  # output pixel (x, y)
    img = np.zeros((n, n, 3), np.uint8)
    img[j[1] * factor:(j[1] + 1) * factor, j[0] * factor:(j[0] + 1) * factor] = 255
    kp = np.array([[j[0] * factor + (factor - 1) / 2, j[1] * factor + (factor - 1) / 2]])
    box = center_box(n, n)
    uv = box.to_normalized(kp)
    centres = pixel_centers(size, dtype=torch.float64).numpy()
    np.testing.assert_allclose(uv[0], [centres[j[0]], centres[j[1]]], atol=1e-12)
    out = crop_resize(img, box, size)
    assert np.unravel_index(out[..., 0].argmax(), out.shape[:2]) == (j[1], j[0])
    np.testing.assert_allclose(_centroid(out), j, atol=1e-6)


def test_upscale_keeps_pixel_centres():
    img = np.zeros((16, 16, 3), np.uint8)
    img[5, 11] = 255
    box = center_box(16, 16)
    out = crop_resize(img, box, 64)
    uv = box.to_normalized(np.array([[11.0, 5.0]]))
    # normalised -> output pixels: the centroid of the upsampled dot is the same point
    px = (uv + 1) * 64 / 2 - 0.5
    np.testing.assert_allclose(_centroid(out), px[0], atol=1e-6)


def test_integer_crop_box_then_resize():
    """An offset square crop of a 64 px image resized x1/2: pixel centres still agree."""
    img = np.zeros((64, 64, 3), np.uint8)
    img[30:32, 40:42] = 255  # a 2x2 block centred at (40.5, 30.5)
    box = CropBox(15.5, 9.5, 40.0)  # columns 16..55, rows 10..49
    out = crop_resize(img, box, 20)
    uv = box.to_normalized(np.array([[40.5, 30.5]]))
    px = (uv[0] + 1) * 20 / 2 - 0.5  # the block covers crop pixels 24-25 / 20-21 -> output pixel (12, 10)
    np.testing.assert_allclose(px, (12.0, 10.0))
    assert np.unravel_index(out[..., 0].argmax(), out.shape[:2]) == (10, 12)
    np.testing.assert_allclose(_centroid(out), px, atol=1e-6)


def test_bbox_box_margin_and_padding():
    box = bbox_box([10, 20, 30, 10], margin=0.5)
    assert box.size == 45 and (box.x0 + box.size / 2, box.y0 + box.size / 2) == (25, 25)
    img = np.full((40, 40, 3), 100, np.uint8)
    out = crop_resize(img, CropBox(-20.5, -20.5, 80.0), 8)  # 4x the image, centred: border is black
    assert out[0, 0].tolist() == [0, 0, 0] and (out[3:5, 3:5] == 100).all()
    with pytest.raises(ValueError):
        bbox_box([0, 0, 0, 5])


def test_tensor_roundtrip():
    img = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    t = to_tensor(img)
    assert t.shape == (3, 5, 7) and t.min() >= -1 and t.max() <= 1
    assert (to_uint8(t) == img).all()
    # torch keypoints through the box too
    box = center_box(8, 8)
    uv = box.to_normalized(torch.tensor([[3.0, 4.0]]))
    assert isinstance(uv, torch.Tensor) and torch.allclose(box.to_pixels(uv), torch.tensor([[3.0, 4.0]]))
