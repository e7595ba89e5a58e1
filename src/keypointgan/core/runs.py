"""Run folders: from a path a user gives to the checkpoint, its metadata and its config.

A *run* is the folder a training command writes (``RUN/config.yaml``,
``RUN/checkpoints/step_*/``, ``RUN/scalars.jsonl``); commands accept the run folder,
its ``checkpoints`` folder or one ``step_*`` folder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from ..config import Config, apply_overrides, config_from_dict
from . import checkpoint as ckpt

FIXED_SECTIONS = ("model", "render", "skeleton", "link_set")  # the weights fix these; overrides cannot change them


def resolve_run(path: str | Path) -> tuple[Path, Path]:
    """``(checkpoint path for load_checkpoint, run folder)`` of a run, checkpoints or step folder."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p}: no such run or checkpoint folder")
    if (p / "checkpoints").is_dir():
        return p / "checkpoints", p
    if (p / "weights.safetensors").is_file():
        return p, (p.parent.parent if p.parent.name == "checkpoints" else p)
    if (p / ckpt.LATEST).is_file():
        return p, (p.parent if p.name == "checkpoints" else p)
    raise ckpt.CheckpointError(f"{p}: no checkpoint found (expected RUN/checkpoints/, a checkpoints folder "
                               "with a 'latest' file, or a step_* folder with weights.safetensors)")


def read_meta(checkpoint: Path) -> dict[str, Any]:
    """``state.json`` of the checkpoint ``checkpoint`` resolves to (no weights read)."""
    found = ckpt.latest_checkpoint(checkpoint)
    if found is None or not (found / "state.json").is_file():
        raise ckpt.CheckpointError(f"{checkpoint}: no state.json with the run's config and skeleton")
    try:
        meta = json.loads((found / "state.json").read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ckpt.CheckpointError(f"{found / 'state.json'}: unreadable: {e}") from None
    if "config" not in meta or "skeleton" not in meta:
        raise ckpt.CheckpointError(f"{found}: checkpoint has no config/skeleton metadata (state.json)")
    meta["_folder"] = str(found)
    return meta


def run_config(meta: dict[str, Any], overrides: Sequence[str] = ()) -> Config:
    """The run's stored config with ``section.key=value`` overrides of data and runtime settings."""
    cfg = config_from_dict(meta["config"], "state.json config")
    return apply_overrides(cfg, overrides, FIXED_SECTIONS, "the trained weights fix {key}; only data.* and train.* "
                                                          "(device, precision, ...) can change at evaluation")
