"""VGG-19 perceptual loss (eq. 4) with the release's running-mean normalisation.

Gamma in eq. 4 is VGG-19 read at six points: the (preprocessed) input image itself,
conv1_2, conv2_2, conv3_2, conv4_2 and conv5_2. Each term is an MSE divided by its own
running mean (momentum 0.99, initialised from the first value), and the loss is the
mean of the six normalised terms, as in the authors' release.

``relu=True`` reads the features after each tapped conv's ReLU and keeps the ReLUs
between convs (the paper's "VGG features"). ``relu=False`` reproduces the release,
whose forward pass omits every ReLU, so VGG becomes convolutions and max-pools only
and the taps are pre-activation (almost certainly a bug; kept for faithful runs).

Weights are supplied by the user as a file; nothing is ever downloaded. Each source
has its own preprocessing of our [-1, 1] images, recorded in
``VGG19Features.preprocessing``:

* ``"matconvnet"`` (``imagenet-vgg-verydeep-19.mat``, as the release uses):
  RGB in [0, 255] minus the RGB mean (123.68, 116.779, 103.939).
* ``"torchvision"`` (``vgg19`` state dicts, ``.pth``/``.pt``/``.safetensors``):
  RGB in [0, 1], minus (0.485, 0.456, 0.406), divided by (0.229, 0.224, 0.225).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np
import torch
from torch import Tensor, nn

from ..errors import KeypointGANError
from ._checks import check_image_pair

PathLike = Union[str, Path]

# (name, index in torchvision's ``vgg19().features``, in channels, out channels)
VGG19_CONVS: tuple[tuple[str, int, int, int], ...] = (
    ("conv1_1", 0, 3, 64), ("conv1_2", 2, 64, 64),
    ("conv2_1", 5, 64, 128), ("conv2_2", 7, 128, 128),
    ("conv3_1", 10, 128, 256), ("conv3_2", 12, 256, 256),
    ("conv3_3", 14, 256, 256), ("conv3_4", 16, 256, 256),
    ("conv4_1", 19, 256, 512), ("conv4_2", 21, 512, 512),
    ("conv4_3", 23, 512, 512), ("conv4_4", 25, 512, 512),
    ("conv5_1", 28, 512, 512), ("conv5_2", 30, 512, 512),
    ("conv5_3", 32, 512, 512), ("conv5_4", 34, 512, 512),
)
POOL_INDICES: tuple[int, ...] = (4, 9, 18, 27, 36)
FEATURE_NAMES: tuple[str, ...] = ("input", "conv1_2", "conv2_2", "conv3_2", "conv4_2", "conv5_2")
# Index of the ReLU after each tapped conv. With relu=False that ReLU is skipped, so
# the tap reads the conv output itself.
_TAP_INDICES: tuple[int, ...] = (3, 8, 13, 22, 31)
MIN_IMAGE_SIZE = 16  # four 2x2 max-pools before conv5_2 leave 1x1 at 16 px

MATCONVNET_RGB_MEAN = (123.68, 116.779, 103.939)
TORCHVISION_MEAN = (0.485, 0.456, 0.406)
TORCHVISION_STD = (0.229, 0.224, 0.225)
PREPROCESSING_KINDS = ("matconvnet", "torchvision")


class WeightsError(KeypointGANError, ValueError):
    """A VGG-19 weights file is missing, unreadable or does not hold VGG-19."""


# --------------------------------------------------------------------------- model


def _preprocessing_affine(kind: str) -> tuple[list[float], list[float]]:
    """Per-channel (scale, shift) taking [-1, 1] RGB to what the weights expect."""
    if kind == "matconvnet":  # 255 * (x + 1) / 2 - mean
        return [127.5] * 3, [127.5 - m for m in MATCONVNET_RGB_MEAN]
    if kind == "torchvision":  # ((x + 1) / 2 - mean) / std
        return ([0.5 / s for s in TORCHVISION_STD],
                [(0.5 - m) / s for m, s in zip(TORCHVISION_MEAN, TORCHVISION_STD)])
    raise ValueError(f"unknown VGG preprocessing '{kind}' (known: {', '.join(PREPROCESSING_KINDS)})")


def _vgg19_layers() -> nn.Sequential:
    """``vgg19().features`` layout (convs, in-place ReLUs, max-pools), on the meta device."""
    convs = {idx: (cin, cout) for _, idx, cin, cout in VGG19_CONVS}
    layers: list[nn.Module] = []
    for i in range(POOL_INDICES[-1] + 1):
        if i in convs:
            layers.append(nn.Conv2d(*convs[i], kernel_size=3, padding=1, device="meta"))
        elif i in POOL_INDICES:
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class VGG19Features(nn.Module):
    """Frozen VGG-19 returning the six eq. 4 features (``FEATURE_NAMES``).

    ``state_dict()`` keys are torchvision's (``features.N.weight``/``bias``). Build it
    with ``from_file`` (pretrained weights) or ``random`` (seeded, for the fallback);
    a bare constructor leaves zero weights. The parameters never require grad and the
    module stays in eval mode; gradients still flow to the input.
    """

    def __init__(self, relu: bool = True, preprocessing: str = "matconvnet",
                 source: str = "zeros") -> None:
        super().__init__()
        self.relu = relu
        self.source = source  # where the weights came from, for logs and errors
        self.features = _vgg19_layers()
        # Allocate for real without drawing from the global RNG (nn.Conv2d's default
        # init would), so building a loss never shifts the caller's random stream.
        self.features.to_empty(device="cpu")
        with torch.no_grad():
            for p in self.features.parameters():
                p.zero_()
        self.preprocessing = ""
        self.set_preprocessing(preprocessing)
        self.requires_grad_(False)
        self.train(False)

    def set_preprocessing(self, kind: str) -> None:
        """Choose how [-1, 1] images are mapped for these weights (see module doc)."""
        scale, shift = _preprocessing_affine(kind)
        device = self.features[0].weight.device
        # Not persistent: a state dict stays exactly torchvision's key set.
        self.register_buffer("_scale", torch.tensor(scale, device=device).view(1, 3, 1, 1),
                             persistent=False)
        self.register_buffer("_shift", torch.tensor(shift, device=device).view(1, 3, 1, 1),
                             persistent=False)
        self.preprocessing = kind

    @classmethod
    def from_file(cls, path: PathLike, relu: bool = True,
                  preprocessing: Optional[str] = None) -> "VGG19Features":
        """Pretrained weights from a torchvision or MatConvNet file (see ``load_vgg19_state_dict``).

        ``preprocessing`` defaults to the one the file's source was trained with.
        """
        state, native = load_vgg19_state_dict(path)
        model = cls(relu=relu, preprocessing=preprocessing or native, source=str(path))
        model.load_state_dict(state)
        return model

    @classmethod
    def random(cls, seed: int = 0, relu: bool = True,
               preprocessing: str = "torchvision") -> "VGG19Features":
        """Fixed random weights: Kaiming-normal (fan-in, ReLU gain) convs, zero biases.

        Drawn from a private generator seeded with ``seed``, so the same seed gives the
        same network in every process. The default preprocessing (zero-mean, roughly
        unit-variance input) is what Kaiming init assumes.
        """
        model = cls(relu=relu, preprocessing=preprocessing, source=f"random (Kaiming, seed {seed})")
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for _, idx, cin, _ in VGG19_CONVS:
                conv = model.features[idx]
                std = math.sqrt(2.0 / (cin * 9))
                conv.weight.copy_(torch.randn(conv.weight.shape, generator=gen) * std)
        return model

    def train(self, mode: bool = True) -> "VGG19Features":
        """Always eval: the network is a fixed feature extractor."""
        return super().train(False)

    def preprocess(self, x: Tensor) -> Tensor:
        """[-1, 1] RGB -> the input these weights expect (float32 affine map)."""
        return x * self._scale + self._shift

    def forward(self, x: Tensor) -> list[Tensor]:
        """Six features of a (B, 3, H, W) image in [-1, 1], H, W >= 16."""
        check_image_pair(x, x, min_size=MIN_IMAGE_SIZE, channels=3)
        h = self.preprocess(x)
        feats = [h]
        for i, layer in enumerate(self.features[: _TAP_INDICES[-1] + 1]):
            if self.relu or not isinstance(layer, nn.ReLU):
                h = layer(h)
            if i in _TAP_INDICES:
                feats.append(h)
        return feats

    def extra_repr(self) -> str:
        return f"relu={self.relu}, preprocessing={self.preprocessing!r}, source={self.source!r}"


# ------------------------------------------------------------------------ loss


class RunningMeanTerms(nn.Module):
    """Loss terms each divided by its own running mean (the release's eq. 4 normalisation).

    Keeps every term near 1 whatever its units, so a loss made of several terms (VGG
    layers, pyramid levels) weighs them evenly and sits on the same scale as the
    adversarial loss it is balanced against. In training mode each call first updates
    the running means (momentum ``momentum``; a term's mean starts at its first non-zero
    value), then divides. Buffers: ``running_mean``, ``initialized``.
    """

    def __init__(self, num_terms: int, momentum: float = 0.99, eps: float = 1e-12) -> None:
        super().__init__()
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"running-mean momentum must be in [0, 1), got {momentum}")
        self.momentum = momentum
        self.eps = eps
        self.register_buffer("running_mean", torch.zeros(num_terms))
        self.register_buffer("initialized", torch.zeros(num_terms, dtype=torch.bool))
        self.last_raw_terms: Optional[Tensor] = None  # detached, for logging

    @torch.no_grad()
    def _update(self, terms: Tensor) -> None:
        m = self.momentum
        blended = m * self.running_mean + (1.0 - m) * terms
        self.running_mean.copy_(torch.where(self.initialized, blended, terms))
        self.initialized |= terms > 0

    def normalized(self, terms: Tensor) -> Tensor:
        """``terms`` (n,) divided by their running means (updated first in training mode)."""
        value = terms.detach()
        if self.training:
            self._update(value)
        # A term never seen yet (eval before any training call) is normalised by itself.
        denom = torch.where(self.initialized, self.running_mean, value).clamp_min(self.eps)
        self.last_raw_terms = value
        return terms / denom


class PerceptualLoss(RunningMeanTerms):
    """Eq. 4 as in the release: mean over six VGG terms, each MSE / its running mean.

    ``forward(pred, target)`` takes (B, 3, H, W) images in [-1, 1] and returns a float32
    scalar. In training mode each call first updates the running means (momentum
    ``momentum``; a term's mean starts at its first non-zero value), then divides.
    The running means are buffers (``running_mean``, ``initialized``) and are the
    only entries of ``state_dict()``: the frozen VGG weights come from their own file
    (or seed) and are neither saved nor required when loading a checkpoint.

    Works under ``torch.autocast`` (bf16 convs) and with channels_last inputs; the
    MSE reductions are always computed in float32. The target's features are computed
    without autograd unless the target requires grad.
    """

    def __init__(self, vgg: VGG19Features, momentum: float = 0.99, eps: float = 1e-12) -> None:
        super().__init__(len(FEATURE_NAMES), momentum, eps)
        self.vgg = vgg
        self.register_state_dict_post_hook(_drop_vgg_keys)
        self.register_load_state_dict_pre_hook(_keep_vgg_keys)

    @classmethod
    def from_file(cls, path: PathLike, relu: bool = True, momentum: float = 0.99) -> "PerceptualLoss":
        """The paper's loss with pretrained VGG-19 weights from ``path``."""
        return cls(VGG19Features.from_file(path, relu=relu), momentum=momentum)

    def raw_terms(self, pred: Tensor, target: Tensor, weight: Optional[Tensor] = None) -> Tensor:
        """The six un-normalised MSE terms, a float32 tensor of shape (6,); ``weight`` (B, 1, H, W),
        optional, weighs each term's squared differences per pixel (area-resized to the map)."""
        check_image_pair(pred, target, min_size=MIN_IMAGE_SIZE, channels=3)
        fp = self.vgg(pred)
        with torch.set_grad_enabled(torch.is_grad_enabled() and target.requires_grad):
            ft = self.vgg(target)
        if weight is None:
            return torch.stack([(a.float() - b.float()).square().mean() for a, b in zip(fp, ft)])
        w = weight.float()
        return torch.stack([((a.float() - b.float()).square() * resize_weights(w, a.shape[-2:])).mean()
                            for a, b in zip(fp, ft)])

    def forward(self, pred: Tensor, target: Tensor, weight: Optional[Tensor] = None) -> Tensor:
        return self.normalized(self.raw_terms(pred, target, weight)).mean()


def resize_weights(weight: Tensor, size: Sequence[int]) -> Tensor:
    """Weights (B, 1, H, W) area-resized to ``size`` (h, w): a feature map's or a pyramid level's."""
    if tuple(weight.shape[-2:]) == tuple(size):
        return weight
    return torch.nn.functional.interpolate(weight, size=tuple(size), mode="area")


def _drop_vgg_keys(module: nn.Module, state_dict: dict[str, Any], prefix: str,
                   local_metadata: Any) -> None:
    """state_dict post-hook: keep only the running means, not the frozen VGG."""
    for key in [k for k in state_dict if k.startswith(prefix + "vgg.")]:
        del state_dict[key]


def _keep_vgg_keys(module: nn.Module, state_dict: dict[str, Any], prefix: str,
                   *args: Any) -> None:
    """load_state_dict pre-hook: keep the current VGG weights for keys the checkpoint lacks."""
    for key, value in module.vgg.state_dict().items():
        state_dict.setdefault(prefix + "vgg." + key, value)


# --------------------------------------------------------------------- loaders


def load_vgg19_state_dict(path: PathLike) -> tuple[dict[str, Tensor], str]:
    """Read VGG-19 conv weights from a file: (torchvision-layout state dict, preprocessing).

    Accepted: a torchvision ``vgg19`` state dict as ``.pth``/``.pt`` (read with
    ``weights_only=True``: no arbitrary unpickling) or ``.safetensors``; or MatConvNet's
    ``imagenet-vgg-verydeep-19.mat``. Only the 16 convs are kept (``classifier.*`` and
    fully-connected layers are ignored). Raises ``WeightsError`` naming the file and
    the problem otherwise.
    """
    p = Path(path)
    if not p.is_file():
        raise WeightsError(f"{p}: VGG-19 weights file not found")
    suffix = p.suffix.lower()
    if suffix in (".pth", ".pt"):
        return _check_torchvision(_read_torch(p), p), "torchvision"
    if suffix == ".safetensors":
        return _check_torchvision(_read_safetensors(p), p), "torchvision"
    if suffix == ".mat":
        return _read_matconvnet(p), "matconvnet"
    raise WeightsError(f"{p}: unknown weights format '{suffix or '(no extension)'}' "
                       f"(expected .pth, .pt, .safetensors or .mat)")


def _short(err: BaseException) -> str:
    """First line of an exception, bounded, for one-line error messages."""
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0][:200] if text else ''}"


