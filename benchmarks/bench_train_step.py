"""Superseded by ``keypointgan bench`` (src/keypointgan/bench.py): kept as a thin wrapper.

    python benchmarks/bench_train_step.py [--sizes 64 128] [--batch 16] [--iters 5] [--device cuda] [--out bench.json]

is ``keypointgan bench`` with the same arguments (``--size N`` still works): one table of
a training iteration (reference fp32/NCHW vs the default path) with per-component seconds,
inference and the renderer. See docs/performance.md.
"""

from __future__ import annotations

import sys

from keypointgan.cli import main

if __name__ == "__main__":
    args = ["--sizes" if a == "--size" else a for a in sys.argv[1:]]
    sys.exit(main(["bench", *args]))
