"""Export the detector (Phi then eta) as TorchScript and ONNX, with a parity check.

The exported graph takes images ``(B, 3, S, S)`` in ``[-1, 1]`` (S = the model's
``image_size``, centre-cropped as :func:`keypointgan.infer.predict.prepare` does) and
returns ``keypoints (B, K, 2)``, ``(x, y)`` normalised to ``[-1, 1]``
(``align_corners=False``, see :mod:`keypointgan.pose.coords`), and ``confidence
(B, K)`` in ``[0, 1]``. The batch dimension is dynamic. Export is fp32, eval mode, on
the CPU; the pre-trained eta's left/right orientation step is not included.

ONNX: the ``torch.export``-based exporter (``dynamo=True``, the default since PyTorch
2.9) needs ``onnxscript``; when it is not installed (as here) or fails, the
TorchScript-based exporter (``dynamo=False``) is used. Either way the result is
checked against PyTorch with onnxruntime.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator, Optional, Sequence

import numpy as np
import torch
from torch import nn

from ..pose.softargmax import heatmaps_to_keypoints, keypoint_confidence
from ..errors import UsageError
from .loading import TrainedModel
from .predict import PathLike, load_model

log = logging.getLogger("keypointgan.infer")

FORMATS = ("onnx", "torchscript")
OPSET = 17
INPUT_NAMES = ["image"]
OUTPUT_NAMES = ["keypoints", "confidence"]


class Detector(nn.Module):
    """image (B,3,S,S) in [-1, 1] -> (keypoints (B,K,2) in [-1, 1], confidence (B,K) in [0, 1])."""

    def __init__(self, tm: TrainedModel) -> None:
        super().__init__()
        self.phi, self.encoder = tm.model.phi, tm.model.eta.encoder
        self.mode, self.temperature = tm.model.eta.softargmax, float(tm.model.eta.temperature)
        self.image_size = tm.model.image_size

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encoder(self.phi(image))
        return (heatmaps_to_keypoints(h, self.mode, self.temperature),
                keypoint_confidence(h, self.mode, self.temperature))


def load_detector(checkpoint: PathLike, weights: str = "auto") -> tuple[Detector, TrainedModel]:
    """The checkpoint's detector in fp32 eval mode on the CPU (NCHW), frozen."""
    tm = load_model(checkpoint, device="cpu", precision="fp32", channels_last=False, weights=weights)
    return Detector(tm).float().eval().requires_grad_(False), tm


