"""beta: forward+backward time of the renderer vs the brute-force reference.

    python benchmarks/bench_renderer.py
"""

from __future__ import annotations

import time

import torch

from keypointgan.pose import get_skeleton, render_skeleton
from keypointgan.pose.render import render_skeleton_dense


def timed(fn, iters: int = 5) -> float:
    fn()
    t = time.perf_counter()
    for _ in range(iters):
        fn()
    return (time.perf_counter() - t) / iters


def main() -> None:
    print(f"{'skeleton':16s}{'size':>6s}{'links':>7s}{'fast (s)':>10s}{'dense (s)':>11s}   batch 16, fwd+bwd")
    for name in ("synth_humanoid", "h36m:full", "ibug68"):
        sk = get_skeleton(name)
        for size in (64, 128):
            kp = (torch.rand(16, sk.num_keypoints, 2) * 1.6 - 0.8).requires_grad_()
            fast = timed(lambda: render_skeleton(kp, sk.edges, size).sum().backward())
            dense = timed(lambda: render_skeleton_dense(kp, sk.edges, size).sum().backward(), 2)
            print(f"{name:16s}{size:6d}{len(sk.edges):7d}{fast:10.3f}{dense:11.3f}")


if __name__ == "__main__":
    main()
