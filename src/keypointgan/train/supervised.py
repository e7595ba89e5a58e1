"""The "fully supervised" baseline: KeypointGAN's detector trained directly on labelled frames.

The paper compares with a supervised detector (section 5, the "fully supervised" rows
of Tables 1-3). Here the baseline has the *same architecture* as KeypointGAN's detector
(Phi then eta, ``KeypointGAN.detect``), so the comparison isolates the supervision,
not the network. It is trained on labelled training frames with

    L = MSE(eta(Phi(x)), p_gt)  +  image_weight * MSE(Phi(x), beta(p_gt))

the first term on eta's soft-argmax keypoints (visible keypoints only), the second,
optional one asks Phi to draw the ground-truth skeleton image (as KeypointGAN's Phi
learns to, but here with paired labels; images with an unlabelled keypoint are left
out of it). ``image_weight`` defaults to 1 (docs/evaluation.md has the short check
behind that choice). Psi is built but neither trained nor used.

The checkpoint has the trainer's folder format (``model.*`` weights, ``state.json`` with
``config``, ``skeleton``, ``train_state``, plus ``"method": "supervised"``), so
:func:`keypointgan.infer.loading.load_trained` and ``keypointgan evaluate`` read it. It
has no pre-trained eta: there is no left/right orientation correction to apply.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any, Optional

import torch

from ..config import Config, save_config
from ..data.base import DataError
from ..losses.eta import eta_prior_loss
from ..models import build_models
from ..models.keypointgan import KeypointGAN
from ..pose import Skeleton, get_skeleton
from ..core import checkpoint as ckpt
from ..core.logger import RunLogger
from ..core.runtime import Runtime
from ..core.seeds import SUPERVISED_BATCH_STREAM, step_seed
from .trainer import TrainingDiverged, TrainState, adam_flags

STAGE = "supervised"
DEFAULT_IMAGE_WEIGHT = 1.0


def labelled_source(data: Any, cfg: Config, skeleton: Skeleton) -> Any:
    """The labelled training images: ``data`` itself, its ``train_labelled``, or the config's data."""
    if data is None:
        from ..data.build import build_data

        data = build_data(cfg, skeleton)
    src = getattr(data, "train_labelled", data) if not hasattr(data, "item") else data
    if src is None or not hasattr(src, "item"):
        raise DataError("the supervised baseline needs labelled training images: the built-in synthetic data "
                        "has them; for your own data pass a LabelledFolder (CLI: --train-root/--train-labels)")
    if len(src) == 0:
        raise DataError("the supervised baseline got an empty labelled training set")
    return src


def labelled_batch(source: Any, batch_size: int, seed: int, step: int) -> dict[str, torch.Tensor]:
    """A batch of labelled images drawn with a generator seeded by (seed, step): reproducible."""
    g = torch.Generator().manual_seed(step_seed(seed, 0, SUPERVISED_BATCH_STREAM, step))
    idx = torch.randint(len(source), (batch_size,), generator=g).tolist()
    items = [source.item(i) for i in idx]
    kp = torch.stack([torch.as_tensor(it["keypoints"], dtype=torch.float32) for it in items])
    vis = torch.stack([torch.as_tensor(it.get("visible", torch.ones(kp.shape[1], dtype=torch.bool)))
                       for it in items]).bool()
    return {"image": torch.stack([it["image"] for it in items]), "keypoints": kp, "visible": vis}


def supervised_loss(model: KeypointGAN, x: torch.Tensor, kp: torch.Tensor, vis: torch.Tensor,
                    runtime: Runtime, image_weight: float) -> dict[str, torch.Tensor]:
    """Keypoint MSE on visible keypoints, plus ``image_weight`` x MSE(Phi(x), beta(p_gt))."""
    with runtime.autocast():
        det = model.detect(x)
    l_kp = eta_prior_loss(det.keypoints.float(), kp, vis.float())
    losses = {"kp_mse": l_kp}
    total = l_kp
    full = vis.all(dim=1)
    if image_weight > 0 and bool(full.any()):
        target = model.render(kp[full])
        l_img = (det.y[full].float() - target).square().mean()
        losses["skeleton_mse"] = l_img
        total = total + image_weight * l_img
    losses["total"] = total
    return losses


