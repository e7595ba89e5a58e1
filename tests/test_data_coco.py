"""COCO keypoint JSON: reading, validation errors (file + cause), atomic writing."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fixtures import coco_doc, write_json

from keypointgan.data import DataError, read_coco_keypoints, write_coco_keypoints
from keypointgan.pose.skeleton import Skeleton

NAMES = ["a", "b", "c"]
LINKS = [[0, 1], [1, 2]]


def _skeleton() -> Skeleton:
    return Skeleton.from_dict({"name": "toy", "keypoints": NAMES, "links": [["a", "b"], ["b", "c"]]})


def _doc(n: int = 2) -> dict:
    images = [{"id": i + 10, "file_name": f"v/{i}.png", "width": 32, "height": 24, "video": "v",
               "frame_index": i, "category": "walk"} for i in range(n)]
    kps = [np.array([[1.0, 2.0], [10.5, 3.0], [31.0, 23.0]]) + i for i in range(n)]
    kps[-1][-1] = [31.0, 23.0]
    return coco_doc(images, kps, NAMES, LINKS)


def test_read_valid(tmp_path):
    path = write_json(tmp_path / "a.json", _doc())
    c = read_coco_keypoints(path)
    assert c.skeleton.keypoint_names == tuple(NAMES) and c.skeleton.edges == ((0, 1), (1, 2))
    assert c.keypoints.shape == (2, 3, 2) and c.visibility.shape == (2, 3)
    assert c.image_of(1).id == 11 and c.image_of(1).category == "walk" and c.image_of(1).frame_index == 1
    np.testing.assert_allclose(c.keypoints[0, 1], [10.5, 3.0])
    assert c.num_out_of_image == 0


def _assert_error(tmp_path, doc_or_text, *words, **kw):
    path = tmp_path / "bad.json"
    path.write_text(doc_or_text if isinstance(doc_or_text, str) else json.dumps(doc_or_text))
    with pytest.raises(DataError) as e:
        read_coco_keypoints(path, **kw)
    msg = str(e.value)
    assert str(path) in msg, msg
    for w in words:
        assert w in msg, msg
    return msg


def test_malformed_json_line_col(tmp_path):
    text = '{"images": [],\n "annotations": [,]}'
    _assert_error(tmp_path, text, "malformed JSON", "line 2", "column")


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_coco_keypoints(tmp_path / "nope.json")


def test_missing_fields(tmp_path):
    d = _doc()
    del d["annotations"]
    _assert_error(tmp_path, d, "missing required field 'annotations'")
    d = _doc()
    del d["images"][0]["width"]
    _assert_error(tmp_path, d, "image id 10", "'width'")
    d = _doc()
    del d["annotations"][1]["keypoints"]
    _assert_error(tmp_path, d, "annotation id 2", "'keypoints'")


def test_wrong_k(tmp_path):
    d = _doc()
    d["annotations"][0]["keypoints"] = d["annotations"][0]["keypoints"][:6]
    _assert_error(tmp_path, d, "annotation id 1", "2 keypoints", "K=3")
    d = _doc()
    d["annotations"][0]["keypoints"] = d["annotations"][0]["keypoints"][:5]
    _assert_error(tmp_path, d, "not a multiple of 3")
    # the category lists 3 names, the given skeleton has 4
    sk4 = Skeleton.from_dict({"name": "four", "keypoints": NAMES + ["d"], "links": [["a", "d"]]})
    _assert_error(tmp_path, _doc(), "3 keypoint names", "K=4", skeleton=sk4)


def test_nan_and_inf_rejected(tmp_path):
    d = _doc()
    d["annotations"][1]["keypoints"][3] = float("nan")
    msg = _assert_error(tmp_path, d, "annotation id 2", "keypoint 1", "NaN/inf")
    d = _doc()
    d["annotations"][0]["keypoints"][0] = float("inf")
    _assert_error(tmp_path, d, "keypoint 0", "NaN/inf")
    d = _doc()
    d["annotations"][0]["keypoints"][0] = None
    _assert_error(tmp_path, d, "non-numeric")
    assert msg


def test_bad_visibility_and_references(tmp_path):
    d = _doc()
    d["annotations"][0]["keypoints"][2] = 3
    _assert_error(tmp_path, d, "visibility must be 0, 1 or 2")
    d = _doc()
    d["annotations"][0]["image_id"] = 999
    _assert_error(tmp_path, d, "image_id 999", "no entry in 'images'")
    d = _doc()
    d["annotations"][0]["category_id"] = 5
    _assert_error(tmp_path, d, "category_id 5")
    d = _doc()
    d["images"][1]["id"] = 10
    _assert_error(tmp_path, d, "duplicate image id 10")
    d = _doc()
    d["categories"] = [{"id": 1, "name": "x"}]
    _assert_error(tmp_path, d, "no category lists 'keypoints'")


def test_out_of_image_policy(tmp_path):
    d = _doc(1)
    d["annotations"][0]["keypoints"][3:5] = [40.0, 3.0]  # x beyond width 32
    path = write_json(tmp_path / "o.json", d)
    c = read_coco_keypoints(path)
    assert c.num_out_of_image == 1 and c.visibility[0, 1] == 2  # kept, counted
    c = read_coco_keypoints(path, out_of_image="invisible")
    assert c.num_out_of_image == 1 and c.visibility[0, 1] == 0
    with pytest.raises(DataError, match=r"keypoint 1 \(40, 3\) is outside image id 10 of size 32x24"):
        read_coco_keypoints(path, out_of_image="error")
    # the last pixel centre (W - 1) and the image edge (-0.5) are inside
    d["annotations"][0]["keypoints"][3:5] = [-0.5, 23.0]
    assert read_coco_keypoints(write_json(tmp_path / "p.json", d)).num_out_of_image == 0


def test_write_roundtrip_atomic(tmp_path):
    sk = _skeleton()
    images = [{"id": 1, "file_name": "v/0.png", "width": 32, "height": 32, "video": "v"},
              {"id": 2, "file_name": "v/1.png", "width": 32, "height": 32}]
    kp = np.array([[[1.25, 2.0], [3.0, 4.0], [5.0, 6.5]], [[0.0, 0.0], [31.0, 31.0], [7.0, 8.0]]])
    scores = np.array([[0.9, 0.5, 0.1], [1.0, 1.0, 0.4]])
    out = tmp_path / "sub" / "pred.json"
    write_coco_keypoints(out, images, kp, scores, sk)
    assert [p.name for p in out.parent.iterdir()] == ["pred.json"]  # no temp file left behind
    c = read_coco_keypoints(out)
    np.testing.assert_allclose(c.keypoints, kp)
    np.testing.assert_allclose(c.scores, scores, rtol=1e-6)
    assert (c.visibility == 2).all() and c.skeleton.keypoint_names == sk.keypoint_names
    raw = json.loads(out.read_text())
    ann = raw["annotations"][0]
    assert ann["score"] == pytest.approx(0.5) and len(ann["keypoint_scores"]) == 3
    assert raw["categories"][0]["skeleton"] == [[1, 2], [2, 3]]
    # overwriting is atomic too, and NaN is refused without touching the old file
    before = out.read_text()
    with pytest.raises(DataError, match="NaN"):
        write_coco_keypoints(out, images, kp * np.nan, None, sk)
    assert out.read_text() == before
    with pytest.raises(DataError, match="expected keypoints of shape"):
        write_coco_keypoints(out, images, kp[:, :2], None, sk)
