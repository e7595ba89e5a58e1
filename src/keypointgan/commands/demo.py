"""The main job: train on the built-in synthetic videos, evaluate, write an HTML report.

Everything runs inside one wall-clock budget (``--minutes``, default 15): building the
data, eta pre-training (at most ``eta_share`` of the budget), joint training, and a
reserve for evaluation and the report. The report compares the unsupervised detector
with the mean-pose baseline, and with supervised post-processing (ridge regression
fitted on labelled training frames), as the paper's tables do.
"""

from __future__ import annotations

import html
import platform
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..config import load_config
from ..data.base import SubsetSource
from ..data.datasets import protocol_name
from ..eval.methods import Detector, columns, compare_methods
from ..eval.protocols import get_protocol
from ..eval.report import category_table, metrics_table, plot_losses, write_report
from ..train.trainer import Trainer
from ..viz import prediction_grid
from ..viz import to_uint8 as _to_uint8


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {torch.get_num_threads()} threads, torch {torch.__version__}"


def reconstruction_grid(trainer: Trainer, n: int = 8, scale: int = 2) -> np.ndarray:
    """Rows: x, x' (appearance), Phi(x), beta(eta(Phi(x))), reconstruction."""
    from ..viz import make_grid

    batch = trainer.data.pair_batch(10**9)
    x, xa = trainer.runtime.tensor(batch["x"][:n]), trainer.runtime.tensor(batch["x_app"][:n])
    model = trainer.inference_model
    was_training = model.training
    model.eval()
    with torch.no_grad(), trainer.runtime.autocast():
        out = model(x, xa)
    model.train(was_training)
    rows = [x, xa, out.y.clamp(-1, 1), out.y_star, out.x_hat.clamp(-1, 1)]
    tiles = [np.kron(_to_uint8(r[i]), np.ones((scale, scale, 1), np.uint8)) for r in rows for i in range(len(x))]
    return make_grid(tiles, len(x))


def eta_iterations_for(trainer: Trainer, seconds: float) -> int:
    """eta pre-training iterations that fit in ``seconds`` (at most the config's), from a timed
    forward/backward that changes no weights: a one-cycle schedule must know its length."""
    cap = trainer.cfg.train.eta_pretrain_iterations
    if cap <= 0:
        return 0
    prior, visible = trainer.prior_batch(0)
    per = []
    for _ in range(2):  # the first call pays for kernel selection
        t = time.perf_counter()
        trainer.eta_loss_prior(prior, visible).backward()
        per.append(time.perf_counter() - t)
    trainer.opt_eta.zero_grad(set_to_none=True)
    step_s = per[-1] * 1.15  # + optimiser step and logging
    return max(1, min(cap, int(seconds / step_s)))


def eval_seconds_for(trainer: Trainer, images: int, probe: int = 64) -> float:
    """Seconds the final evaluation will take for ``images`` detections (every detector's
    pass over the test set plus the ridge's training frames), from a timed pass over
    ``probe`` test images (the evaluation's own code path, batch 64) after a warm-up pass of
    the same shape (a smaller warm-up left batch 64's kernel selection inside the timed pass
    and over-reserved by ~50%: demos ended 1.6 minutes early): inference speed differs ~4x
    between CPU kinds, a fixed reserve cannot fit them all."""
    from ..eval.evaluator import predict_labelled

    test = trainer.data.test
    n = min(probe, len(test))
    if n == 0 or images <= 0:
        return 0.0
    model, rt, sk = trainer.inference_model, trainer.runtime, trainer.skeleton
    probe_set = SubsetSource.spread(test, n)
    predict_labelled(model, probe_set, rt, sk, trainer.eta_frozen)  # kernel selection for this batch shape
    t = time.perf_counter()
    predict_labelled(model, probe_set, rt, sk, trainer.eta_frozen)
    return (time.perf_counter() - t) / n * images


def _save_png(arr: np.ndarray, path: Path) -> str:
    from PIL import Image

    Image.fromarray(arr).save(path)
    return path.name