def _save(model: KeypointGAN, opt: torch.optim.Optimizer, cfg: Config, skeleton: Skeleton, out_dir: Path,
          state: TrainState, extra: dict[str, Any]) -> Path:
    """A checkpoint in the trainer's format (``model.*`` weights; config, skeleton, train_state)."""
    weights = ckpt.flatten_state_dict("model", model.state_dict())
    tensors, opt_meta = ckpt.optimizer_to_tensors("opt_supervised", opt)
    meta = {"train_state": dataclasses.asdict(state), "config": cfg.to_dict(), "skeleton": skeleton.to_dict(),
            "method": STAGE, "supervised": extra, "opt_supervised": opt_meta}
    return ckpt.save_checkpoint(out_dir / "checkpoints", state.step, weights, tensors, meta)


def train_supervised(cfg: Config, out_dir: str | Path, iterations: Optional[int] = None,
                     deadline: Optional[float] = None, data: Any = None, progress: bool = True,
                     image_weight: float = DEFAULT_IMAGE_WEIGHT) -> tuple[KeypointGAN, Path]:
    """Train the same-architecture detector on labelled frames; returns (model in eval mode, checkpoint).

    Runs ``iterations`` (default ``cfg.train.iterations``) or until ``deadline``
    (``time.monotonic()`` seconds; default from ``cfg.train.minutes``), whichever comes
    first. ``data`` is a ``DataBundle`` (its ``train_labelled`` is used), a labelled
    source (e.g. ``LabelledFolder``) or None (built from ``cfg``). Batches are
    ``cfg.train.batch_size`` images drawn with generators seeded per step; Adam with
    ``cfg.train.lr``/``betas`` and gradient clipping ``cfg.train.grad_clip``; bf16 autocast and
    channels_last as the trainer's Runtime decides. Ctrl-C stops after the current
    step and still writes the checkpoint.
    """
    from tqdm.auto import tqdm

    t = cfg.train
    out_dir = Path(out_dir)
    runtime = Runtime.create(t.device, t.precision, t.channels_last, t.threads)
    skeleton = get_skeleton(cfg.skeleton, cfg.link_set)
    torch.manual_seed(t.seed)
    source = labelled_source(data, cfg, skeleton)
    model = runtime.module(build_models(cfg, skeleton)[0])
    params = list(model.phi.parameters()) + list(model.eta.parameters())
    opt = torch.optim.Adam(params, lr=t.lr, betas=tuple(t.betas), **adam_flags(t.adam_impl))
    total = t.iterations if iterations is None else int(iterations)
    if deadline is None and t.minutes:
        deadline = time.monotonic() + 60.0 * t.minutes
    out_dir.mkdir(parents=True, exist_ok=True)
    save_config(cfg, out_dir / "config.yaml")
    logger = RunLogger(out_dir)
    state = TrainState(eta_pretrained=False)
    extra = {"image_weight": float(image_weight), "train_images": len(source), "loss": "kp_mse + image_weight * "
             "skeleton_mse", "stopped": "iterations"}
    model.train()
    bar = tqdm(total=total, desc="supervised baseline", disable=not progress, dynamic_ncols=True, unit="it")
    start = time.monotonic()
    try:
        while state.step < total:
            if deadline is not None and time.monotonic() >= deadline:
                extra["stopped"] = "deadline"
                break
            step = state.step + 1
            b = labelled_batch(source, t.batch_size, t.seed, step)
            losses = supervised_loss(model, runtime.tensor(b["image"]), runtime.tensor(b["keypoints"]),
                                     runtime.tensor(b["visible"]), runtime, image_weight)
            if not all(torch.isfinite(v) for v in losses.values()):
                raise TrainingDiverged(f"supervised step {step}: non-finite loss "
                                       f"({', '.join(f'{k}={float(v):.4g}' for k, v in losses.items())})")
            opt.zero_grad(set_to_none=True)
            losses["total"].backward()
            if t.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(params, t.grad_clip)
            opt.step()
            state.step = step
            state.elapsed = time.monotonic() - start
            scalars = {k: float(v.detach()) for k, v in losses.items()}
            bar.update(1)
            bar.set_postfix({k: f"{v:.3g}" for k, v in scalars.items()}, refresh=False)
            if t.log_every and step % t.log_every == 0:
                logger.scalars(step, STAGE, scalars)
            if t.checkpoint_every and step % t.checkpoint_every == 0:
                _save(model, opt, cfg, skeleton, out_dir, state, extra)
    except KeyboardInterrupt:
        extra["stopped"] = "interrupted"
        print(f"\nCtrl-C: saving the supervised baseline at step {state.step}", flush=True)
    finally:
        bar.close()
        logger.close()
    path = _save(model, opt, cfg, skeleton, out_dir, state, extra)
    return model.eval(), path