def _read_torch(p: Path) -> Any:
    try:
        return torch.load(p, map_location="cpu", weights_only=True)
    except Exception as err:  # any failure to parse is the file's problem
        raise WeightsError(f"{p}: cannot read as a PyTorch state dict ({_short(err)}); expected "
                          f"a file written by torch.save(model.state_dict(), path)") from err


def _read_safetensors(p: Path) -> dict[str, Tensor]:
    from safetensors.torch import load_file

    try:
        return load_file(str(p), device="cpu")
    except Exception as err:
        raise WeightsError(f"{p}: cannot read as a safetensors file ({_short(err)})") from err


def _prefix_hint(keys: list[str]) -> str:
    """' (keys look prefixed with X)' when e.g. 'module.features.0.weight' is present."""
    for k in keys:
        if k.endswith("features.0.weight") and k != "features.0.weight":
            return f" (keys look prefixed with '{k[: -len('features.0.weight')]}'; strip it)"
    return ""


def _check_torchvision(obj: Any, p: Path) -> dict[str, Tensor]:
    """Validate a torchvision-layout mapping; return the 32 conv tensors as float32."""
    if not isinstance(obj, Mapping):
        raise WeightsError(f"{p}: expected a state dict (name -> tensor), got {type(obj).__name__}")
    keys = [str(k) for k in obj]
    if any(k.startswith("features.") and k.endswith("running_mean") for k in keys):
        raise WeightsError(f"{p}: holds a batch-norm VGG (vgg19_bn); plain VGG-19 weights are needed")
    expected = {}
    for name, idx, cin, cout in VGG19_CONVS:
        expected[f"features.{idx}.weight"] = (name, (cout, cin, 3, 3))
        expected[f"features.{idx}.bias"] = (name, (cout,))
    missing = [k for k in expected if k not in obj]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise WeightsError(f"{p}: missing key {missing[0]}{more}; not a torchvision VGG-19 "
                           f"state dict{_prefix_hint(keys)}")
    extra = sorted(k for k in keys if k.startswith("features.") and k not in expected)
    if extra:
        raise WeightsError(f"{p}: unexpected key {extra[0]}; not the VGG-19 'features' layout")
    out = {}
    for key, (name, shape) in expected.items():
        t = obj[key]
        if not isinstance(t, Tensor):
            raise WeightsError(f"{p}: {key} is a {type(t).__name__}, not a tensor")
        if tuple(t.shape) != shape:
            raise WeightsError(f"{p}: expected shape {shape} for {key} ({name}), got {tuple(t.shape)}")
        out[key] = _finite_float32(t, p, key)
    return out


