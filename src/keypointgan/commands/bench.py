"""Speed figures of one machine, side by side: ``keypointgan bench``.

One run measures, on the device at hand:

1. ``train``: a full KeypointGAN iteration (:meth:`Trainer.train_step`: generator,
   discriminator and eta steps) at each image size, for the **reference path** (fp32,
   NCHW, eager: how the authors' release runs) and the **default path** (what
   ``train.precision=auto train.channels_last=auto`` resolves to here: what training
   uses by default);
2. ``infer``: :meth:`KeypointGAN.detect` (Phi + eta, eval mode, no_grad) images/s at
   small and large batches, both paths;
3. ``render``: the renderer beta forward + backward against the naive all-pixels x
   all-links reference (:func:`render_skeleton_dense`), with their largest differences.

Everything here returns plain rows (dicts); :func:`format_report` turns them into one
aligned text table and :func:`write_json` saves them. No argument parsing: that is
``cli.py``'s job.

How the figures are taken (docs/performance.md, "keypointgan bench"):

- seconds are the **median** over ``iters`` timed repetitions after one warm-up
  repetition (on CUDA the device is synchronised before every clock read);
- GFLOP are **counted** with :class:`torch.utils.flop_counter.FlopCounterMode` over one
  real training step (the warm-up step): matrix products and convolutions, forward and
  backward; element-wise ops, norms and the optimiser are not counted;
- peak memory is the growth of the peak during the timed repetitions over what was in
  use just before them (after the warm-up: weights, optimiser moments and one-off
  caches are excluded, activations and workspaces counted): on CUDA ``torch.cuda.max_memory_allocated`` (after
  ``reset_peak_memory_stats``); on CPU the process's peak resident set size
  (``VmHWM`` in ``/proc/self/status``, reset through ``/proc/self/clear_refs``), after
  ``gc.collect()`` and glibc's ``malloc_trim``; where the peak cannot be reset, the
  growth of ``resource.getrusage().ru_maxrss`` (a lower bound: 0 unless the process
  reaches a new peak). RSS is page-granular and allocator-dependent: small buffers can
  read as 0.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import torch

from ..errors import UsageError

PATHS = {
    # name -> config overrides
    "reference": ["train.precision=fp32", "train.channels_last=false", "train.compile=false"],
    "default": ["train.precision=auto", "train.channels_last=null"],  # null: auto, as training's default
}
# overrides of these keys on the command line replace the default path's auto (to time a candidate,
# e.g. ``keypointgan bench train.precision=bf16`` or ``train.compile=true``); the reference path never changes
RUNTIME_KEYS = ("train.precision", "train.channels_last", "train.compile", "train.compile_backend")

# --quick: tiny networks, for tests (the same pieces, not meaningful speeds)
QUICK_MODEL = ["model.base_width=8", "model.max_width=32", "model.disc_layers=1", "model.disc_width=8"]
BENCH_DATA = ["data.synthetic_videos=12", "data.synthetic_frames=40"]
QUICK_DATA = ["data.synthetic_videos=12", "data.synthetic_frames=16"]
QUIET = ["train.log_every=0", "train.checkpoint_every=0", "train.image_every=0", "train.eval_every=0"]


@dataclass
class BenchSettings:
    """What to measure. :meth:`quick` gives the test-sized version."""

    sizes: list[int] = field(default_factory=lambda: [64, 128])
    batch: int = 16
    iters: int = 5
    config: str = "cpu"
    device: str = "auto"
    overrides: list[str] = field(default_factory=list)  # KEY=VALUE for every config (the bench's own win)
    infer_size: int = 64
    infer_batches: list[int] = field(default_factory=lambda: [1, 64])
    render_skeleton: str = "synth_humanoid"
    quick: bool = False

    @classmethod
    def create(cls, sizes: Optional[Sequence[int]] = None, batch: Optional[int] = None,
               iters: Optional[int] = None, quick: bool = False, **kw: Any) -> "BenchSettings":
        """Settings with ``quick``'s defaults (32 px, batch 4, 1 iteration) where not given."""
        s = cls(quick=quick, **kw)
        if quick:
            s.sizes, s.batch, s.iters, s.infer_size, s.infer_batches = [32], 4, 1, 32, [1, 4]
        if sizes:
            s.sizes = [int(v) for v in sizes]
        if batch is not None:
            s.batch = int(batch)
        if iters is not None:
            s.iters = int(iters)
        if s.batch < 1 or s.iters < 1 or not s.sizes:
            raise UsageError("bench: batch and iters must be >= 1 and at least one size given")
        return s

    def base_overrides(self, size: int, batch: int) -> list[str]:
        model = QUICK_MODEL if self.quick else []
        data = QUICK_DATA if self.quick else BENCH_DATA
        # the user's overrides may change the networks or the data, not what a row says it measured
        return (model + data + list(self.overrides) + QUIET
                + [f"model.image_size={size}", f"train.batch_size={batch}", f"train.device={self.device}"])

    def runtime_overrides(self) -> list[str]:
        """The user's overrides of :data:`RUNTIME_KEYS` (they define the default path when given)."""
        return [o for o in self.overrides if o.split("=", 1)[0].strip() in RUNTIME_KEYS]

    def path_overrides(self, path: str) -> list[str]:
        """What makes ``path`` itself, applied after :meth:`base_overrides`."""
        return PATHS[path] + (self.runtime_overrides() if path == "default" else [])


