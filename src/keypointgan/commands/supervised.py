"""``keypointgan supervised``: train the fully supervised baseline (:mod:`keypointgan.train.supervised`)
on the labelled training images of the run's dataset, or on a user's COCO-labelled frames."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional, Sequence

from ..config import ConfigError, load_config


def run_supervised(out: str | Path, config: str | Path = "cpu", overrides: Sequence[str] = (),
                   minutes: Optional[float] = None, iterations: Optional[int] = None,
                   train_root: Optional[str] = None, train_labels: Optional[str] = None,
                   image_weight: float = 1.0, progress: bool = True) -> Path:
    """Train the baseline into the run folder ``out``; returns its checkpoint. ``train_labels``
    (with ``train_root``, default the labels' folder): COCO keypoint JSON of labelled frames."""
    from ..data.labelled import labelled_folder
    from ..pose import get_skeleton
    from ..train.supervised import train_supervised

    if (train_root or train_labels) and not train_labels:
        raise ConfigError("--train-root needs --train-labels (COCO keypoint JSON of the labelled frames)")
    cfg = load_config(config, list(overrides) + [f"out_dir={out}"])
    data = None
    if train_labels:
        data = labelled_folder(train_root, train_labels, cfg, get_skeleton(cfg.skeleton, cfg.link_set), "training")
    deadline = time.monotonic() + 60.0 * minutes if minutes else None
    _, path = train_supervised(cfg, out, iterations=iterations, deadline=deadline, data=data, progress=progress,
                               image_weight=image_weight)
    return path