def _finite_float32(t: Tensor, p: Path, key: str) -> Tensor:
    t = t.detach().to("cpu", torch.float32).contiguous()
    if not bool(torch.isfinite(t).all()):
        raise WeightsError(f"{p}: {key} contains NaN or Inf")
    return t


def _unwrap(x: Any) -> Any:
    """Strip the 1x1 object arrays scipy wraps around MATLAB cells and structs."""
    while isinstance(x, np.ndarray) and x.dtype == object and x.size == 1:
        x = x.item()
    return x


def _mat_str(x: Any) -> Optional[str]:
    x = _unwrap(x)
    if isinstance(x, str):
        return x
    if isinstance(x, np.ndarray) and x.dtype.kind == "U":
        return "".join(x.ravel().tolist())
    return None


def _read_matconvnet(p: Path) -> dict[str, Tensor]:
    """MatConvNet SimpleNN file -> torchvision-layout state dict (filters HWIO -> OIHW)."""
    import scipy.io

    try:
        mat = scipy.io.loadmat(str(p), variable_names=("layers", "net"),
                               struct_as_record=False, squeeze_me=False)
    except Exception as err:  # includes v7.3 (HDF5) files, which scipy cannot read
        raise WeightsError(f"{p}: cannot read as a MATLAB .mat file ({_short(err)})") from err
    layers = mat.get("layers")
    if layers is None and "net" in mat:
        layers = getattr(_unwrap(mat["net"]), "layers", None)
    if not isinstance(layers, np.ndarray):
        raise WeightsError(f"{p}: no 'layers' variable; not a MatConvNet SimpleNN model "
                           f"such as imagenet-vgg-verydeep-19.mat")
    by_name = {}
    for cell in layers.ravel():
        layer = _unwrap(cell)
        name = _mat_str(getattr(layer, "name", None))
        if name is not None:
            by_name[name] = layer
    missing = [name for name, *_ in VGG19_CONVS if name not in by_name]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise WeightsError(f"{p}: missing layer {missing[0]}{more}; not MatConvNet VGG-19 (verydeep-19)")
    out = {}
    for name, idx, cin, cout in VGG19_CONVS:
        filters, biases = _mat_conv_params(by_name[name], name, p)
        if filters.shape != (3, 3, cin, cout):
            raise WeightsError(f"{p}: expected filters of shape (3, 3, {cin}, {cout}) "
                               f"(H, W, in, out) for {name}, got {filters.shape}")
        if biases.size != cout:
            raise WeightsError(f"{p}: expected {cout} biases for {name}, got shape {biases.shape}")
        # MatConvNet stores filters H x W x in x out (RGB input); PyTorch wants out x in x H x W.
        weight = torch.from_numpy(np.ascontiguousarray(filters.transpose(3, 2, 0, 1)))
        out[f"features.{idx}.weight"] = _finite_float32(weight, p, name)
        out[f"features.{idx}.bias"] = _finite_float32(torch.from_numpy(biases.reshape(-1).copy()), p, name)
    return out