@dataclass
class BenchResult:
    header: dict[str, Any]
    rows: list[dict[str, Any]]
    settings: dict[str, Any]

    def section(self, name: str) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["section"] == name]


# -- measuring ----------------------------------------------------------------------------
def _sync(device: torch.device) -> Callable[[], None]:
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return lambda: None


def _median_seconds(fn: Callable[[], Any], iters: int, sync: Callable[[], None]) -> float:
    """Median wall seconds of ``fn`` over ``iters`` calls (the caller has warmed it up)."""
    times = []
    for _ in range(iters):
        sync()
        t = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _proc_status_kib(key: str) -> Optional[int]:
    try:
        for line in open("/proc/self/status"):
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def _malloc_trim() -> None:
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _ru_maxrss_kib() -> int:
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r // 1024 if sys.platform == "darwin" else r  # bytes on macOS, KiB on Linux


class PeakMemory:
    """Peak memory growth (MiB) of the code in a ``with`` block; see the module docstring."""

    def __init__(self, device: torch.device) -> None:
        self.device, self.mib = device, float("nan")

    @staticmethod
    def method(device: torch.device) -> str:
        if device.type == "cuda":
            return "torch.cuda.max_memory_allocated growth"
        if PeakMemory._reset_hwm():
            return "peak RSS growth (VmHWM reset via /proc/self/clear_refs)"
        return "ru_maxrss growth (lower bound)"

    @staticmethod
    def _reset_hwm() -> bool:
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            return _proc_status_kib("VmHWM") is not None
        except OSError:
            return False

    def __enter__(self) -> "PeakMemory":
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._base = torch.cuda.memory_allocated(self.device)
            return self
        _malloc_trim()
        self._hwm = self._reset_hwm()
        self._base = _proc_status_kib("VmRSS") if self._hwm else _ru_maxrss_kib()
        return self

    def __exit__(self, *exc: Any) -> bool:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.mib = (torch.cuda.max_memory_allocated(self.device) - self._base) / 2**20
        else:
            peak = _proc_status_kib("VmHWM") if self._hwm else _ru_maxrss_kib()
            self.mib = max(0, (peak or 0) - (self._base or 0)) / 1024
        return False


def _count_flops(fn: Callable[[], Any]) -> tuple[Any, int]:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        out = fn()
    return out, int(counter.get_total_flops())


def _mode_name(precision: str, channels_last: bool) -> str:
    return f"{precision} {'channels_last' if channels_last else 'NCHW'}"


# -- 1. training iteration ----------------------------------------------------------------
COMPONENTS = (("generator", "generator_step"), ("discriminator", "discriminator_step"), ("eta", "eta_step"))


def _instrument(trainer: Any, sync: Callable[[], None]) -> dict[str, list[float]]:
    """Time the trainer's three steps from inside ``train_step`` (instance attributes shadow the methods)."""
    times: dict[str, list[float]] = {name: [] for name, _ in COMPONENTS}
    for name, attr in COMPONENTS:
        orig = getattr(trainer, attr)

        def timed(*a: Any, _orig: Callable = orig, _name: str = name, **k: Any) -> Any:
            sync()
            t = time.perf_counter()
            out = _orig(*a, **k)
            sync()
            times[_name].append(time.perf_counter() - t)
            return out

        setattr(trainer, attr, timed)
    return times


