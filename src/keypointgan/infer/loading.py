"""Load a trained KeypointGAN from a run folder or checkpoint folder (safetensors only)."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from torch import nn

from ..config import Config, config_from_dict
from ..errors import UsageError
from ..models import build_models
from ..models.blocks import fold_batch_norms
from ..models.keypointgan import KeypointGAN
from ..pose import Skeleton
from ..core import checkpoint as ckpt
from ..core.runtime import Runtime


@dataclass
class TrainedModel:
    cfg: Config
    skeleton: Skeleton
    model: KeypointGAN
    eta_pretrained: Optional[nn.Module]
    runtime: Runtime
    step: int
    weights: str = "model"  # which weights were loaded: "model_ema" or "model"


WEIGHTS = ("auto", "ema", "raw")


def load_trained(path: str | Path, device: str = "auto", precision: str = "auto",
                 channels_last: Optional[bool] = None, weights_kind: str = "auto") -> TrainedModel:
    """The model of a checkpoint, in eval mode, with the config and skeleton it was trained with.

    For inference only: its BatchNorms are folded into the convolutions before them
    (:func:`~keypointgan.models.blocks.fold_batch_norms`), so it cannot be trained further.

    ``weights_kind``: "auto" takes the EMA weights when the checkpoint has them (the
    trainer evaluates those), "ema" requires them, "raw" takes the last training weights.
    """
    if weights_kind not in WEIGHTS:
        raise UsageError(f"weights must be one of {', '.join(WEIGHTS)}, got {weights_kind!r}")
    weights, _, meta = ckpt.load_checkpoint(path)
    if "config" not in meta or "skeleton" not in meta:
        raise ckpt.CheckpointError(f"{path}: checkpoint has no config/skeleton metadata (state.json)")
    cfg = config_from_dict(meta["config"], f"{path} (state.json config)")
    skeleton = Skeleton.from_dict(meta["skeleton"], source=f"{path} (state.json skeleton)")
    # inference: channels_last unless asked otherwise, also for fp32 on a CPU, where training
    # runs NCHW; with the BatchNorms folded, Phi + eta ran 57 against 38 images/s at batch 64
    # (fp32, AVX2 kernels; docs/performance.md)
    runtime = Runtime.create(device, precision, True if channels_last is None else channels_last)
    model, _ = build_models(cfg, skeleton)
    has_ema = any(k.startswith("model_ema.") for k in weights)
    if weights_kind == "ema" and not has_ema:
        raise ckpt.CheckpointError(f"{path}: checkpoint has no EMA weights (model_ema.*); use --weights raw")
    prefix = "model_ema" if has_ema and weights_kind != "raw" else "model"
    ckpt.load_module_state(model, prefix, weights, str(path))
    eta_pre = None
    if any(k.startswith("eta_pretrained.") for k in weights):
        eta_pre = copy.deepcopy(model.eta)
        ckpt.load_module_state(eta_pre, "eta_pretrained", weights, str(path))
        eta_pre = runtime.module(eta_pre).eval().requires_grad_(False)
    model = runtime.module(model).eval()
    fold_batch_norms(model)  # inference only: one pass over every activation map fewer, same outputs
    step = int(meta.get("train_state", {}).get("step", 0))
    return TrainedModel(cfg, skeleton, model, eta_pre, runtime, step, prefix)
