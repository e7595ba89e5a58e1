"""Write the synthetic dataset to disk in the documented format (docs/data-format.md).

```
OUT/train/<video>/000000.png ...   frames only (no labels)
OUT/prior.json                     poses only, from videos disjoint from train and test
OUT/test/<video>/000000.png ...    every test_stride-th frame of the test videos
OUT/test.json                      ground truth of the test frames (file_name relative to OUT/test)
OUT/skeleton.yaml                  the skeleton
OUT/preview.png                    a grid of frames with their skeletons
```
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import numpy as np
from PIL import Image

from ...pose.coords import normalized_to_pixels
from ...pose.skeleton import save_skeleton
from ...viz import draw_skeleton, make_grid, side_colors
from ..base import DataError
from .dataset import SynthParams, SyntheticWorld
from .scene import occlusion


def _png(path: Path, hwc: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(hwc).save(path, compress_level=1)


def _annotation(ann_id: int, image_id: int, kp_px: np.ndarray, vis: np.ndarray) -> dict[str, Any]:
    """A COCO keypoint annotation (pixels; v = 2 visible, 1 labelled but occluded)."""
    flat = np.concatenate([np.round(kp_px, 3), vis[:, None]], 1).reshape(-1)
    x0, y0 = kp_px.min(0)
    x1, y1 = kp_px.max(0)
    return {"id": ann_id, "image_id": image_id, "category_id": 1,
            "keypoints": [float(x) if i % 3 != 2 else int(x) for i, x in enumerate(flat)],
            "num_keypoints": int((vis > 0).sum()), "iscrowd": 0,
            "bbox": [round(float(x0), 3), round(float(y0), 3), round(float(x1 - x0), 3), round(float(y1 - y0), 3)],
            "area": round(float((x1 - x0) * (y1 - y0)), 3)}


def preview_grid(world: SyntheticWorld, image_size: int, split: str = "test", num_videos: int = 8,
                 frames_per_video: int = 2, scale: Optional[int] = None, ncols: int = 8,
                 raw: bool = True) -> np.ndarray:
    """Frames of several videos (one per activity first) with their skeletons drawn on.

    With ``raw`` every overlay follows the plain frame, so the image itself can be seen.
    """
    sk = world.skeleton
    vids = world.ids(split)
    by_cat: dict[str, list[int]] = {}
    for v in vids:
        by_cat.setdefault(world.videos[v].category, []).append(v)
    chosen: list[int] = []
    while len(chosen) < min(num_videos, len(vids)):
        for lst in by_cat.values():
            if lst and len(chosen) < num_videos:
                chosen.append(lst.pop(0))
    scale = scale or max(1, 128 // image_size)
    t = world.params.num_frames
    frames = [int(round(i * (t - 1) / max(frames_per_video, 1))) for i in range(frames_per_video)]
    colors = side_colors(sk.keypoint_names, sk.edges)
    tiles = []
    for v in chosen:
        img, _ = world.render(v, frames, image_size)
        kp = normalized_to_pixels(world.keypoints(v)[frames], image_size)
        for im, k in zip(img.permute(0, 2, 3, 1).numpy(), kp):
            if raw:
                tiles.append(np.asarray(Image.fromarray(im).resize((image_size * scale,) * 2, Image.NEAREST)))
            tiles.append(draw_skeleton(im, k, sk.edges, color=colors, scale=scale))
    return make_grid(tiles, ncols=ncols)


def write_synthetic_dataset(out_dir: str | Path, params: SynthParams | Any = None, image_size: int = 64,
                            skeleton: str | None = None, preview: bool = True,
                            overwrite: bool = False) -> dict[str, Any]:
    """Render the synthetic dataset to ``out_dir``; ``params``: SynthParams, a DataConfig or None.

    Returns a summary (counts and paths). Refuses to write into a folder that already
    holds a dataset unless ``overwrite``.
    """
    if params is None:
        params = SynthParams()
    elif not isinstance(params, SynthParams):
        params = SynthParams.from_config(params)
    out = Path(out_dir)
    if not overwrite and ((out / "train").exists() or (out / "test.json").exists()):
        raise DataError(f"{out}: already holds a dataset (train/ or test.json); pass overwrite=True")
    world = SyntheticWorld(params, skeleton)
    sk, size = world.skeleton, int(image_size)
    out.mkdir(parents=True, exist_ok=True)
    save_skeleton(sk, out / "skeleton.yaml")
    category = sk.to_coco_category()
    t = params.num_frames

    n_train = 0
    for v in world.ids("train"):
        img, _ = world.render(v, range(t), size)
        for f, im in enumerate(img.permute(0, 2, 3, 1).numpy()):
            _png(out / "train" / world.videos[v].name / f"{f:06d}.png", im)
            n_train += 1

    images, anns = [], []
    for v in world.ids("prior"):
        info, kp = world.videos[v], normalized_to_pixels(world.keypoints(v), size)
        for f in range(t):
            iid = len(images) + 1
            images.append({"id": iid, "file_name": "", "width": size, "height": size,
                           "video": info.name, "frame_index": f, "category": info.category})
            anns.append(_annotation(iid, iid, kp[f], np.full(sk.num_keypoints, 2)))
    (out / "prior.json").write_text(json.dumps({"images": images, "annotations": anns, "categories": [category]}))
    n_prior = len(images)

    images, anns = [], []
    frames = list(range(0, t, params.test_stride))
    for v in world.ids("test"):
        info, kp = world.videos[v], normalized_to_pixels(world.keypoints(v), size)
        img, ids = world.render(v, frames, size)
        occ = occlusion(world.scene(v), frames, ids, sk)
        for j, (f, im) in enumerate(zip(frames, img.permute(0, 2, 3, 1).numpy())):
            name = f"{info.name}/{f:06d}.png"
            _png(out / "test" / name, im)
            iid = len(images) + 1
            images.append({"id": iid, "file_name": name, "width": size, "height": size,
                           "video": info.name, "frame_index": f, "category": info.category})
            anns.append(_annotation(iid, iid, kp[f], np.where(occ[j], 1, 2)))
    (out / "test.json").write_text(json.dumps({"images": images, "annotations": anns, "categories": [category]}))

    if preview:
        _png(out / "preview.png", preview_grid(world, size))
    return {"out_dir": str(out), "image_size": size, "train_videos": len(world.ids("train")),
            "train_frames": n_train, "prior_poses": n_prior, "test_videos": len(world.ids("test")),
            "test_images": len(images)}


def save_preview(path: str | Path, params: SynthParams | None = None, image_size: int = 128,
                 num_videos: int = 6, frames_per_video: int = 2, ncols: int = 6,
                 palette_colors: Optional[int] = 256, split: str = "test") -> Path:
    """A preview grid as a (palette-quantised, so small) PNG, e.g. for the docs."""
    world = SyntheticWorld(params or SynthParams())
    grid = preview_grid(world, image_size, split=split, num_videos=num_videos, frames_per_video=frames_per_video,
                        scale=1, ncols=ncols)
    pil = Image.fromarray(grid)
    if palette_colors:
        pil = pil.quantize(palette_colors, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    pil.save(p, optimize=True)
    return p


__all__ = ["write_synthetic_dataset", "preview_grid", "save_preview"]
