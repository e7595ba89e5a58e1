"""``keypointgan evaluate``: score a trained run on labelled test images, next to baselines.

One call loads a checkpoint, builds the test set (what the run's dataset provides,
``data.source``, or the user's COCO labels), predicts keypoints with the paper's
left/right orientation correction by the stored pre-trained eta, and scores, with
:func:`keypointgan.eval.methods.compare_methods` by the dataset's evaluation protocol
(``data.protocol`` overrides it; :mod:`keypointgan.eval.protocols`):

- the detector (``unsupervised``; ``unsupervised_no_lr_fix`` without orientation correction;
  a checkpoint of :mod:`keypointgan.train.supervised` is reported as ``supervised``);
- the mean prior pose (``mean_pose``): one pose for every image, the floor to beat;
- supervised post-processing (``ridge_post_processing``): a least-squares map from
  predicted to true keypoints fitted on labelled *training* images; it uses labels, so
  it is reported apart, as in the paper;
- optionally a supervised baseline checkpoint on the same images (``supervised``).

It writes ``metrics.json`` (everything, per category, and a ``summary``), ``per_image.csv``,
``ridge.json`` (the fitted map) and ``best_worst.png``, and prints a table.
Protocols and the meaning of each row: docs/evaluation.md.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from ..config import Config
from ..core.runs import read_meta, resolve_run, run_config
from ..data.base import DataError
from ..data.datasets import EvaluationSources, get_dataset, protocol_name
from ..data.labelled import labelled_folder
from ..eval.evaluator import Predictions
from ..eval.methods import LABELS, NO_LR_FIX, Detector, columns, compare_methods, summary_keys, upgrade_metrics
from ..eval.protocols import get_protocol
from ..eval.report import format_table
from ..core.io import atomic_write_text
from ..errors import UsageError
from ..eval.metrics import per_image_error, to_unit
from ..pose import Skeleton

# -- data ------------------------------------------------------------------------------
def evaluation_data(cfg: Config, skeleton: Skeleton, test_root: Optional[str] = None,
                    test_labels: Optional[str] = None, post_root: Optional[str] = None,
                    post_labels: Optional[str] = None) -> EvaluationSources:
    """Test source, labelled training source (or None), prior poses (or None), with descriptions:
    the user's labels where given, else what the run's dataset (``data.source``) provides."""
    out = get_dataset(cfg.data.source).evaluation_sources(cfg, skeleton, test=test_labels is None,
                                                         train_labelled=post_labels is None)
    if test_labels is not None:
        out.test, out.test_desc = labelled_folder(test_root, test_labels, cfg, skeleton, "test"), str(test_labels)
    elif out.test is None:
        raise DataError("no labelled test images: the run's config has no data.test_labels; "
                        "pass --test-labels (COCO keypoint JSON) and --test-root")
    if post_labels is not None:
        out.train_labelled = labelled_folder(post_root, post_labels, cfg, skeleton, "post-processing")
        out.train_desc = str(post_labels)
    return out


# -- scoring ---------------------------------------------------------------------------
def per_image_percent(pred: np.ndarray, preds: Predictions) -> np.ndarray:
    """Each image's mean keypoint error in % of the image size (NaN: nothing visible)."""
    t = preds.truth
    return 100.0 * per_image_error(to_unit(pred), to_unit(t.keypoints), t.visible)


def _check_same_model(a: Any, b: Any, where: str) -> None:
    if b.skeleton.num_keypoints != a.skeleton.num_keypoints or b.cfg.model.image_size != a.cfg.model.image_size:
        raise UsageError(f"{where}: predicts K={b.skeleton.num_keypoints} at {b.cfg.model.image_size} px, the "
                         f"evaluated model K={a.skeleton.num_keypoints} at {a.cfg.model.image_size} px")


def _per_category(methods: dict[str, dict[str, Any]]) -> dict[str, dict[str, Optional[float]]]:
    """``{category: {method: error %}}`` (the pivot of each method's per-category errors)."""
    cats = sorted({c for m in methods.values() for c in (m.get("error_percent_per_category") or {})})
    return {c: {k: (m.get("error_percent_per_category") or {}).get(c) for k, m in methods.items()} for c in cats}


