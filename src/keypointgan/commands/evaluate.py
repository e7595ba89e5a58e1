"""``keypointgan evaluate``: score a trained run on labelled test images, next to baselines.

One call loads a checkpoint, builds the test set (the run's synthetic test split, or
the user's COCO labels), predicts keypoints with the paper's left/right orientation
correction by the stored pre-trained eta, and scores, with
:func:`keypointgan.eval.evaluator.score`:

- the detector (``unsupervised``; ``unsupervised_raw`` without orientation correction;
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

from ..config import Config, ConfigError, _build, parse_override
from ..data.base import DataError
from ..eval.evaluator import Predictions, mean_pose_baseline, predict_labelled, ridge_post_processing, score
from ..core.io import atomic_write_text
from ..errors import UsageError
from ..eval.metrics import per_image_error, to_unit
from ..pose import Skeleton
from ..core import checkpoint as ckpt

LABELS = {
    "unsupervised": "KeypointGAN (unsupervised, L/R by pre-trained eta)",
    "unsupervised_raw": "KeypointGAN (unsupervised, no L/R correction)",
    "supervised": "supervised baseline (same architecture)",
    "mean_pose": "mean prior pose",
    "ridge_post_processing": "KeypointGAN + supervised post-processing (ridge)",
}
COLUMNS = [("error_percent", "error %"), ("error_percent_min_over_flip", "min-over-flip %"),
           ("error_px", "error px"), ("pck@0.05", "PCK@0.05"), ("pck@0.1", "PCK@0.1"), ("auc@30px", "AUC@30px")]
SUMMARY_KEYS = ("error_percent", "error_percent_min_over_flip", "pck@0.1")
FIXED_SECTIONS = ("model", "render")  # the weights fix these; overriding them cannot be honoured


# -- locating and configuring a run ----------------------------------------------------
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
    cfg = _build(Config, meta["config"], "state.json config")
    for ov in overrides:
        keys, value = parse_override(ov)
        if keys[0] in FIXED_SECTIONS or keys[0] in ("skeleton", "link_set"):
            raise ConfigError(f"override '{ov}': the trained weights fix {keys[0]}; only data.* and train.* "
                              "(device, precision, ...) can change at evaluation")
        nested: Any = value
        for k in reversed(keys):
            nested = {k: nested}
        _build(Config, nested, f"override '{ov}'", base=cfg)
    return cfg


# -- data ------------------------------------------------------------------------------
def labelled_folder(root: Optional[str | Path], labels: str | Path, cfg: Config, skeleton: Skeleton,
                    what: str) -> Any:
    """A ``LabelledFolder`` of the user's COCO labels; errors say which file and the model's K."""
    from ..data.labelled import LabelledFolder

    labels = Path(labels)
    if not labels.is_file():
        raise FileNotFoundError(f"{what} labels {labels}: no such file")
    try:
        return LabelledFolder(root if root is not None else labels.parent, labels, cfg.model.image_size, skeleton,
                              crop=cfg.data.test_crop, margin=cfg.data.bbox_margin)
    except DataError as e:
        raise DataError(f"{what} labels do not fit the model (skeleton '{skeleton.name}', "
                        f"K={skeleton.num_keypoints}): {e}") from None


def _prior(cfg: Config, skeleton: Skeleton) -> tuple[Any, str]:
    """The run's prior poses (for the mean-pose baseline), or None with the reason."""
    from ..data.build import _subset
    from ..data.prior import load_prior

    if cfg.data.source == "synthetic":
        from ..data.synthetic import synthetic_sources

        src = synthetic_sources(cfg.data, cfg.model.image_size, skeleton)
        return _subset(src.prior.to_prior(), cfg).keypoints, "synthetic prior split"
    d = cfg.data
    if not d.prior:
        return None, "the run's config names no prior (data.prior)"
    from ..pose import get_skeleton

    try:
        prior = load_prior(d.prior, skeleton, image_size=d.prior_image_size, num=d.num_prior, seed=d.prior_seed,
                           crop=d.prior_crop, prior_skeleton=get_skeleton(d.prior_skeleton) if d.prior_skeleton else None)
    except (DataError, OSError) as e:
        return None, f"prior {d.prior} not readable: {e}"
    return prior.keypoints, str(d.prior)


def evaluation_data(cfg: Config, skeleton: Skeleton, test_root: Optional[str] = None,
                    test_labels: Optional[str] = None, post_root: Optional[str] = None,
                    post_labels: Optional[str] = None) -> dict[str, Any]:
    """Test source, labelled training source (or None), prior poses (or None), with descriptions."""
    out: dict[str, Any] = {"train_labelled": None, "train_desc": "no labelled training images"}
    bundle = None
    if cfg.data.source == "synthetic" and (test_labels is None or post_labels is None):
        from ..data.build import build_data

        bundle = build_data(cfg, skeleton)
    if test_labels is not None:
        out["test"], out["test_desc"] = labelled_folder(test_root, test_labels, cfg, skeleton, "test"), str(test_labels)
    elif bundle is not None:
        out["test"], out["test_desc"] = bundle.test, "synthetic test split"
    elif cfg.data.test_labels:
        out["test"] = labelled_folder(cfg.data.test_root or cfg.data.root, cfg.data.test_labels, cfg, skeleton, "test")
        out["test_desc"] = str(cfg.data.test_labels)
    else:
        raise DataError("no labelled test images: the run's config has no data.test_labels; "
                        "pass --test-labels (COCO keypoint JSON) and --test-root")
    if post_labels is not None:
        out["train_labelled"] = labelled_folder(post_root, post_labels, cfg, skeleton, "post-processing")
        out["train_desc"] = str(post_labels)
    elif bundle is not None and bundle.train_labelled is not None:
        out["train_labelled"], out["train_desc"] = bundle.train_labelled, "synthetic training split"
    if bundle is not None:
        out["prior"], out["prior_desc"] = bundle.prior, "synthetic prior split"
    else:
        out["prior"], out["prior_desc"] = _prior(cfg, skeleton)
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