def run_demo(out: str | Path = "runs/demo", minutes: float = 15.0, config: str = "demo",
             overrides: Sequence[str] = (), progress: bool = True, eta_share: float = 0.12,
             reserve_share: float = 0.06, ridge_images: int = 600) -> Path:
    """Train, evaluate and report within ``minutes``; returns the path of ``index.html``."""
    t0 = time.monotonic()
    budget = minutes * 60.0
    deadline = t0 + budget
    out = Path(out)
    cfg = load_config(config, list(overrides) + [f"out_dir={out / 'run'}"])
    trainer = Trainer(cfg, out_dir=out / "run", progress=progress)
    reserve = max(min(45.0, 0.3 * budget), reserve_share * budget)  # at least; raised below to the measured evaluation
    t_data = time.monotonic() - t0
    eta_budget = eta_share * budget
    trainer.pretrain_eta(iterations=eta_iterations_for(trainer, eta_budget),
                         deadline=min(deadline - reserve, time.monotonic() + eta_budget))
    t_eta = time.monotonic() - t0 - t_data
    labelled = getattr(trainer.data, "train_labelled", None)
    n_ridge = min(ridge_images, len(labelled)) if labelled is not None else 0
    n_eval = (2 if trainer.cfg.train.ema_decay > 0 else 1) * len(trainer.data.test) + n_ridge
    # evaluation measured on this CPU (+15% and 10 s for the pictures and the report), or the fixed reserve
    reserve = max(reserve, 1.15 * eval_seconds_for(trainer, n_eval) + 10.0)
    trainer.train(deadline=deadline - reserve)
    trainer.save()
    t_train = time.monotonic() - t0 - t_data - t_eta

    data, sk, size = trainer.data, trainer.skeleton, cfg.model.image_size
    protocol = get_protocol(protocol_name(cfg))
    ema_note = "EMA weights" if trainer.ema is not None else "last-step weights"
    detectors = [Detector("unsupervised", f"KeypointGAN (unsupervised, {ema_note}, L/R by pre-trained eta)",
                          trainer.inference_model, trainer.runtime, trainer.eta_frozen,
                          no_lr_label=f"KeypointGAN (unsupervised, {ema_note}, no L/R correction)")]
    if trainer.ema is not None:
        detectors.append(Detector("unsupervised_last_step",
                                  "KeypointGAN (unsupervised, last-step weights, L/R by pre-trained eta)",
                                  trainer.model, trainer.runtime, trainer.eta_frozen))
    comp = compare_methods(data.test, detectors, sk, size, prior=data.prior, protocol=protocol, progress=progress,
                           train_labelled=SubsetSource.spread(labelled, ridge_images) if labelled is not None else None)
    preds = comp.predictions["unsupervised"]
    rows = comp.labelled
    post_note = ""
    if comp.ridge is not None:
        post_note = (f"Supervised post-processing: a linear map (least squares) fitted from predicted to true "
                     f"keypoints on {comp.ridge_images} labelled training frames; it uses labels and is "
                     f"reported apart from the unsupervised numbers, as in the paper.")
    t_eval = time.monotonic() - t0 - t_data - t_eta - t_train

    rdir = out / "report"
    rdir.mkdir(parents=True, exist_ok=True)
    n_show = min(32, len(data.test))
    pick = np.linspace(0, len(data.test) - 1, n_show).round().astype(int)
    imgs = [data.test.item(int(i))["image"] for i in pick]
    grid = _save_png(prediction_grid(imgs, preds.oriented[pick], preds.truth.keypoints[pick], sk.edges, size),
                     rdir / "test_predictions.png")
    recon = _save_png(reconstruction_grid(trainer), rdir / "reconstructions.png")
    has_curves = plot_losses(out / "run", rdir / "losses.png")
    total = time.monotonic() - t0
    timing = {"data_s": t_data, "eta_pretrain_s": t_eta, "train_s": t_train, "eval_s": t_eval, "total_s": total}
    summary = {"metrics": dict(rows), "protocol": protocol.name, "timing": timing, "machine": _machine(),
               "runtime": trainer.runtime.describe(), "eta_pretrain_iterations": trainer.state.eta_step,
               "iterations": trainer.state.step, "test_images": len(data.test), "config": cfg.to_dict()}
    main = comp["unsupervised"]["error_percent"]
    base = comp["mean_pose"]["error_percent"]
    sections = [
        ("Result", f"<p>Mean keypoint error on {len(data.test)} held-out test frames: <b>{main:.2f}%</b> of the image "
                   f"size, against <b>{base:.2f}%</b> for the mean prior pose ({ema_note}; "
                   f"train.ema_decay={cfg.train.ema_decay}). "
                   f"{trainer.state.eta_step} eta pre-training and {trainer.state.step} joint iterations in "
                   f"{total / 60:.1f} minutes on {html.escape(_machine())} ({trainer.runtime.describe()}).</p>"),
        ("Metrics", metrics_table(rows, columns(protocol, arrows=True)) + f"<p class=note>{post_note} Error %: mean Euclidean distance as a "
                    "percentage of the image size, per frame, averaged per activity then over activities (Simplified "
                    "Human3.6M protocol). EMA weights: an exponential moving average of Phi, Psi and eta over "
                    "training; GAN training oscillates and the last-step weights move by several points between "
                    "evaluations (curves below).</p>"),
        ("Per activity (error %)", category_table(rows)),
        ("Test predictions", f"<p class=note>green: predicted skeleton; red: ground truth.</p><img src='{grid}'>"),
        ("Reconstructions", "<p class=note>rows: x, x' (appearance), Phi(x), beta(eta(Phi(x))), "
                            f"Psi(beta(eta(Phi(x))), x').</p><img src='{recon}'>"),
    ]
    if has_curves:
        sections.append(("Training curves", "<p class=note>Losses per stage and, every train.eval_every joint "
                                            "iterations, the test error of the EMA and last-step weights on "
                                            f"{cfg.train.eval_images} test frames (logged for watching only; the "
                                            "weights evaluated above do not depend on it).</p>"
                                            "<img src='losses.png'>"))
    sections.append(("Timing", metrics_table([("seconds", timing)], [(k, k) for k in timing])))
    trainer.close()
    return write_report(rdir, "keypointgan demo report", sections, summary)