def bench_train_step(settings: BenchSettings, size: int, path: str, data: Any = None,
                     log: Callable[[str], None] = lambda s: None) -> tuple[dict[str, Any], Any]:
    """One ``train`` row: a full iteration of ``path`` at ``size`` px; returns (row, data) so
    that the other path at this size reuses the same synthetic data."""
    from ..config import load_config
    from ..train.trainer import Trainer

    cfg = load_config(settings.config, settings.base_overrides(size, settings.batch) + settings.path_overrides(path))
    with tempfile.TemporaryDirectory(prefix="kpgan-bench-") as tmp:
        tr = Trainer(cfg, out_dir=tmp, data=data, progress=False)
        try:
            rt = tr.runtime
            sync = _sync(rt.device)
            mode = _mode_name(rt.precision, rt.channels_last) + (" compiled" if cfg.train.compile else "")
            log(f"train {size} px {path} ({mode})")
            _, flops = _count_flops(tr.train_step)  # the warm-up step, counted
            sync()
            times = _instrument(tr, sync)
            with PeakMemory(rt.device) as mem:
                sec = _median_seconds(tr.train_step, settings.iters, sync)
            comp = {f"{name}_s": (statistics.median(v) if v else float("nan")) for name, v in times.items()}
        finally:
            tr.close()
    row = {"section": "train", "size": size, "batch": settings.batch, "path": path,
           "mode": mode, "seconds": sec,
           "images_per_s": settings.batch / sec, "gflop": flops / 1e9, "gflop_per_s": flops / 1e9 / sec,
           "peak_mib": mem.mib, **comp}
    return row, tr.data


# -- 2. inference ---------------------------------------------------------------------------
def bench_inference(settings: BenchSettings, path: str, log: Callable[[str], None] = lambda s: None) -> list[dict]:
    """``infer`` rows of ``path``: detect (Phi + eta) at each of ``settings.infer_batches``."""
    from ..config import load_config
    from ..models import KeypointGAN
    from ..models.blocks import fold_batch_norms
    from ..core.runtime import Runtime

    size = settings.infer_size
    cfg = load_config(settings.config, settings.base_overrides(size, settings.batch) + settings.path_overrides(path))
    t = cfg.train
    # as infer.loading.load_trained runs a checkpoint: channels_last unless set, BatchNorms folded;
    # the reference path (fp32, NCHW set explicitly) keeps its BatchNorms, as the release
    rt = Runtime.create(t.device, t.precision, True if t.channels_last is None else t.channels_last, t.threads)
    sync = _sync(rt.device)
    torch.manual_seed(0)
    model = rt.module(KeypointGAN(cfg)).eval()
    if path != "reference":
        fold_batch_norms(model)
    most = max(settings.infer_batches)
    rows = []
    for b in settings.infer_batches:
        log(f"infer {size} px batch {b} {path} ({_mode_name(rt.precision, rt.channels_last)})")
        x = rt.tensor(torch.rand(b, 3, size, size) * 2 - 1)
        calls = max(1, math.ceil(most / b))  # each timed sample sees as many images as the largest batch

        def run() -> None:
            with torch.no_grad(), rt.autocast():
                for _ in range(calls):
                    model.detect(x)

        run()  # warm-up
        sec = _median_seconds(run, settings.iters, sync) / calls
        rows.append({"section": "infer", "size": size, "batch": b, "path": path,
                     "mode": _mode_name(rt.precision, rt.channels_last), "seconds": sec,
                     "images_per_s": b / sec})
    return rows


