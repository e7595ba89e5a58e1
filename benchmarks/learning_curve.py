"""Learning curve of one training run: test error every N joint iterations.

A research tool, not part of training: it peeks at test labels to show how the error
moves during a run (GAN training oscillates), for the raw weights and the trainer's
exponential moving average (``train.ema_decay``), with the reconstruction loss on
held-out pairs. Prints one line per
evaluation and writes them as JSON lines to ``--out``/curve.jsonl.

    python benchmarks/learning_curve.py --minutes 10 --every 100
    python benchmarks/learning_curve.py --minutes 10 train.batch_size=8

Arms of one comparison can share one eta pre-training (it sees only the prior, so options
of the joint stage do not change it): ``--save-eta F`` writes the pre-trained eta
(safetensors), ``--eta-from F`` starts from it instead of pre-training.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from keypointgan.config import load_config
from keypointgan.pose.stats import pose_spread
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
    ap.add_argument("--checkpoint-every", type=int, default=0,
                    help="also save a checkpoint every N joint iterations (long runs; 0: at the end only)")
    ap.add_argument("--save-eta", help="write the pre-trained eta here (safetensors)")
    ap.add_argument("--eta-from", help="start from this pre-trained eta instead of pre-training")
    a = ap.parse_args()

    out = Path(a.out)
    cfg = load_config(a.config, list(a.overrides) + [f"out_dir={out / 'run'}", "train.checkpoint_every=0",
                                                      "train.image_every=0", "train.eval_every=0",
                                                      f"train.eval_images={a.test_images}"])
    tr = Trainer(cfg, out_dir=out / "run", progress=False)
    t0 = time.monotonic()
    if a.eta_from:
        tr.model.eta.load_state_dict(load_file(a.eta_from))
        tr.state.eta_step = cfg.train.eta_pretrain_iterations
        tr._freeze_pretrained_eta()
    else:
        tr.pretrain_eta(deadline=t0 + 60 * a.eta_minutes)
        if a.save_eta:
            save_file({k: v.contiguous() for k, v in tr.model.eta.state_dict().items()}, a.save_eta)
    t0 = time.monotonic()  # minutes below count the joint stage only
    print(f"eta pre-training: {tr.state.eta_step} iterations", flush=True)
    val = [tr.data.pair_batch(10**9 + i) for i in range(4)]
    log = (out / "curve.jsonl").open("w")

    prior_spread = float(pose_spread(tr.data.prior))

    def val_rec(model) -> tuple[float, float]:
        """Label-free: reconstruction loss on held-out pairs, and the spread of their predicted
        pose shapes over the prior's (pose_spread; ~0 = one pose on every frame)."""
        total, was, kps = 0.0, model.training, []
        tr.rec_loss.eval()  # no running-mean updates from held-out pairs
        model.eval()
        with torch.no_grad(), tr.runtime.autocast():
            for b in val:
                x, xa = tr.runtime.tensor(b["x"]), tr.runtime.tensor(b["x_app"])
                out = model(x, xa)
                total += float(tr.rec_loss(out.x_hat, x))
                kps.append(out.keypoints.float())
        tr.rec_loss.train()
        model.train(was)
        return total / len(val), float(pose_spread(torch.cat(kps))) / prior_spread

    def evaluate(step: int) -> None:
        errors = tr.log_test_error()  # the trainer's own periodic evaluation (EMA, last-step, mean pose)
        row = {"step": step, "minutes": (time.monotonic() - t0) / 60, **errors}
        for name, m in [("raw", tr.model)] + ([("ema", tr.ema.module)] if tr.ema is not None else []):
            row[f"{name}_val_rec"], row[f"{name}_spread_ratio"] = val_rec(m)
        print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}), flush=True)
        log.write(json.dumps(row) + "\n")
        log.flush()

    def callback(step: int, scalars: dict) -> None:
        if tr.state.step % a.every == 0:
            evaluate(tr.state.step)
        if a.checkpoint_every and tr.state.step % a.checkpoint_every == 0:
            tr.save()

    tr.train(deadline=t0 + 60 * a.minutes, callback=callback)
    evaluate(tr.state.step)
    tr.save()  # for a look at the pictures: keypointgan evaluate OUT/run
    tr.close()


if __name__ == "__main__":
    main()