# -- pictures --------------------------------------------------------------------------
def _caption(width: int, text: str, height: int = 16) -> np.ndarray:
    from PIL import Image, ImageDraw

    band = Image.new("RGB", (width, height), (255, 255, 255))
    ImageDraw.Draw(band).text((4, 2), text, fill=(0, 0, 0))
    return np.asarray(band)


def best_worst_picture(source: Any, pred: np.ndarray, truth: np.ndarray, errors: np.ndarray,
                       skeleton: Skeleton, image_size: int, n: int = 8) -> tuple[np.ndarray, dict[str, list[int]]]:
    """The ``n`` lowest- and highest-error test images with predicted (green) and true (red) skeletons."""
    from ..viz import prediction_grid

    order = [int(i) for i in np.argsort(np.where(np.isnan(errors), np.inf, errors)) if not np.isnan(errors[i])]
    n = max(1, min(n, len(order) // 2 if len(order) > 1 else 1))
    picks = {"best": order[:n], "worst": order[::-1][:n]}
    scale = max(1, 192 // image_size)
    blocks = []
    for name, idx in picks.items():
        grid = prediction_grid([source.item(i)["image"] for i in idx], pred[idx], truth[idx], skeleton.edges,
                               image_size, ncols=n, scale=scale)
        errs = ", ".join(f"{errors[i]:.1f}" for i in idx)
        blocks += [_caption(grid.shape[1], f"{name} {n} (error % of image size: {errs})"), grid]
    width = max(b.shape[1] for b in blocks)
    blocks = [np.pad(b, ((0, 0), (0, width - b.shape[1]), (0, 0)), constant_values=255) for b in blocks]
    return np.concatenate(blocks), picks


def _write_per_image(path: Path, preds: Predictions, errors: np.ndarray) -> None:
    t = preds.truth
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["index", "id", "video", "category", "error_percent", "lr_swapped"])
        for i in range(len(errors)):
            w.writerow([i, t.ids[i], t.videos[i], t.categories[i],
                        "" if math.isnan(errors[i]) else f"{errors[i]:.4f}", int(preds.swapped[i])])


# -- the command -----------------------------------------------------------------------
def evaluate_run(checkpoint: str | Path, out_dir: Optional[str | Path] = None, overrides: Sequence[str] = (),
                 test_root: Optional[str] = None, test_labels: Optional[str] = None, batch_size: int = 64,
                 progress: bool = True, post_root: Optional[str] = None, post_labels: Optional[str] = None,
                 supervised: Optional[str | Path] = None, num_show: int = 8,
                 weights: str = "auto") -> dict[str, Any]:
    """Score a run (see the module docstring); returns what ``metrics.json`` holds.

    ``checkpoint``: a run folder, its ``checkpoints/`` or one ``step_*`` folder.
    ``out_dir`` defaults to ``<run>/eval``. ``overrides`` change data/runtime settings of
    the stored config (not the model). ``test_root``/``test_labels``: COCO keypoint
    labels of your test images (else the run's test data). ``post_root``/``post_labels``:
    labelled training images for the ridge post-processing (synthetic runs have their
    own). ``supervised``: a supervised-baseline run to score on the same images.
    ``progress``: progress bars and the printed table. ``weights``: "auto" (the EMA
    weights when the run has them), "ema" or "raw" (the last training weights).
    """
    from PIL import Image

    from ..infer.loading import load_trained

    path, run_dir = resolve_run(checkpoint)
    meta = read_meta(path)
    cfg = run_config(meta, overrides)
    protocol = get_protocol(protocol_name(cfg))
    tm = load_trained(path, cfg.train.device, cfg.train.precision, cfg.train.channels_last, weights)
    sk, size = tm.skeleton, cfg.model.image_size
    protocol.check(sk)
    method = "supervised" if meta.get("method") == "supervised" else "unsupervised"
    data = evaluation_data(cfg, sk, test_root, test_labels, post_root, post_labels)
    test = data.test

    no_lr = method + NO_LR_FIX
    detectors = [Detector(method, LABELS.get(method, method), tm.model, tm.runtime, tm.eta_pretrained,
                          no_lr_label=LABELS.get(no_lr, no_lr))]
    if supervised is not None:
        sup = load_trained(resolve_run(supervised)[0], cfg.train.device, cfg.train.precision, cfg.train.channels_last)
        _check_same_model(tm, sup, f"supervised baseline {supervised}")
        detectors.append(Detector("supervised", LABELS["supervised"], sup.model, sup.runtime))
    comp = compare_methods(test, detectors, sk, size, prior=data.prior, train_labelled=data.train_labelled,
                           protocol=protocol, batch_size=batch_size, progress=progress)
    preds = comp.predictions[method]
    methods = comp.metrics
    labels = {r.key: r.label for r in comp}

    out = Path(out_dir) if out_dir is not None else run_dir / "eval"
    out.mkdir(parents=True, exist_ok=True)
    post: dict[str, Any] = {"train_source": data.train_desc}
    if comp.ridge is not None:
        comp.ridge.save(out / "ridge.json")
        post.update(train_images=comp.ridge_images, alpha=comp.ridge.alpha, regressor="ridge.json")

    errors = per_image_percent(preds.oriented, preds)
    picture, picks = best_worst_picture(test, preds.oriented, preds.truth.keypoints, errors, sk, size, num_show)
    Image.fromarray(picture).save(out / "best_worst.png")
    _write_per_image(out / "per_image.csv", preds, errors)
    t = preds.truth

    def described(i: int) -> dict[str, Any]:
        return {"index": i, "id": t.ids[i], "video": t.videos[i], "category": t.categories[i],
                "error_percent": float(errors[i])}

    cats = {c: t.categories.count(c) for c in sorted(set(t.categories))}
    result: dict[str, Any] = {
        "checkpoint": meta["_folder"], "run": str(run_dir), "step": tm.step, "method": method,
        "weights": tm.weights,
        "model": {"skeleton": sk.name, "num_keypoints": sk.num_keypoints, "image_size": size},
        "protocol": protocol.describe(),
        "test": {"source": data.test_desc, "num_images": len(t.ids), "images_per_category": cats},
        "orientation_correction": {"reference": "pre-trained eta" if tm.eta_pretrained is not None else None,
                                   "swapped_fraction": float(np.mean(preds.swapped)) if len(t.ids) else 0.0},
        "mean_pose": {"prior": data.prior_desc},
        "post_processing": post,
        "methods": {k: {"label": labels[k], **v} for k, v in methods.items()},
        "per_category_error_percent": _per_category(methods),
        "best_worst": {"picture": "best_worst.png", **{k: [described(i) for i in v] for k, v in picks.items()}},
        "files": ["metrics.json", "per_image.csv", "best_worst.png"] + (["ridge.json"] if "alpha" in post else []),
    }
    result["summary"] = {"checkpoint": meta["_folder"], "step": tm.step, "weights": tm.weights,
                         "protocol": protocol.name, "test_images": len(t.ids),
                         "test_source": data.test_desc,
                         **{key: {k: v.get(key) for k, v in methods.items()} for key in summary_keys(protocol)},
                         "out_dir": str(out)}
    atomic_write_text(out / "metrics.json", json.dumps(result, indent=1))
    if progress:
        print(report_text(result))
    return result


def read_metrics(path: str | Path) -> dict[str, Any]:
    """A ``metrics.json`` (a file, or the folder holding it), with the row keys of today
    (files written before the rename call ``unsupervised_no_lr_fix`` ``unsupervised_raw``)."""
    p = Path(path)
    p = p / "metrics.json" if p.is_dir() else p
    return upgrade_metrics(json.loads(p.read_text()))


def report_text(result: dict[str, Any]) -> str:
    """The printed report: method x metric, then error % per category."""
    rows = [(m["label"], m) for m in result["methods"].values()]
    protocol = get_protocol(result["protocol"]["name"]) if "protocol" in result else None
    lines = [f"{result['checkpoint']} (step {result['step']}) on {result['test']['num_images']} images of "
             f"{result['test']['source']}", "", format_table(rows, columns(protocol))]
    per = result["per_category_error_percent"]
    if len(per) > 1:
        keys = list(result["methods"])
        lines += ["", "error % per category:",
                  format_table([(c, per[c]) for c in per], [(k, k) for k in keys])]
    swapped = result["orientation_correction"]["swapped_fraction"]
    if result["orientation_correction"]["reference"]:
        lines += ["", f"L/R orientation correction swapped {100 * swapped:.1f}% of the test images"]
    lines.append(f"wrote {Path(result['summary']['out_dir']) / 'metrics.json'}")
    return "\n".join(lines)
