"""Run logs: TensorBoard scalars and image grids, plus JSON-lines and CSV for scripts."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Mapping

import torch


class RunLogger:
    """Writes ``scalars.jsonl`` / ``scalars.csv`` (long format: step, stage, name, value)
    and TensorBoard events under ``out_dir/tb``. Disabled on non-zero ranks."""

    def __init__(self, out_dir: str | Path, enabled: bool = True, resume_step: int | None = None) -> None:
        self.enabled = enabled
        self.out_dir = Path(out_dir)
        self._tb = None
        if not enabled:
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.jsonl = self.out_dir / "scalars.jsonl"
        self.csv = self.out_dir / "scalars.csv"
        if resume_step is not None:
            self._truncate(resume_step)
        elif self.jsonl.exists():
            self.jsonl.unlink()
            self.csv.unlink(missing_ok=True)
        try:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(str(self.out_dir / "tb"), purge_step=resume_step)
        except ImportError:  # tensorboard is a dependency, but logs must not kill a run
            self._tb = None

    def _truncate(self, step: int) -> None:
        """Drop records past ``step`` so a resumed run's logs read as one run."""
        if not self.jsonl.exists():
            return
        keep = [ln for ln in self.jsonl.read_text().splitlines() if ln and _record_key(json.loads(ln)) <= step]
        self.jsonl.write_text("".join(k + "\n" for k in keep))
        with open(self.csv, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["step", "stage", "name", "value"])
            for ln in keep:
                r = json.loads(ln)
                for k, v in r["scalars"].items():
                    w.writerow([r["step"], r["stage"], k, v])

    def scalars(self, step: int, stage: str, values: Mapping[str, float]) -> None:
        if not self.enabled:
            return
        values = {k: float(v) for k, v in values.items()}
        with open(self.jsonl, "a") as f:
            f.write(json.dumps({"step": step, "stage": stage, "scalars": values}) + "\n")
        new = not self.csv.exists()
        with open(self.csv, "a", newline="") as f:
            w = csv.writer(f)
            if new:
                w.writerow(["step", "stage", "name", "value"])
            for k, v in values.items():
                w.writerow([step, stage, k, v])
        if self._tb is not None:
            for k, v in values.items():
                self._tb.add_scalar(f"{stage}/{k}", v, step)

    def images(self, step: int, tag: str, grid: torch.Tensor) -> None:
        """``grid`` is (3, H, W) in [0, 1]."""
        if self.enabled and self._tb is not None:
            self._tb.add_image(tag, grid.clamp(0, 1), step)

    def close(self) -> None:
        if self._tb is not None:
            self._tb.flush()
            self._tb.close()


def _record_key(record: Mapping) -> int:
    return int(record["step"])


def read_scalars(out_dir: str | Path) -> list[dict]:
    """All records of ``scalars.jsonl`` (for reports and tests)."""
    path = Path(out_dir) / "scalars.jsonl"
    if not path.exists():
        return []
    return [json.loads(ln) for ln in path.read_text().splitlines() if ln]