# -- 3. the renderer beta -----------------------------------------------------------------
def bench_renderer(settings: BenchSettings, size: int, log: Callable[[str], None] = lambda s: None) -> list[dict]:
    """``render`` rows at ``size``: beta and the naive reference, forward + backward, with
    their outputs' and keypoint gradients' largest differences."""
    from ..pose import get_skeleton
    from ..pose.render import render_skeleton, render_skeleton_dense
    from ..core.runtime import resolve_device

    dev = resolve_device(settings.device)
    sync = _sync(dev)
    sk = get_skeleton(settings.render_skeleton)
    edges = list(sk.edges)
    g = torch.Generator().manual_seed(size)
    kp0 = (torch.rand(settings.batch, sk.num_keypoints, 2, generator=g) * 1.6 - 0.8).to(dev)
    upstream = torch.rand(settings.batch, 1, size, size, generator=g).to(dev)
    results = {}
    for impl, fn in (("beta", render_skeleton), ("naive", render_skeleton_dense)):
        log(f"render {size} px {impl}")
        kp = kp0.clone().requires_grad_()

        def step() -> torch.Tensor:
            kp.grad = None
            out = fn(kp, edges, size)
            out.backward(upstream)
            return out

        out = step()  # warm-up; its outputs and gradients are compared
        grad = kp.grad.detach().clone()
        with PeakMemory(dev) as mem:
            sec = _median_seconds(step, settings.iters, sync)
        results[impl] = (out.detach(), grad, sec, mem.mib)
    (o_b, g_b, *_), (o_n, g_n, sec_n, _) = results["beta"], results["naive"]
    diff_out = float((o_b - o_n).abs().max())
    # gradients are sums over up to H*W pixels: float32 rounding grows with them, so relative
    diff_grad = float((g_b - g_n).abs().max() / g_n.abs().max().clamp_min(1e-12))
    rows = []
    for impl, (_, _, sec, mib) in results.items():
        rows.append({"section": "render", "size": size, "batch": settings.batch, "skeleton": sk.name,
                     "links": len(edges), "impl": impl, "seconds": sec, "peak_mib": mib,
                     "speedup_vs_naive": sec_n / sec, "max_abs_diff": diff_out, "max_rel_grad_diff": diff_grad})
    return rows


# -- the whole run ------------------------------------------------------------------------


