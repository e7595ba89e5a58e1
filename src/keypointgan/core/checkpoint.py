"""Checkpoints that are safe to load and never half-written.

A checkpoint is a folder ``step_NNNNNNN/`` holding
- ``weights.safetensors``: every network and loss buffer (prefix per module);
- ``state.safetensors``: optimiser moments, random-generator states, the history pool;
- ``state.json``: step counters, optimiser hyper-parameters, the config, timings.

Nothing is unpickled: tensors come from safetensors, the rest from JSON. A checkpoint
is written into a temporary folder and renamed into place, then the ``latest`` file is
replaced atomically, so an interrupted write leaves the previous checkpoint intact.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Mapping

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..errors import KeypointGANError
from .io import atomic_write_text

LATEST = "latest"


class CheckpointError(KeypointGANError, RuntimeError):
    """A checkpoint is missing, incomplete or does not fit the model."""


def flatten_state_dict(prefix: str, state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {f"{prefix}.{k}": v.detach().cpu().contiguous() for k, v in state.items()}


def unflatten_state_dict(prefix: str, tensors: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    p = prefix + "."
    return {k[len(p):]: v for k, v in tensors.items() if k.startswith(p)}


def optimizer_to_tensors(prefix: str, opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split an optimiser state dict into tensors (for safetensors) and JSON metadata."""
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for idx, st in sd["state"].items():
        for k, v in st.items():
            if isinstance(v, torch.Tensor):
                tensors[f"{prefix}.{idx}.{k}"] = v.detach().cpu().contiguous()
            else:
                scalars[f"{idx}.{k}"] = v
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def optimizer_from_tensors(prefix: str, opt: torch.optim.Optimizer, tensors: Mapping[str, torch.Tensor],
                           meta: Mapping[str, Any]) -> None:
    state: dict[int, dict[str, Any]] = {}
    p = prefix + "."
    for key, v in tensors.items():
        if key.startswith(p):
            idx, name = key[len(p):].split(".", 1)
            state.setdefault(int(idx), {})[name] = v
    for key, v in meta.get("scalars", {}).items():
        idx, name = key.split(".", 1)
        state.setdefault(int(idx), {})[name] = v
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def save_checkpoint(root: str | Path, step: int, weights: Mapping[str, torch.Tensor],
                    state_tensors: Mapping[str, torch.Tensor], meta: Mapping[str, Any], keep: int = 3) -> Path:
    """Write ``root/step_NNNNNNN`` atomically and point ``root/latest`` at it."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    name = f"step_{step:07d}"
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".{name}."))
    try:
        save_file(dict(weights), str(tmp / "weights.safetensors"))
        save_file(dict(state_tensors), str(tmp / "state.safetensors"))
        (tmp / "state.json").write_text(json.dumps(meta, indent=1))
        final = root / name
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    atomic_write_text(root / LATEST, name + "\n")
    _prune(root, keep, final)
    return final


def _prune(root: Path, keep: int, current: Path) -> None:
    ckpts = sorted(p for p in root.glob("step_*") if p.is_dir())
    for p in ckpts[:-keep] if keep > 0 else []:
        if p != current:
            shutil.rmtree(p, ignore_errors=True)


def latest_checkpoint(root: str | Path) -> Path | None:
    """The folder ``latest`` points at, or None when there is no checkpoint yet."""
    root = Path(root)
    if (root / "weights.safetensors").is_file():
        return root
    if not (root / LATEST).is_file() and (root / "checkpoints" / LATEST).is_file():
        root = root / "checkpoints"  # a run folder
    marker = root / LATEST
    if not marker.is_file():
        return None
    path = root / marker.read_text().strip()
    if not path.is_dir():
        raise CheckpointError(f"{marker}: points at {path.name}, which does not exist")
    return path


def load_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], dict[str, Any]]:
    """(weights, state tensors, metadata) of a checkpoint folder (or the run folder's latest)."""
    path = Path(path)
    found = latest_checkpoint(path) if path.is_dir() else None
    if found is None:
        raise CheckpointError(f"{path}: no checkpoint found (expected a step_* folder or a 'latest' file)")
    try:
        weights = load_file(str(found / "weights.safetensors"))
        state = load_file(str(found / "state.safetensors")) if (found / "state.safetensors").is_file() else {}
        meta = json.loads((found / "state.json").read_text()) if (found / "state.json").is_file() else {}
    except (SafetensorError, OSError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{found}: unreadable checkpoint: {e}") from None
    return weights, state, meta


def load_module_state(module: torch.nn.Module, prefix: str, weights: Mapping[str, torch.Tensor],
                      where: str = "checkpoint") -> None:
    """Load ``prefix.*`` tensors into ``module`` with an error that says what does not fit."""
    sd = unflatten_state_dict(prefix, weights)
    if not sd:
        raise CheckpointError(f"{where}: has no weights for '{prefix}'")
    try:
        module.load_state_dict(sd)
    except RuntimeError as e:
        raise CheckpointError(f"{where}: weights for '{prefix}' do not fit this model "
                              f"(different skeleton or config?): {str(e).splitlines()[0]}") from None