def example_batch(image_size: int, batch: int = 2, seed: int = 0) -> torch.Tensor:
    """A deterministic batch of smooth random images in [-1, 1] (for tracing and parity checks)."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(batch, 3, max(2, image_size // 8), max(2, image_size // 8), generator=g) * 2 - 1
    x = nn.functional.interpolate(low, size=(image_size, image_size), mode="bilinear", align_corners=False)
    return (x + 0.1 * torch.randn(x.shape, generator=g)).clamp(-1, 1)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the expected warnings: the tracer's constant shape checks, the legacy exporter's
    deprecation notice, and InstanceNorm's "train=True" (it always uses input statistics)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*instance_norm.*")
        yield


def export_torchscript(det: Detector, path: PathLike, example: torch.Tensor) -> Path:
    """``torch.jit.trace`` the detector and save it (load with ``torch.jit.load``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _quiet(), torch.no_grad():
        traced = torch.jit.trace(det, example, check_trace=False)
    traced.save(str(path))
    return path


def export_onnx(det: Detector, path: PathLike, example: torch.Tensor, exporter: str = "auto") -> str:
    """Write an ONNX model with a dynamic batch axis; returns the exporter used ("dynamo" or "torchscript").

    ``exporter="auto"`` tries the ``torch.export``-based one when ``onnxscript`` is
    installed and falls back to the TorchScript-based one.
    """
    if exporter not in ("auto", "dynamo", "torchscript"):
        raise UsageError(f"exporter must be auto, dynamo or torchscript, got {exporter!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    use_dynamo = exporter == "dynamo" or (exporter == "auto" and importlib.util.find_spec("onnxscript") is not None)
    if exporter == "dynamo" and importlib.util.find_spec("onnxscript") is None:
        raise RuntimeError("the dynamo ONNX exporter needs the 'onnxscript' package (pip install onnxscript)")
    with _quiet():
        if use_dynamo:
            try:
                batch = torch.export.Dim("batch", min=1)
                torch.onnx.export(det, (example,), str(path), input_names=INPUT_NAMES, output_names=OUTPUT_NAMES,
                                  dynamic_shapes={"image": {0: batch}}, opset_version=max(OPSET, 18), dynamo=True)
                return "dynamo"
            except Exception as e:  # noqa: BLE001 - fall back to the exporter that works here
                if exporter == "dynamo":
                    raise
                log.warning("dynamo ONNX export failed (%s: %s); using the TorchScript-based exporter",
                            type(e).__name__, e)
        with torch.no_grad():
            torch.onnx.export(det, (example,), str(path), input_names=INPUT_NAMES, output_names=OUTPUT_NAMES,
                              dynamic_axes={n: {0: "batch"} for n in INPUT_NAMES + OUTPUT_NAMES},
                              opset_version=OPSET, dynamo=False)
        return "torchscript"


@dataclass
class ParityReport:
    """Max abs differences of each exported model against PyTorch on one batch."""

    batch: int
    tolerance: float
    keypoints: dict[str, float] = field(default_factory=dict)
    confidence: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(v <= self.tolerance for d in (self.keypoints, self.confidence) for v in d.values())

    def describe(self) -> str:
        parts = [f"{fmt}: keypoints {self.keypoints[fmt]:.2e}, confidence {self.confidence[fmt]:.2e}"
                 for fmt in self.keypoints]
        return (f"parity vs PyTorch on a batch of {self.batch} (max abs diff, tolerance {self.tolerance:g}): "
                + "; ".join(parts) + (" -> OK" if self.ok else " -> FAILED"))


def check_parity(det: Detector, torchscript: Optional[PathLike] = None, onnx: Optional[PathLike] = None,
                 x: Optional[torch.Tensor] = None, tolerance: float = 1e-4) -> ParityReport:
    """Compare PyTorch with the TorchScript file and/or the ONNX file (onnxruntime, CPU) on ``x``.

    The default batch (3 images) differs from the export batch, so the dynamic batch
    axis is exercised too.
    """
    x = example_batch(det.image_size, 3, seed=1) if x is None else x
    with torch.no_grad():
        ref = [t.numpy() for t in det(x)]
    rep = ParityReport(int(x.shape[0]), tolerance)
    outs: dict[str, Sequence[np.ndarray]] = {}
    if torchscript is not None:
        with _quiet():  # torch.jit.load warns that TorchScript is deprecated
            ts = torch.jit.load(str(torchscript))
        with torch.no_grad():
            outs["torchscript"] = [t.numpy() for t in ts(x)]
    if onnx is not None:
        import onnxruntime as ort

        sess = ort.InferenceSession(str(onnx), providers=["CPUExecutionProvider"])
        outs["onnx"] = sess.run(OUTPUT_NAMES, {INPUT_NAMES[0]: x.numpy()})
    for fmt, (kp, conf) in outs.items():
        if kp.shape != ref[0].shape or conf.shape != ref[1].shape:
            raise RuntimeError(f"{fmt} export: output shapes {kp.shape}, {conf.shape} differ from PyTorch's "
                               f"{ref[0].shape}, {ref[1].shape}")
        rep.keypoints[fmt] = float(np.abs(kp - ref[0]).max())
        rep.confidence[fmt] = float(np.abs(conf - ref[1]).max())
    return rep


@dataclass
class ExportResult:
    files: dict[str, Path]
    parity: ParityReport
    onnx_exporter: Optional[str] = None


def export(checkpoint: PathLike, out: PathLike, formats: Sequence[str] = FORMATS, batch: int = 2,
           tolerance: float = 1e-4, onnx_exporter: str = "auto", weights: str = "auto") -> ExportResult:
    """Export the detector to ``out/detector.onnx`` and/or ``out/detector.pt``, then check parity.

    Also writes ``out/detector.json`` (image size, skeleton, conventions, parity
    numbers). Raises ``RuntimeError`` when an export differs from PyTorch by more
    than ``tolerance``.
    """
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise UsageError(f"unknown export format(s) {bad}; choose from {list(FORMATS)}")
    if batch < 1:
        raise UsageError(f"batch must be >= 1, got {batch}")
    out = Path(out)
    det, tm = load_detector(checkpoint, weights)
    example = example_batch(det.image_size, batch)
    files: dict[str, Path] = {}
    used = None
    if "torchscript" in formats:
        files["torchscript"] = export_torchscript(det, out / "detector.pt", example)
    if "onnx" in formats:
        files["onnx"] = out / "detector.onnx"
        used = export_onnx(det, files["onnx"], example, onnx_exporter)
    rep = check_parity(det, files.get("torchscript"), files.get("onnx"), tolerance=tolerance)
    meta = {
        "image_size": det.image_size, "input": "image (B, 3, S, S) float32 RGB in [-1, 1], centre crop",
        "outputs": {"keypoints": "(B, K, 2) (x, y) in [-1, 1], align_corners=False",
                    "confidence": "(B, K) in [0, 1]"},
        "skeleton": tm.skeleton.to_dict(), "step": tm.step, "onnx_exporter": used, "onnx_opset": {"dynamo": max(OPSET, 18), "torchscript": OPSET}.get(used or ""),
        "files": {k: v.name for k, v in files.items()}, "parity": asdict(rep) | {"ok": rep.ok},
    }
    (out / "detector.json").write_text(json.dumps(meta, indent=1))
    if not rep.ok:
        raise RuntimeError(rep.describe())
    return ExportResult(files, rep, used)
