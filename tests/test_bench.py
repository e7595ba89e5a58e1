"""`keypointgan bench --quick`: every section is there, FLOPs are counted, beta agrees with
the naive renderer, the JSON is written. No timing thresholds (speed lives in benchmarks)."""

from __future__ import annotations

import json

import pytest
import torch

from keypointgan.commands.bench import SECTION_TITLES
from keypointgan.cli import main


@pytest.fixture
def keep_threads():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)  # the bench pins threads like the trainer does


def test_quick_bench_prints_every_section_and_writes_json(tmp_path, capsys, keep_threads):
    out = tmp_path / "sub" / "bench.json"
    # one thread: the quick bench must stay fast on a shared 2-core machine
    assert main(["bench", "--quick", "--out", str(out), "--quiet", "train.threads=1"]) == 0
    text = capsys.readouterr().out
    for title in SECTION_TITLES.values():
        assert title in text
    for word in ("cpu:", "device:", "threads", "torch", "reference = fp32 NCHW", "default = "):
        assert word in text

    res = json.loads(out.read_text())
    assert not list(out.parent.glob(".*.tmp"))  # atomic write left no temp file
    assert res["header"]["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    rows = res["rows"]
    train = [r for r in rows if r["section"] == "train"]
    infer = [r for r in rows if r["section"] == "infer"]
    render = [r for r in rows if r["section"] == "render"]

    assert {(r["size"], r["path"]) for r in train} == {(32, "reference"), (32, "default")}
    for r in train:
        assert r["gflop"] > 0 and r["gflop_per_s"] > 0
        assert r["seconds"] > 0 and r["images_per_s"] > 0 and r["vs_reference"] > 0
        assert r["peak_mib"] is not None and r["peak_mib"] >= 0
        for c in ("generator_s", "discriminator_s", "eta_s"):
            assert r[c] is not None and 0 < r[c] <= r["seconds"]
    # both paths run the same operations: the same FLOP count
    assert train[0]["gflop"] == pytest.approx(train[1]["gflop"], rel=1e-6)
    ref = next(r for r in train if r["path"] == "reference")
    assert ref["mode"] == "fp32 NCHW" and ref["vs_reference"] == pytest.approx(1.0)
    default = next(r for r in train if r["path"] == "default")
    assert res["header"]["default_path"] == default["mode"]  # the header names what was measured

    assert {(r["batch"], r["path"]) for r in infer} == {(1, "reference"), (4, "reference"), (1, "default"),
                                                        (4, "default")}
    assert all(r["images_per_s"] > 0 for r in infer)

    assert {r["impl"] for r in render} == {"beta", "naive"}
    for r in render:
        assert r["skeleton"] == "synth_humanoid" and r["seconds"] > 0
        assert r["max_abs_diff"] < 1e-4
        assert r["max_rel_grad_diff"] < 1e-3


def test_runtime_overrides_define_the_default_path_and_never_the_reference():
    """``keypointgan bench train.precision=bf16`` times bf16 against the fixed fp32 NCHW reference."""
    from keypointgan.commands.bench import BenchSettings
    from keypointgan.config import load_config

    s = BenchSettings.create(quick=True, overrides=["train.channels_last=true", "model.base_width=8"])
    assert s.runtime_overrides() == ["train.channels_last=true"]
    cfgs = {p: load_config("cpu", s.base_overrides(32, 4) + s.path_overrides(p)).train
            for p in ("reference", "default")}
    assert cfgs["reference"].channels_last is False and cfgs["reference"].precision == "fp32"
    assert cfgs["default"].channels_last is True and cfgs["default"].precision == "auto"
    plain = BenchSettings.create(quick=True)
    assert load_config("cpu", plain.base_overrides(32, 4) + plain.path_overrides("default")).train.channels_last is None
    comp = BenchSettings.create(quick=True, overrides=["train.compile=true"])
    cfgs = {p: load_config("cpu", comp.base_overrides(32, 4) + comp.path_overrides(p)).train
            for p in ("reference", "default")}
    assert cfgs["default"].compile is True and cfgs["reference"].compile is False  # the reference stays eager
