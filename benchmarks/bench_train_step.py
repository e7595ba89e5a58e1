"""Seconds per training iteration (and per component) for each precision / memory format.

Prints a table; run on an otherwise idle machine:
    python benchmarks/bench_train_step.py --size 64 --iters 5
    python benchmarks/bench_train_step.py --size 128 --config paper
"""

from __future__ import annotations

import argparse
import time

import torch

from keypointgan.config import load_config
from keypointgan.train.trainer import Trainer


def timed(fn, iters: int) -> float:
    fn()  # warm-up (oneDNN picks kernels per shape)
    t = time.perf_counter()
    for _ in range(iters):
        fn()
    return (time.perf_counter() - t) / iters


def bench(config: str, size: int, precision: str, channels_last: bool, iters: int, device: str,
          batch: int = 16) -> dict[str, float]:
    cfg = load_config(config, [f"model.image_size={size}", f"train.batch_size={batch}", f"train.precision={precision}",
                               f"train.channels_last={channels_last}", f"train.device={device}",
                               "data.synthetic_videos=12", "data.synthetic_frames=40", "train.log_every=0",
                               "train.checkpoint_every=0", "train.image_every=0"])
    tr = Trainer(cfg, out_dir=f"/tmp/kpgan-bench-{size}-{precision}-{channels_last}", progress=False)
    b = tr.data.pair_batch(1)
    x, xa = tr.runtime.tensor(b["x"]), tr.runtime.tensor(b["x_app"])
    prior = tr.runtime.tensor(tr.data.prior_batch(1)["keypoints"])
    sync = torch.cuda.synchronize if tr.runtime.device.type == "cuda" else (lambda: None)

    def step():
        tr.train_step()
        sync()

    out = {"full step": timed(step, iters)}
    _, o = tr.generator_step(x, xa)
    out["generator step"] = timed(lambda: (tr.generator_step(x, xa), sync()), iters)
    out["discriminator step"] = timed(lambda: (tr.discriminator_step(o.y, prior), sync()), iters)
    out["eta step"] = timed(lambda: (tr.eta_step(o.y, prior), sync()), iters)
    out["beta (render batch)"] = timed(lambda: (tr.model.render(prior), sync()), iters)
    tr.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default="cpu")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--modes", nargs="+", default=["fp32:0", "bf16:0", "bf16:1"],
                    help="precision:channels_last pairs")
    a = ap.parse_args()
    rows = {}
    for m in a.modes:
        prec, cl = m.split(":")
        rows[m] = bench(a.config, a.size, prec, cl == "1", a.iters, a.device, a.batch)
    names = list(next(iter(rows.values())))
    print(f"\n{a.config} preset at {a.size} px, batch {a.batch}, threads={torch.get_num_threads()} (seconds)")
    print(f"{'':22s}" + "".join(f"{m:>12s}" for m in rows))
    for n in names:
        print(f"{n:22s}" + "".join(f"{rows[m][n]:12.3f}" for m in rows))


if __name__ == "__main__":
    main()