def format_table(rows: Sequence[tuple[str, dict[str, Any]]], columns: Sequence[tuple[str, str]]) -> str:
    """A fixed-width text table: one row per method, ``columns`` as (key, header)."""
    def cell(v: Any) -> str:
        return "-" if v is None else (f"{v:.3f}" if isinstance(v, float) and abs(v) < 1 else
                                      f"{v:.2f}" if isinstance(v, float) else str(v))

    name_w = max([len("method")] + [len(n) for n, _ in rows])
    widths = [max(len(h), 8) for _, h in columns]
    lines = ["  ".join(["method".ljust(name_w)] + [h.rjust(w) for (_, h), w in zip(columns, widths)])]
    for name, m in rows:
        lines.append("  ".join([name.ljust(name_w)] + [cell(m.get(k)).rjust(w) for (k, _), w in zip(columns, widths)]))
    return "\n".join(lines)


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
    tm = load_trained(path, cfg.train.device, cfg.train.precision, cfg.train.channels_last, weights)
    sk, size = tm.skeleton, cfg.model.image_size
    method = "supervised" if meta.get("method") == "supervised" else "unsupervised"
    data = evaluation_data(cfg, sk, test_root, test_labels, post_root, post_labels)
    test = data["test"]

    preds = predict_labelled(tm.model, test, tm.runtime, sk, tm.eta_pretrained, batch_size, progress)
    methods: dict[str, dict[str, Any]] = {method: score(preds.oriented, preds.truth, sk, size)}
    if tm.eta_pretrained is not None:
        methods["unsupervised_raw" if method == "unsupervised" else f"{method}_raw"] = score(
            preds.keypoints, preds.truth, sk, size)
    if supervised is not None:
        sup = load_trained(resolve_run(supervised)[0], cfg.train.device, cfg.train.precision, cfg.train.channels_last)
        _check_same_model(tm, sup, f"supervised baseline {supervised}")
        sp = predict_labelled(sup.model, test, sup.runtime, sk, None, batch_size, progress)
        methods["supervised"] = score(sp.keypoints, sp.truth, sk, size)
    if data["prior"] is not None:
        methods["mean_pose"] = mean_pose_baseline(data["prior"], preds.truth, sk, size)

    out = Path(out_dir) if out_dir is not None else run_dir / "eval"
    out.mkdir(parents=True, exist_ok=True)
    post: dict[str, Any] = {"train_source": data["train_desc"]}
    if data["train_labelled"] is not None:
        tp = predict_labelled(tm.model, data["train_labelled"], tm.runtime, sk, tm.eta_pretrained, batch_size, progress)
        mapped, reg = ridge_post_processing(tp.oriented, tp.truth.keypoints, preds.oriented)
        methods["ridge_post_processing"] = score(mapped, preds.truth, sk, size)
        reg.save(out / "ridge.json")
        post.update(train_images=len(tp.truth.ids), alpha=reg.alpha, regressor="ridge.json")

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
        "test": {"source": data["test_desc"], "num_images": len(t.ids), "images_per_category": cats},
        "orientation_correction": {"reference": "pre-trained eta" if tm.eta_pretrained is not None else None,
                                   "swapped_fraction": float(np.mean(preds.swapped)) if len(t.ids) else 0.0},
        "mean_pose": {"prior": data["prior_desc"]},
        "post_processing": post,
        "methods": {k: {"label": LABELS.get(k, k), **v} for k, v in methods.items()},
        "per_category_error_percent": _per_category(methods),
        "best_worst": {"picture": "best_worst.png", **{k: [described(i) for i in v] for k, v in picks.items()}},
        "files": ["metrics.json", "per_image.csv", "best_worst.png"] + (["ridge.json"] if "alpha" in post else []),
    }
    result["summary"] = {"checkpoint": meta["_folder"], "step": tm.step, "weights": tm.weights,
                         "test_images": len(t.ids),
                         "test_source": data["test_desc"],
                         **{key: {k: v.get(key) for k, v in methods.items()} for key in SUMMARY_KEYS},
                         "out_dir": str(out)}
    atomic_write_text(out / "metrics.json", json.dumps(result, indent=1))
    if progress:
        print(report_text(result))
    return result


def report_text(result: dict[str, Any]) -> str:
    """The printed report: method x metric, then error % per category."""
    rows = [(m["label"], m) for m in result["methods"].values()]
    lines = [f"{result['checkpoint']} (step {result['step']}) on {result['test']['num_images']} images of "
             f"{result['test']['source']}", "", format_table(rows, COLUMNS)]
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