def machine_header(device: str = "auto") -> dict[str, Any]:
    """What the figures were measured on."""
    from ..core.runtime import auto_channels_last, cpu_kind, cpu_model_name, resolve_device, resolve_precision

    dev = resolve_device(device)
    return {
        "cpu": cpu_model_name(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cpu_kind": cpu_kind(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": str(dev),
        "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
        "default_path": _mode_name(prec := resolve_precision("auto", dev), auto_channels_last(prec, dev)),
        "reference_path": _mode_name("fp32", False),
        "memory": PeakMemory.method(dev),
        "load_avg_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,  # other work on the CPUs
    }


def _add_ratios(rows: list[dict], keys: Sequence[str]) -> None:
    """``vs_reference``: images/s of each row over the reference row with the same ``keys``."""
    ref = {tuple(r[k] for k in keys): r for r in rows if r["path"] == "reference"}
    for r in rows:
        base = ref.get(tuple(r[k] for k in keys))
        r["vs_reference"] = r["images_per_s"] / base["images_per_s"] if base else float("nan")


def run_bench(settings: BenchSettings, log: Callable[[str], None] = lambda s: None) -> BenchResult:
    """Every measurement of ``settings``, in one process, one after the other."""
    start = time.perf_counter()
    header = machine_header(settings.device)
    rows: list[dict[str, Any]] = []
    train: list[dict[str, Any]] = []
    for size in settings.sizes:
        data = None
        for path in PATHS:
            row, data = bench_train_step(settings, size, path, data, log)
            train.append(row)
    _add_ratios(train, ("size", "batch"))
    header["default_path"] = next((r["mode"] for r in train if r["path"] == "default"), header["default_path"])
    header["default_overrides"] = settings.runtime_overrides()
    infer: list[dict[str, Any]] = []
    for path in PATHS:
        infer += bench_inference(settings, path, log)
    _add_ratios(infer, ("size", "batch"))
    render: list[dict[str, Any]] = []
    for size in settings.sizes:
        render += bench_renderer(settings, size, log)
    rows = train + infer + render
    header["threads"] = torch.get_num_threads()  # after the trainer pinned them (train.threads)
    header["seconds_total"] = time.perf_counter() - start
    return BenchResult(header, rows, asdict(settings))


# -- output -------------------------------------------------------------------------------
def _fmt(v: Any, spec: str) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    return format(v, spec) if spec else str(v)


def _table(title: str, columns: Sequence[tuple[str, str, str]], rows: Sequence[dict]) -> list[str]:
    """Aligned text table: ``columns`` are (heading, row key, format spec); text left, numbers right."""
    cells = [[_fmt(r.get(key), spec) for _, key, spec in columns] for r in rows]
    widths = [max([len(h)] + [len(c[i]) for c in cells]) for i, (h, _, _) in enumerate(columns)]
    left = [spec == "" for _, _, spec in columns]

    def line(vals: Sequence[str]) -> str:
        return "  ".join(v.ljust(w) if lft else v.rjust(w) for v, w, lft in zip(vals, widths, left)).rstrip()

    out = [title, line([h for h, _, _ in columns]), "  ".join("-" * w for w in widths)]
    return out + [line(c) for c in cells]


TRAIN_COLUMNS = [("size", "size", "d"), ("batch", "batch", "d"), ("path", "path", ""), ("mode", "mode", ""),
                 ("s/it", "seconds", ".3f"), ("img/s", "images_per_s", ".1f"), ("vs ref", "vs_reference", ".2f"),
                 ("GFLOP/it", "gflop", ".2f"), ("GFLOP/s", "gflop_per_s", ".1f"), ("peak MiB", "peak_mib", ".0f"),
                 ("gen s", "generator_s", ".3f"), ("disc s", "discriminator_s", ".3f"), ("eta s", "eta_s", ".3f")]
INFER_COLUMNS = [("size", "size", "d"), ("batch", "batch", "d"), ("path", "path", ""), ("mode", "mode", ""),
                 ("s/batch", "seconds", ".4f"), ("img/s", "images_per_s", ".1f"), ("vs ref", "vs_reference", ".2f")]
RENDER_COLUMNS = [("size", "size", "d"), ("batch", "batch", "d"), ("skeleton", "skeleton", ""),
                  ("links", "links", "d"), ("impl", "impl", ""), ("s fwd+bwd", "seconds", ".4f"),
                  ("peak MiB", "peak_mib", ".1f"), ("vs naive", "speedup_vs_naive", ".2f"),
                  ("max|diff| out", "max_abs_diff", ".1e"), ("rel diff grad", "max_rel_grad_diff", ".1e")]

SECTION_TITLES = {
    "train": "1. training iteration (Trainer.train_step: generator + discriminator + eta steps)",
    "infer": "2. inference (model.detect = Phi + eta, eval mode, no_grad)",
    "render": "3. renderer beta forward + backward: project's beta vs naive all-pixels x all-links",
}


def format_report(result: BenchResult) -> str:
    """The header and the three sections as one plain-text report."""
    h, s = result.header, result.settings
    dev = h["device"] + (f" ({h['device_name']})" if h["device_name"] != "cpu" else "")
    lines = [
        "keypointgan bench" + ("  [--quick: tiny networks, figures not meaningful]" if s["quick"] else ""),
        f"cpu:       {h['cpu']}  |  capability {h['cpu_capability']}  |  {h['cpu_kind']}",
        f"device:    {dev}  |  threads {h['threads']}  |  load average {_fmt(h['load_avg_1min'], '.2f')} at start"
        f"  |  torch {h['torch']}  |  python {h['python']}",
        f"paths:     reference = {h['reference_path']} (the authors' release);  "
        f"default = {h['default_path']} ("
        + (" ".join(h.get("default_overrides") or []) + ", set on the command line)"
           if h.get("default_overrides") else "train.precision=auto train.channels_last=auto, resolved here)"),
        f"config:    {s['config']}{' ' + ' '.join(s['overrides']) if s['overrides'] else ''}  |  "
        f"median of {s['iters']} after 1 warm-up  |  memory: {h['memory']}",
        "",
    ]
    for name, cols in (("train", TRAIN_COLUMNS), ("infer", INFER_COLUMNS), ("render", RENDER_COLUMNS)):
        lines += _table(SECTION_TITLES[name], cols, result.section(name)) + [""]
    lines.append("GFLOP: counted by torch.utils.flop_counter.FlopCounterMode over one step (convolutions and matrix "
                 "products, forward + backward); vs ref: images/s over the reference path's")
    lines.append(f"bench took {h['seconds_total']:.1f} s")
    return "\n".join(lines)


def _jsonable(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return v


def write_json(result: BenchResult, path: str | Path) -> Path:
    """The header, settings and rows as JSON (atomic: a temp file, then a rename)."""
    from ..core.io import atomic_write_text

    path = Path(path)
    atomic_write_text(path, json.dumps(_jsonable(asdict(result)), indent=1) + "\n")
    return path
