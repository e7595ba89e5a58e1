"""``keypointgan examples``: list the real-video examples, or prepare one (:mod:`keypointgan.examples`)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from ..errors import UsageError


def list_examples() -> str:
    """What ``keypointgan examples`` prints: each example, its skeleton and what it needs."""
    from ..examples import EXAMPLES

    lines = [f"{ex.name:8s} {ex.description}\n{'':8s} skeleton: {ex.skeleton}; needs: {'; '.join(ex.needs)}"
             for ex in EXAMPLES.values()]
    lines.append("\nprepare one with: keypointgan examples prepare NAME OUT [--image-size 128] [--cache-dir DIR]")
    return "\n".join(lines)


def prepare_example(name: str, out: str | Path, image_size: int = 128, cache_dir: Optional[str] = None,
                    overwrite: bool = False, download: bool = True, quiet: bool = False,
                    dlib_model: Optional[str] = None) -> str:
    """Write example ``name`` to ``out``; returns the summary the command prints (counts, label
    noise, the train command)."""
    from ..examples import EXAMPLES

    kw = {"image_size": image_size, "cache_dir": cache_dir, "overwrite": overwrite, "download": download,
          "progress": None if quiet else (lambda m: print(m, flush=True))}
    if dlib_model:
        if name != "faces":
            raise UsageError("--dlib-model is for the 'faces' example")
        kw["dlib_model"] = dlib_model
    summary = EXAMPLES[name].prepare(out, **kw)
    c, noise = summary["counts"], summary["label_noise"]
    return (f"wrote {out}: {c['train_frames']} training frames in {c['train_videos']} videos, {c['prior_poses']} "
            f"prior poses, {c['test_labelled']} labelled test images; label noise (% of the crop): "
            f"{noise['all'].get('mean_percent', 'n/a')} over all frames, {noise['kept'].get('mean_percent', 'n/a')} "
            f"over the labels kept, {noise['kept_test'].get('mean_percent', 'n/a')} on the test labels\n"
            f"train with:\n  {summary['commands']['train']}")
