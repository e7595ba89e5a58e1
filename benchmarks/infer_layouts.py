"""Phi + eta inference, A/B of layouts and folded BatchNorms (random weights, 64 px, batch 64).

Prints images/s (median of 4 interleaved rounds of 3 calls) for NCHW / channels_last, with
and without :func:`keypointgan.models.blocks.fold_batch_norms`. ``BF16=1``: bf16 autocast
(channels_last only). AVX2 kernels on an AVX-512 CPU:
``ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 python benchmarks/infer_layouts.py``
(docs/performance.md, "Inference: channels_last and folded BatchNorms").
"""
import os, sys, time, copy, torch
from keypointgan.config import load_config
from keypointgan.models.keypointgan import KeypointGAN
from keypointgan.models.blocks import fold_batch_norms
torch.manual_seed(0); torch.set_num_threads(2)
bf16 = bool(os.environ.get("BF16"))
print("capability", torch.backends.cpu.get_cpu_capability(), "bf16", bf16)
m = KeypointGAN(load_config("cpu", [])).eval().requires_grad_(False)
for mod in m.modules():
    if isinstance(mod, torch.nn.BatchNorm2d):
        mod.running_mean.normal_(0, .1); mod.running_var.uniform_(.5, 2)
f = copy.deepcopy(m); fold_batch_norms(f)
x = torch.randn(64, 3, 64, 64)
arms = {}
for name, mod in (("plain", m), ("folded", f)):
    for cl in ((True,) if bf16 else (False, True)):
        mm = copy.deepcopy(mod).to(memory_format=torch.channels_last if cl else torch.contiguous_format)
        xx = x.contiguous(memory_format=torch.channels_last) if cl else x
        arms[f"{name} {'CL' if cl else 'NCHW'}"] = (mm, xx)
res = {k: [] for k in arms}
with torch.no_grad(), torch.autocast("cpu", torch.bfloat16, enabled=bf16):
    for k, (mm, xx) in arms.items(): mm.detect(xx); mm.detect(xx)
    for r in range(4):
        for k, (mm, xx) in arms.items():
            t = time.perf_counter(); mm.detect(xx); mm.detect(xx); mm.detect(xx); res[k].append(3 * 64 / (time.perf_counter() - t))
for k, v in res.items():
    v = sorted(v); print(f"{k:14s} median {v[len(v)//2]:6.1f} img/s  (all {' '.join(f'{a:.1f}' for a in v)})")
