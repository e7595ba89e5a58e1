"""Labelled test data: COCO JSON over frame folders and video files."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from fixtures import coco_doc, coded_frame, write_frames, write_json, write_mp4

from keypointgan.data import CropBox, DataError, LabelledFolder, LabelledSource, read_coco_keypoints, write_coco_keypoints
from keypointgan.pose.coords import pixels_to_normalized

NAMES = ["a", "b", "c"]
LINKS = [[0, 1], [1, 2]]


def _index_of(t: torch.Tensor) -> int:
    return int(round((t[0].mean().item() + 1) * 127.5 / 10))


def _setup(tmp_path):
    write_frames(tmp_path / "walk", [coded_frame(0, i) for i in range(6)])
    write_mp4(tmp_path / "clip.mp4", [coded_frame(1, i) for i in range(8)])
    write_frames(tmp_path / "wide", [coded_frame(2, i, h=20, w=40) for i in range(2)])
    images = [
        {"id": 1, "file_name": "walk/3.png", "width": 32, "height": 32, "category": "walking"},
        {"id": 2, "file_name": "clip.mp4", "frame_index": 5, "width": 32, "height": 32, "category": "waving"},
        {"id": 3, "file_name": "walk", "frame_index": 2, "width": 32, "height": 32},
        {"id": 4, "file_name": "wide/1.png", "width": 40, "height": 20, "video": "wide_cam"},
        {"id": 5, "file_name": "clip.mp4", "frame_index": 1, "width": 32, "height": 32},
        {"id": 6, "file_name": "walk/0.png", "width": 32, "height": 32},  # no annotation
    ]
    kps = [np.array([[0.0, 0.0], [15.5, 15.5], [31.0, 20.0]]) for _ in range(5)]
    kps[3] = np.array([[10.0, 0.0], [20.0, 10.0], [29.0, 19.0]])
    vis = [np.array([2, 1, 0])] + [np.full(3, 2)] * 4
    doc = coco_doc(images[:5], kps, NAMES, LINKS, vis)
    doc["images"] = images
    return write_json(tmp_path / "test.json", doc), kps


def test_labelled_folder_items(tmp_path):
    path, kps = _setup(tmp_path)
    src = LabelledFolder(tmp_path, path, 16)
    assert isinstance(src, LabelledSource) and len(src) == 5 and src.unlabelled_images == 1
    it = src.item(0)
    assert it["image"].shape == (3, 16, 16) and _index_of(it["image"]) == 3
    np.testing.assert_allclose(it["keypoints"].numpy(), pixels_to_normalized(kps[0], 32), atol=1e-6)
    assert it["visible"].tolist() == [True, True, False]
    assert (it["category"], it["video"], it["id"]) == ("walking", "walk", 1)
    it = src.item(1)  # video file, frame_index 5
    assert _index_of(it["image"]) == 5 and it["video"] == "clip" and it["category"] == "waving"
    assert _index_of(src.item(4)["image"]) == 1
    it = src.item(2)  # frame folder + frame_index
    assert _index_of(it["image"]) == 2 and it["video"] == "walk" and it["category"] == "all"
    it = src.item(3)  # 40x20: the centred 20x20 square, columns 10..29
    np.testing.assert_allclose(it["keypoints"].numpy(), pixels_to_normalized(kps[3] - [10, 0], 20), atol=1e-6)
    assert it["video"] == "wide_cam"
    # predictions map back to the file's pixels through the box
    np.testing.assert_allclose(CropBox(*it["box"].tolist()).to_pixels(it["keypoints"].double().numpy()),
                               kps[3], atol=1e-5)


def test_bbox_crop(tmp_path):
    write_frames(tmp_path / "v", [coded_frame(0, 0, 64, 64)])
    doc = coco_doc([{"id": 1, "file_name": "v/0.png", "width": 64, "height": 64}],
                   [np.array([[20.0, 30.0], [40.0, 30.0], [30.0, 50.0]])], NAMES, LINKS)
    doc["annotations"][0]["bbox"] = [20.0, 20.0, 20.0, 20.0]
    path = write_json(tmp_path / "t.json", doc)
    it = LabelledFolder(tmp_path, path, 32, crop="bbox", margin=0.0).item(0)
    np.testing.assert_allclose(it["keypoints"][0].numpy(), [-1.0, 0.0], atol=1e-6)  # left edge, centre row
    del doc["annotations"][0]["bbox"]  # falls back to the keypoints' extent
    it = LabelledFolder(tmp_path, write_json(tmp_path / "u.json", doc), 32, crop="bbox", margin=0.0).item(0)
    np.testing.assert_allclose(it["keypoints"][:, 1].numpy(), [-1.0, -1.0, 1.0], atol=1e-6)


def _bad(tmp_path, mutate, *words):
    path, _ = _setup(tmp_path)
    import json
    doc = json.loads(path.read_text())
    mutate(doc)
    path.write_text(json.dumps(doc))
    with pytest.raises(DataError) as e:
        src = LabelledFolder(tmp_path, path, 16)
        for i in range(len(src)):
            src.item(i)
    for w in (str(path),) + words:
        assert w in str(e.value), str(e.value)


def test_labelled_errors(tmp_path):
    def missing(d):
        d["images"][0]["file_name"] = "walk/99.png"
    _bad(tmp_path, missing, "image id 1", "walk/99.png", "not found")

    def size(d):
        d["images"][0]["width"] = 64
    _bad(tmp_path, size, "image id 1", "32x32", "64x32")

    def beyond(d):
        d["images"][1]["frame_index"] = 50
    _bad(tmp_path, beyond, "clip.mp4", "frame_index [50]")

    def no_index(d):
        del d["images"][1]["frame_index"]
    _bad(tmp_path, no_index, "image id 2", "needs 'frame_index'")

    def twice(d):
        d["annotations"].append(dict(d["annotations"][0], id=99))
    _bad(tmp_path, twice, "image id 1", "more than one annotation")


def test_predictions_roundtrip(tmp_path):
    path, kps = _setup(tmp_path)
    src = LabelledFolder(tmp_path, path, 16)
    items = [src.item(i) for i in range(len(src))]
    px = np.stack([CropBox(*it["box"].tolist()).to_pixels(it["keypoints"].double().numpy()) for it in items])
    images = [src.coco.image_of(a) for a in src.annotations]
    write_coco_keypoints(tmp_path / "pred.json", images, px, np.full(px.shape[:2], 0.5), src.skeleton)
    back = read_coco_keypoints(tmp_path / "pred.json")
    np.testing.assert_allclose(back.keypoints, np.stack(kps), atol=1e-5)
    assert [im.frame_index for im in back.images] == [None, 5, 2, None, 1]
