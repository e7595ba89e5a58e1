"""Frames per second of the synthetic video generator (batch rendering, CPU).

    python benchmarks/bench_synthetic.py [--sizes 64 128] [--videos 12] [--threads N]

Reports, per image size: whole-video batches (how a split is rendered into memory),
scattered frames of many videos in one batch (lazy storage: one training batch of
32 frames from 16 videos), and the time to build the per-video backgrounds.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from keypointgan.data.synthetic import SynthParams, SyntheticWorld


def bench(size: int, videos: int, repeats: int) -> dict[str, float]:
    world = SyntheticWorld(SynthParams(num_videos=max(videos * 2, 30)))
    vids = world.ids("train")[:videos]
    t0 = time.perf_counter()
    for v in vids:
        world.scene(v)
    t_scene = (time.perf_counter() - t0) / len(vids)
    t0 = time.perf_counter()
    for v in vids:
        world.background(v, size)
    t_bg = (time.perf_counter() - t0) / len(vids)
    world.render(vids[0], range(8), size)  # warm-up
    n_frames = world.params.num_frames
    best_video = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        for v in vids:
            world.render(v, range(n_frames), size)
        best_video = min(best_video, time.perf_counter() - t0)
    rng = np.random.default_rng(0)
    best_batch = np.inf
    for _ in range(repeats):
        bv = rng.choice(vids, 32).tolist()
        bf = rng.integers(0, n_frames, 32).tolist()
        t0 = time.perf_counter()
        world.render_many(bv, bf, size)
        best_batch = min(best_batch, time.perf_counter() - t0)
    return {"video_fps": len(vids) * n_frames / best_video, "batch32_ms": best_batch * 1e3,
            "batch32_fps": 32 / best_batch, "scene_ms": t_scene * 1e3, "background_ms": t_bg * 1e3}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 128])
    ap.add_argument("--videos", type=int, default=12)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    for s in a.sizes:
        r = bench(s, a.videos, a.repeats)
        print(f"{s:4d} px: {r['video_fps']:7.0f} frames/s (whole videos, 60-frame batches) | "
              f"{r['batch32_fps']:6.0f} frames/s ({r['batch32_ms']:.1f} ms for 32 frames of up to 32 videos) | "
              f"scene {r['scene_ms']:.1f} ms + background {r['background_ms']:.1f} ms per video")


if __name__ == "__main__":
    main()
