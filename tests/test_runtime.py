"""Runtime: `train.precision: auto` picks bf16 only where it was measured to be fast, and a run
records the machine it ran on."""

import json

import pytest
import torch

from keypointgan.core import runtime
from test_train import tiny
from keypointgan.train.trainer import Trainer


@pytest.fixture
def fake_cpu(monkeypatch):
    """Pretend to be a CPU of ``vendor`` with ``flags``; returns what ``auto`` picks there."""
    def make(flags, vendor="GenuineIntel"):
        monkeypatch.setattr(runtime, "cpu_flags", lambda: frozenset(flags))
        monkeypatch.setattr(runtime, "cpu_vendor", lambda: vendor)
        return runtime.resolve_precision("auto", torch.device("cpu"))

    return make


AVX2 = {"avx2", "fma"}
AVX512_BF16 = AVX2 | {"avx512f", "avx512bw", "avx512_bf16"}


def test_auto_precision_is_bf16_only_where_it_was_measured_fast(fake_cpu):
    assert fake_cpu(AVX512_BF16 | {"amx_bf16", "amx_tile"}) == "bf16"  # Sapphire Rapids with AMX
    assert fake_cpu(AVX512_BF16, "AuthenticAMD") == "bf16"  # Zen 4: 1.98x per training iteration
    assert fake_cpu(AVX512_BF16, "GenuineIntel") == "fp32"  # AMX hidden: bf16 convs 1.26x slower
    assert fake_cpu(AVX2, "AuthenticAMD") == "fp32"  # Zen 3: bf16 emulated
    assert fake_cpu(AVX2 | {"avx512f"}, "AuthenticAMD") == "fp32"  # AVX-512 without bf16
    assert fake_cpu(set(), "") == "fp32"  # nothing known (no /proc/cpuinfo)
    assert runtime.resolve_precision("fp32", torch.device("cpu")) == "fp32"  # explicit wins
    assert runtime.resolve_precision("bf16", torch.device("cpu")) == "bf16"


def test_this_cpus_kind_line_names_its_bf16_rule():
    kind = runtime.cpu_kind()
    assert kind.startswith(torch.backends.cpu.get_cpu_capability())
    assert ("AMX-bf16" in kind) == ("amx_bf16" in runtime.cpu_flags())
    assert ("bf16 fast" in kind) == (runtime.cpu_has_fast_bf16() and "amx_bf16" not in runtime.cpu_flags())


def test_checkpoints_record_the_machine_and_resume_warns_when_precision_changes(tmp_path):
    tr = Trainer(tiny(tmp_path, "train.precision=fp32", "train.eta_pretrain_iterations=1", "train.iterations=1"),
                 progress=False)
    tr.pretrain_eta()
    tr.train()
    path = tr.save()
    rec = json.loads((path / "state.json").read_text())["machine"]
    assert rec["precision"] == "fp32" and rec["channels_last"] is False and rec["device"] == "cpu"
    assert rec["cpu_capability"] == torch.backends.cpu.get_cpu_capability() and rec["threads"] >= 1
    with pytest.warns(UserWarning, match="trained in fp32, it continues in bf16"):
        Trainer(tiny(tmp_path, "train.precision=bf16"), resume=True, progress=False)  # no step taken
