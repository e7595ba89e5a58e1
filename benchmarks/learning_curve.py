"""Learning curve of one training run: test error every N joint iterations.

A research tool, not part of training: it peeks at test labels to show how the error
moves during a run (GAN training oscillates), for the raw weights and the trainer's
exponential moving average (``train.ema_decay``), with the reconstruction loss on
held-out pairs. Prints one line per
evaluation and writes them as JSON lines to ``--out``/curve.jsonl.

    python benchmarks/learning_curve.py --minutes 10 --every 100
    python benchmarks/learning_curve.py --minutes 10 train.batch_size=8
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from keypointgan.config import load_config
from keypointgan.train.trainer import Trainer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("overrides", nargs="*")
    ap.add_argument("--config", default="demo")
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--eta-minutes", type=float, default=1.2)
    ap.add_argument("--every", type=int, default=100)
    ap.add_argument("--test-images", type=int, default=320)
    ap.add_argument("--out", default="/tmp/kpgan-curve")
    a = ap.parse_args()

    out = Path(a.out)
    cfg = load_config(a.config, list(a.overrides) + [f"out_dir={out / 'run'}", "train.checkpoint_every=0",
                                                      "train.image_every=0", "train.eval_every=0",
                                                      f"train.eval_images={a.test_images}"])
    tr = Trainer(cfg, out_dir=out / "run", progress=False)
    t0 = time.monotonic()
    tr.pretrain_eta(deadline=t0 + 60 * a.eta_minutes)
    print(f"eta pre-training: {tr.state.eta_step} iterations", flush=True)
    val = [tr.data.pair_batch(10**9 + i) for i in range(4)]
    log = (out / "curve.jsonl").open("w")

    def val_rec(model) -> float:
        total, was = 0.0, model.training
        tr.rec_loss.eval()  # no running-mean updates from held-out pairs
        model.eval()
        with torch.no_grad(), tr.runtime.autocast():
            for b in val:
                x, xa = tr.runtime.tensor(b["x"]), tr.runtime.tensor(b["x_app"])
                total += float(tr.rec_loss(model(x, xa).x_hat, x))
        tr.rec_loss.train()
        model.train(was)
        return total / len(val)

    def evaluate(step: int) -> None:
        errors = tr.log_test_error()  # the trainer's own periodic evaluation (EMA, last-step, mean pose)
        row = {"step": step, "minutes": (time.monotonic() - t0) / 60, **errors, "raw_val_rec": val_rec(tr.model)}
        if tr.ema is not None:
            row["ema_val_rec"] = val_rec(tr.ema.module)
        print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}), flush=True)
        log.write(json.dumps(row) + "\n")
        log.flush()

    def callback(step: int, scalars: dict) -> None:
        if tr.state.step % a.every == 0:
            evaluate(tr.state.step)

    tr.train(deadline=t0 + 60 * a.minutes, callback=callback)
    evaluate(tr.state.step)
    tr.save()  # for a look at the pictures: keypointgan evaluate OUT/run
    tr.close()


if __name__ == "__main__":
    main()
