"""The command line and the main job, at a tiny size."""

import json

import pytest
import torch

from keypointgan.cli import build_parser, main
from keypointgan.config import load_config
from test_train import TINY


@pytest.mark.parametrize("command", ["synth", "train", "evaluate", "supervised", "predict", "transfer", "edit",
                                     "export", "demo", "params", "skeletons"])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as e:
        main([command, "--help"])
    assert e.value.code == 0
    assert "usage: keypointgan " + command in capsys.readouterr().out


def test_params_prints_the_paper_preset_counts(capsys):
    assert main(["params", "--config", "paper", "--skeleton", "h36m"]) == 0
    out = capsys.readouterr().out
    assert "3,134,081" in out and "4,825,635" in out  # Phi and Psi at the paper preset (docs/architecture.md)


def test_bad_config_and_override_are_clear_errors(capsys, tmp_path):
    assert main(["params", "--config", "no_such_preset"]) == 2
    assert "unknown config 'no_such_preset'" in capsys.readouterr().err
    assert main(["params", "train.no_such_key=1"]) == 2
    assert "unknown key 'no_such_key'" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [1, 2\n")
    assert main(["params", "--config", str(bad)]) == 2
    assert "bad.yaml: not valid YAML" in capsys.readouterr().err


def test_train_then_resume_from_the_cli(tmp_path):
    run = tmp_path / "run"
    args = ["train", "--quiet", "--out", str(run), *TINY, "train.eta_pretrain_iterations=2", "train.iterations=2"]
    assert main(args) == 0
    assert main(args[:1] + ["--resume"] + args[1:-1] + ["train.iterations=4"]) == 0
    steps = [json.loads(ln)["step"] for ln in (run / "scalars.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5, 6]  # 2 eta + 2 joint, then 2 more joint after the resume


def test_demo_writes_a_report_with_metrics_and_pictures(tmp_path):
    from keypointgan.commands.demo import run_demo

    report = run_demo(tmp_path, minutes=0.4, config="demo", progress=False, ridge_images=40,
                      overrides=TINY + ["train.eta_pretrain_iterations=3", "train.checkpoint_every=0"])
    html = report.read_text()
    for name in ("test_predictions.png", "reconstructions.png", "losses.png"):
        assert name in html and (report.parent / name).stat().st_size > 1000
    summary = json.loads((report.parent / "summary.json").read_text())
    names = list(summary["metrics"])
    assert any("mean prior pose" in n for n in names) and any("ridge" in n for n in names)
    assert any("EMA weights" in n for n in names) and any("last-step weights" in n for n in names)
    assert all(m["error_percent"] > 0 for m in summary["metrics"].values())
    assert summary["iterations"] >= 1 and summary["timing"]["total_s"] < 0.4 * 60 + 60


def test_synth_writes_own_data_that_trains_and_evaluates_from_folders(tmp_path):
    data = tmp_path / "data"
    assert main(["synth", str(data), "model.image_size=32", "data.synthetic_videos=6",
                 "data.synthetic_frames=12"]) == 0
    for name in ("train", "test", "prior.json", "test.json", "skeleton.yaml", "preview.png"):
        assert (data / name).exists(), name
    run = tmp_path / "run"
    folder = ["data.source=folder", f"data.root={data / 'train'}", f"data.prior={data / 'prior.json'}",
              f"data.test_root={data / 'test'}", f"data.test_labels={data / 'test.json'}",
              f"skeleton={data / 'skeleton.yaml'}", "data.frame_gap=[1,5]"]
    assert main(["train", "--quiet", "--out", str(run), *TINY, *folder, "train.eta_pretrain_iterations=2",
                 "train.iterations=2"]) == 0
    assert main(["evaluate", str(run), "-q"]) == 0
    metrics = json.loads((run / "eval" / "metrics.json").read_text())
    assert metrics["methods"]["unsupervised"]["num_images"] > 0


def test_demo_fits_eta_pretraining_to_its_time_share(tmp_path):
    from keypointgan.commands.demo import eta_iterations_for
    from keypointgan.train.trainer import Trainer

    cfg = load_config("demo", TINY + [f"out_dir={tmp_path}", "train.eta_pretrain_iterations=50"])
    tr = Trainer(cfg, progress=False)
    before = [p.detach().clone() for p in tr.model.eta.parameters()]
    assert eta_iterations_for(tr, 1e-6) == 1  # no time: one step, not zero or negative
    assert eta_iterations_for(tr, 1e6) == 50  # plenty of time: the config's cap
    assert all(torch.equal(a, p) for a, p in zip(before, tr.model.eta.parameters()))  # timing trains nothing
    assert all(p.grad is None for p in tr.model.eta.parameters())
    tr.cfg.train.eta_pretrain_iterations = 0
    assert eta_iterations_for(tr, 1e6) == 0  # pre-training switched off stays off


def test_demo_measures_its_evaluation_reserve_on_this_cpu(tmp_path, monkeypatch):
    """The reserve comes from a timed pass over test images (the evaluation's own code),
    scaled to the number of detections; it trains nothing and leaves the mode alone."""
    import keypointgan.eval.evaluator as evaluator
    from keypointgan.commands.demo import eval_seconds_for
    from keypointgan.train.trainer import Trainer

    tr = Trainer(load_config("demo", TINY + [f"out_dir={tmp_path}"]), progress=False)
    model = tr.inference_model
    before = [p.detach().clone() for p in model.parameters()]
    model.train()
    seen = []
    real = evaluator.predict_labelled
    monkeypatch.setattr(evaluator, "predict_labelled", lambda m, src, *a, **k: seen.append(len(src)) or real(m, src, *a, **k))
    assert eval_seconds_for(tr, 0) == 0.0 and not seen
    s = eval_seconds_for(tr, 1000, probe=16)
    n = min(16, len(tr.data.test))
    assert s > 0 and seen == [n, n]  # a warm-up of the same shape, then the timed pass (at most the test set)
    assert model.training and all(torch.equal(a, p) for a, p in zip(before, model.parameters()))


def test_a_folder_named_like_a_preset_does_not_hide_the_preset(tmp_path, monkeypatch):
    from keypointgan.config import ConfigError, load_config

    monkeypatch.chdir(tmp_path)
    (tmp_path / "demo").mkdir()  # e.g. the output of an earlier `keypointgan demo --out demo`
    assert load_config("demo").out_dir == "runs/demo"  # the preset, not the folder
    (tmp_path / "mine").mkdir()
    with pytest.raises(ConfigError, match="is a folder"):
        load_config("mine")
