"""Write VGG-19 weight files in the real on-disk layouts, with random weights.

Used by tests (and usable by benchmarks) because real weights can never be
downloaded here. The layouts are built from the format descriptions, independently
of ``keypointgan.losses``:

* torchvision: a flat state dict ``features.N.weight`` (out, in, 3, 3) /
  ``features.N.bias`` (out,) for the 16 convs, plus ``classifier.*`` entries, saved
  with ``torch.save`` (.pth) or ``safetensors`` (.safetensors).
* MatConvNet SimpleNN (``imagenet-vgg-verydeep-19.mat``): top-level ``layers``, a 1x43
  cell array of structs (conv/relu/pool/fc/softmax) with ``name``, ``type`` and, for
  convs, ``weights`` = 1x2 cell {filters H x W x in x out single, biases 1 x out};
  plus ``meta`` (current format) or ``normalization``/``classes`` (old format). The
  legacy variant stores ``filters``/``biases`` fields instead of ``weights``.

Only tensors the loaders ignore (classifier / fc) are shrunk, to keep files small.
"""

from __future__ import annotations

from pathlib import Path
from typing import Union

import numpy as np
import scipy.io
import torch

# (name, torchvision features index, in, out): VGG-19 configuration "E", as the loader expects.
from keypointgan.losses.perceptual import VGG19_CONVS as CONVS  # noqa: E402
RGB_MEAN = (123.68, 116.779, 103.939)


def random_torchvision_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """A torchvision-layout vgg19 state dict: random He-scaled convs, small fake classifier."""
    gen = torch.Generator().manual_seed(seed)
    sd: dict[str, torch.Tensor] = {}
    for _, idx, cin, cout in CONVS:
        sd[f"features.{idx}.weight"] = torch.randn(cout, cin, 3, 3, generator=gen) * (2.0 / (9 * cin)) ** 0.5
        sd[f"features.{idx}.bias"] = torch.randn(cout, generator=gen) * 0.1
    for i in (0, 3, 6):  # the real classifier is 4096-wide; the loaders ignore it
        sd[f"classifier.{i}.weight"] = torch.randn(8, 8, generator=gen)
        sd[f"classifier.{i}.bias"] = torch.randn(8, generator=gen)
    return sd


def write_torchvision(path: Union[str, Path], state: dict[str, torch.Tensor]) -> Path:
    """``.pth``/``.pt`` via torch.save, ``.safetensors`` via safetensors."""
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    else:
        torch.save(state, path)
    return path


def _cell(*items: object) -> np.ndarray:
    """A MATLAB 1xN cell array."""
    out = np.empty((1, len(items)), dtype=object)
    for i, item in enumerate(items):
        out[0, i] = item
    return out


def _conv_struct(name: str, filters: np.ndarray, biases: np.ndarray, legacy: bool) -> dict:
    s: dict = {"name": name, "type": "conv"}
    if legacy:
        s.update(filters=filters, biases=biases)
    else:
        s.update(weights=_cell(filters, biases), size=np.array([filters.shape], dtype=float))
    s.update(pad=np.array([[1.0, 1.0, 1.0, 1.0]]), stride=np.array([[1.0, 1.0]]))
    return s


def matconvnet_layers(state: dict[str, torch.Tensor], legacy: bool = False) -> np.ndarray:
    """The 1x43 ``layers`` cell of imagenet-vgg-verydeep-19.mat from a torchvision state dict."""
    layers: list[dict] = []
    for block in range(1, 6):
        for name, idx, _, _ in CONVS:
            if not name.startswith(f"conv{block}_"):
                continue
            w = state[f"features.{idx}.weight"].numpy()  # (out, in, H, W)
            filters = np.ascontiguousarray(w.transpose(2, 3, 1, 0)).astype(np.float32)  # H W in out
            biases = state[f"features.{idx}.bias"].numpy().reshape(1, -1).astype(np.float32)
            layers.append(_conv_struct(name, filters, biases, legacy))
            layers.append({"name": name.replace("conv", "relu"), "type": "relu"})
        layers.append({"name": f"pool{block}", "type": "pool", "method": "max",
                       "pool": np.array([[2.0, 2.0]]), "stride": np.array([[2.0, 2.0]]),
                       "pad": np.array([[0.0, 0.0, 0.0, 0.0]])})
    rng = np.random.default_rng(0)
    for i, name in enumerate(("fc6", "fc7", "fc8")):  # real: 7x7x512x4096, 1x1x4096x4096, ...
        fc = rng.standard_normal((1, 1, 8, 8)).astype(np.float32)
        layers.append(_conv_struct(name, fc, np.zeros((1, 8), np.float32), legacy))
        if i < 2:
            layers.append({"name": f"relu{6 + i}", "type": "relu"})
    layers.append({"name": "prob", "type": "softmax"})
    assert len(layers) == 43
    return _cell(*layers)


def write_matconvnet(path: Union[str, Path], state: dict[str, torch.Tensor],
                     legacy: bool = False) -> Path:
    """Write ``state``'s convs as a MatConvNet VGG-19 .mat (``legacy``: old field names/format)."""
    path = Path(path)
    classes = {"name": _cell("n01440764", "n01443537"), "description": _cell("tench", "goldfish")}
    if legacy:
        average = np.tile(np.array(RGB_MEAN, np.float32), (224, 224, 1))
        top = {"layers": matconvnet_layers(state, legacy=True), "classes": classes,
               "normalization": {"averageImage": average, "imageSize": np.array([[224.0, 224.0, 3.0]]),
                                 "interpolation": "bilinear", "keepAspect": 1.0}}
    else:
        norm = {"averageImage": np.array(RGB_MEAN, np.float32).reshape(3, 1),
                "imageSize": np.array([[224.0, 224.0, 3.0, 1.0]]), "interpolation": "bilinear",
                "keepAspect": 1.0, "border": np.array([[32.0, 32.0]])}
        top = {"layers": matconvnet_layers(state), "meta": {"normalization": norm, "classes": classes}}
    scipy.io.savemat(str(path), top)
    return path
