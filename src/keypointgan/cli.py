"""The ``keypointgan`` command line: synth, train, evaluate, predict, demo, params, ...

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

from .config import ConfigError, load_config


def _add_config_args(p: argparse.ArgumentParser, default: str = "cpu") -> None:
    p.add_argument("--config", "-c", default=default,
                   help=f"preset name (cpu, paper, release, demo) or YAML file (default: {default})")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                   help="config overrides, e.g. train.iterations=500 model.image_size=128")


def _cmd_synth(a: argparse.Namespace) -> int:
    from .data.synthetic import write_synthetic_dataset

    cfg = load_config(a.config, a.overrides)
    out = write_synthetic_dataset(a.out, cfg.data, cfg.model.image_size)
    print(f"wrote synthetic dataset to {a.out}" + (f" ({out})" if out else ""))
    return 0


def _cmd_train(a: argparse.Namespace) -> int:
    from .train.trainer import Trainer

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
                           test_labels=a.test_labels, batch_size=a.batch_size)
    print(json.dumps(metrics.get("summary", metrics), indent=1))
    return 0


def _cmd_predict(a: argparse.Namespace) -> int:
    from .infer.predict import predict

    predict(a.checkpoint, a.inputs, a.out, batch_size=a.batch_size, overlays=not a.no_overlays,
            video_overlay=a.video_overlay)
    return 0


def _cmd_demo(a: argparse.Namespace) -> int:
    from .demo import run_demo

    report = run_demo(a.out, minutes=a.minutes, config=a.config, overrides=a.overrides, progress=not a.quiet)
    print(f"report: {report}")
    return 0


def _cmd_params(a: argparse.Namespace) -> int:
    from .models.summary import format_parameter_table, parameter_counts
    from .pose import get_skeleton

    cfg = load_config(a.config, a.overrides)
    sk = get_skeleton(a.skeleton or cfg.skeleton, cfg.link_set)
    print(format_parameter_table(parameter_counts(cfg, sk)))
    return 0


def _cmd_skeletons(a: argparse.Namespace) -> int:
    from .pose import get_skeleton, list_skeletons

    for name in list_skeletons():
        s = get_skeleton(name)
        print(f"{name:16s} K={s.num_keypoints:3d} links={len(s.edges):3d} link_sets={sorted(s.link_sets) or '-'} "
              f"subsets={sorted(s.subsets) or '-'}")
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

    q = add("evaluate", _cmd_evaluate, "score a trained model on labelled test data; writes metrics.json")
    q.add_argument("checkpoint", help="run folder or checkpoint folder")
    q.add_argument("--out", "-o", help="where to write metrics.json and pictures (default: RUN/eval)")
    q.add_argument("--test-root", help="folder of test videos/images (default: the run's config)")
    q.add_argument("--test-labels", help="COCO keypoint JSON of the test images")
    q.add_argument("--batch-size", type=int, default=64)
    q.add_argument("overrides", nargs="*", metavar="KEY=VALUE")

    q = add("predict", _cmd_predict, "detect keypoints in images, folders or videos -> COCO JSON + overlays")
    q.add_argument("checkpoint", help="run folder or checkpoint folder")
    q.add_argument("inputs", nargs="+", help="image files, folders of images, or video files")
    q.add_argument("--out", "-o", required=True, help="output folder")
    q.add_argument("--batch-size", type=int, default=32)
    q.add_argument("--no-overlays", action="store_true", help="write keypoints only")
    q.add_argument("--video-overlay", action="store_true", help="write an annotated video for each video input")

    q = add("demo", _cmd_demo, "the main job: train on the built-in data, evaluate, write an HTML report")
    q.add_argument("--out", "-o", default="runs/demo", help="output folder (default: runs/demo)")
    q.add_argument("--minutes", type=float, default=15.0, help="time budget for the whole job (default: 15)")
    q.add_argument("--quiet", "-q", action="store_true")
    _add_config_args(q, default="demo")

    q = add("params", _cmd_params, "print parameter counts of Phi, Psi, eta and D")
    q.add_argument("--skeleton", help="skeleton name or file (default: the config's)")
    _add_config_args(q, default="paper")

    add("skeletons", _cmd_skeletons, "list the built-in skeletons")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ConfigError, FileNotFoundError) as e:
        print(f"keypointgan {args.command}: error: {e}", file=sys.stderr)
        return 2
    except ValueError as e:  # DataError, SkeletonError, WeightsError, CheckpointError are ValueErrors/RuntimeErrors
        print(f"keypointgan {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