def _mat_conv_params(layer: Any, name: str, p: Path) -> tuple[np.ndarray, np.ndarray]:
    """(filters, biases) of one conv layer struct: ``weights = {F, b}``, or legacy ``filters``/``biases``."""
    kind = _mat_str(getattr(layer, "type", None))
    if kind != "conv":
        raise WeightsError(f"{p}: layer {name} has type {kind!r}, expected 'conv'")
    weights = getattr(layer, "weights", None)
    if weights is not None:
        cells = [_unwrap(c) for c in np.asarray(weights, dtype=object).ravel()]
        if len(cells) != 2:
            raise WeightsError(f"{p}: {name}.weights should be a 1x2 cell {{filters, biases}}, "
                               f"got {len(cells)} entries")
        pair = cells
    elif hasattr(layer, "filters") and hasattr(layer, "biases"):
        pair = [layer.filters, layer.biases]
    else:
        raise WeightsError(f"{p}: layer {name} has no 'weights' (or 'filters'/'biases') field")
    arrays = [np.asarray(a) for a in pair]
    for a, what in zip(arrays, ("filters", "biases")):
        if a.dtype.kind not in "fiu":
            raise WeightsError(f"{p}: {name} {what} are not numeric (dtype {a.dtype})")
    return arrays[0].astype(np.float32, copy=False), arrays[1].astype(np.float32, copy=False)
