"""Writers of tiny data fixtures in the real on-disk formats (frames, .mp4, COCO JSON)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import av
import numpy as np
from PIL import Image


def coded_frame(video: int, index: int, h: int = 32, w: int = 32) -> np.ndarray:
    """A frame whose flat colour encodes (video, index): R = 10 * index, G = 40 * video."""
    img = np.zeros((h, w, 3), dtype=np.uint8)
    img[..., 0] = (10 * index) % 256
    img[..., 1] = (40 * video) % 256
    img[..., 2] = 128
    return img


def write_frames(folder: Path, frames: Sequence[np.ndarray], ext: str = ".png",
                 names: Sequence[str] | None = None) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, f in enumerate(frames):
        p = folder / (names[i] if names else f"{i}{ext}")
        Image.fromarray(f).save(p, quality=95) if ext in (".jpg", ".jpeg") else Image.fromarray(f).save(p)
        paths.append(p)
    return paths


def pick_codec() -> str:
    for name in ("libx264", "mpeg4", "mjpeg"):
        try:
            av.codec.Codec(name, "w")
            return name
        except Exception:  # noqa: BLE001 - codec absent in this build
            continue
    raise RuntimeError("no video encoder available in PyAV")


def write_mp4(path: Path, frames: Sequence[np.ndarray], fps: int = 10) -> Path:
    """Encode RGB uint8 frames to an .mp4 with PyAV (libx264, else mpeg4)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    codec = pick_codec()
    h, w = frames[0].shape[:2]
    with av.open(str(path), "w") as out:
        s = out.add_stream(codec, rate=fps)
        s.width, s.height = w, h
        s.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
        if codec == "libx264":
            s.options = {"crf": "0", "preset": "ultrafast"}
        for f in frames:
            for pkt in s.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")):
                out.mux(pkt)
        for pkt in s.encode():
            out.mux(pkt)
    return path


def coco_doc(images: list[dict], keypoints: Sequence[np.ndarray], names: Sequence[str],
             links: Sequence[Sequence[int]], vis: Sequence[np.ndarray] | None = None) -> dict:
    """A COCO keypoint document: one annotation per image, (K, 2) pixel keypoints each."""
    anns = []
    for i, (im, kp) in enumerate(zip(images, keypoints)):
        v = np.full(len(kp), 2) if vis is None else vis[i]
        trip = [c for (x, y), vv in zip(np.asarray(kp).tolist(), v) for c in (x, y, int(vv))]
        anns.append({"id": i + 1, "image_id": im["id"], "category_id": 1, "keypoints": trip,
                     "num_keypoints": int((np.asarray(v) > 0).sum())})
    return {"images": images, "annotations": anns,
            "categories": [{"id": 1, "name": "toy", "keypoints": list(names),
                            "skeleton": [[a + 1, b + 1] for a, b in links]}]}


def write_json(path: Path, doc: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))
    return path
