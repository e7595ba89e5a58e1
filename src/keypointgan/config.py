"""Run configuration: typed sections, YAML files, ``section.key=value`` overrides.

Presets live in ``keypointgan/configs/*.yaml`` (``cpu`` is the default, ``paper`` is
the paper's 128 px model); a user's YAML file overrides any subset of fields.
Where the paper and the authors' release disagree, the field's comment says which
value is which; presets pick one deliberately (see docs/paper-vs-release.md).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence, Union, get_args, get_origin, get_type_hints

import yaml

from .errors import KeypointGANError

PRESET_DIR = Path(__file__).with_name("configs")


class ConfigError(KeypointGANError, ValueError):
    """A configuration file or override is malformed."""


@dataclass
class RenderConfig:
    """The skeleton renderer beta (eq. 2)."""

    form: str = "release"  # "release": exp(-d / sigma^2) (unsquared d); "paper": exp(-d^2 / sigma^2)
    sigma: float = 0.2  # in normalised units, so the drawing is the same at every resolution
    signed: bool = True  # map the image to [-1, 1] (release) instead of [0, 1]
    # Beyond the paper: extra, wider drawings of the same keypoints that Psi reads as more
    # channels beside y* (D and eta keep `sigma`). A thin line moves the rendered image, and
    # so the reconstruction, only within a pixel or two of itself; a wide one gives a
    # keypoint far from its place a gradient (docs/losses.md). [] = the paper's Psi.
    psi_sigmas: list[float] = field(default_factory=list)


@dataclass
class ModelConfig:
    """Widths and depths of Phi, Psi, eta and the discriminator (appendix F.4)."""

    image_size: int = 64
    base_width: int = 32  # 32 in the paper; channels double at each of the `depth` downsamplings
    depth: int = 3  # stride-2 stages: 3 gives 16x16 heatmaps at 128 px
    max_width: int = 256
    phi_norm: str = "batch"
    psi_norm: str = "batch"
    psi_pose_skips: bool = False  # y* also fed to every decoder level of Psi (beyond the paper; docs/results.md)
    eta_norm: str = "instance"  # release: InstanceNorm (no affine); paper table: BatchNorm
    eta_width: Optional[int] = None  # base width of eta; None = base_width
    softargmax: str = "marginal"  # "marginal": the release's row/column marginals; "spatial": 2D softmax (paper F.2)
    softargmax_temperature: float = 1.0
    disc_scales: list[float] = field(default_factory=lambda: [1.0, 0.5, 0.25])
    disc_layers: int = 3  # stride-2 layers of each PatchGAN
    disc_width: int = 64
    disc_first_norm: bool = False  # release/CycleGAN: no norm on the first layer; paper table: InstanceNorm
    disc_resize: str = "bilinear"  # how the input is shrunk to each scale: "bilinear" (release) or "area" (avg-pool)
    disc_minibatch_std: int = 0  # >= 2: ProGAN minibatch-std channel over groups of this size (beyond the paper); 0 = off
    init_std: float = 0.02


@dataclass
class LossConfig:
    """Weights of eq. 6 and F.2, and the reconstruction loss."""

    reconstruction: str = "auto"  # "perceptual" (needs vgg_weights) | "l1_ssim" | "laplacian" | "vgg_random" | "auto"
    fallback: str = "laplacian"  # what "auto" uses when no vgg_weights file is given
    vgg_weights: Optional[str] = None  # torchvision state dict (.pth/.safetensors) or MatConvNet .mat
    vgg_relu: bool = True  # paper/VGG semantics; the release omits ReLUs between VGG convs
    running_mean_momentum: float = 0.99
    normalize_fallback: bool = False  # divide the laplacian fallback's levels by running means, as eq. 4's VGG terms (cpu, release presets: on)
    adv_weight: float = 10.0  # lambda of eq. 6
    rec_weight: float = 1.0  # eq. 6 weighs reconstruction by 1; the release by 10
    eta_prior_weight: float = 0.9  # release 0.9; paper F.2 writes 1
    eta_cycle_weight: float = 0.1  # lambda' = 0.1
    # Beyond the paper (docs/results.md): Phi(T(x)) = T(Phi(x)) for random TPS warps T
    # (Thewlis et al. 2017), so the skeleton must move with the image; 0 = off (the paper).
    equivariance_weight: float = 0.0
    equivariance_warp_scale: float = 3.0  # multiplies every sd of the release's TPS distribution
    # Beyond the paper: this share of the warps T also mirrors left-right. The skeleton image has
    # one channel (no left/right), so Phi(flip x) = flip(Phi x) holds for the true skeleton; a
    # skeleton drawn beside the figure (a constant offset, the stuck runs of docs/results.md) breaks it
    equivariance_flip: float = 0.0
    # Share of the batch whose warped copy Phi also reads (the term's cost: Phi's extra
    # work is this fraction of its batch); 1 = every image, at least one image.
    equivariance_fraction: float = 1.0
    # Beyond the paper: reconstruction weighted per pixel by 1 + motion_weight * m, m = where x
    # and x' differ (blurred |x - x'|, mean 1 per image): what moved between the frames (the
    # limbs) is what Psi cannot copy from x' and must take from the pose (docs/losses.md).
    # 0 = off (the paper). Laplacian and perceptual losses only.
    motion_weight: float = 0.0


@dataclass
class DataConfig:
    """Where frames, the pose prior and test labels come from."""

    source: str = "synthetic"  # "synthetic" or "folder"
    options: dict[str, Any] = field(default_factory=dict)  # the source's own options: data.options.KEY=VALUE
    protocol: Optional[str] = None  # evaluation protocol (eval/protocols.py); None: the dataset's
    root: Optional[str] = None  # own data: a folder of videos (frame folders or video files)
    prior: Optional[str] = None  # own data: COCO JSON or .npy (M, K, 2) pixels
    prior_image_size: Optional[list[int]] = None  # (width, height) of .npy prior coordinates
    prior_skeleton: Optional[str] = None  # prior in another skeleton, mapped by keypoint names
    test_root: Optional[str] = None
    test_labels: Optional[str] = None  # COCO JSON
    num_prior: Optional[int] = None  # seeded subset of the prior (the paper's 50/500/5000)
    prior_seed: int = 0
    frame_gap: list[int] = field(default_factory=lambda: [5, 30])  # x' is 5..30 frames from x
    pair_order: str = "sorted"  # "sorted" (release: x the earlier frame, x' the later) or "random"
    tps: bool = False  # pairs by thin-plate-spline warps (image-only datasets)
    pair_warp: str = "none"  # "tps": frame pairs warped too (x affine, x' affine + TPS); beyond the paper, docs/results.md
    warp_scale: float = 1.0  # multiplies every sd of the TPS / pair warps (1 = the release's distribution)
    # beyond the paper: this fraction of each batch's items shows Phi x in front of another training
    # video's background (target unchanged), so Phi cannot key the pose to the background; needs a
    # known (synthetic) or fixed-camera (median) background, docs/results.md
    background_swap: float = 0.0
    background_threshold: float = 0.1  # foreground = differs from the background by more than this ([-1, 1] units)
    # own videos: their backgrounds for background_swap, by video name (<name>/ per-frame images, as
    # `keypointgan examples prepare bodies` writes for tracked crops of fixed cameras, or <name>.png);
    # unset: the per-pixel median of each video (full frames of a fixed camera only)
    background_root: Optional[str] = None
    max_frames: Optional[int] = None  # own videos: use at most this many frames of each
    test_crop: str = "center"  # labelled test images: "center" (shorter side) or "bbox" (+ bbox_margin)
    bbox_margin: float = 0.25  # square side = max(w, h) * (1 + margin) around a COCO bbox
    prior_crop: str = "center"  # prior pixels normalised in the centred square ("full": by W and H)
    synthetic_videos: int = 240  # split into train / prior / test by video
    synthetic_frames: int = 60
    synthetic_seed: int = 0
    synthetic_split: list[float] = field(default_factory=lambda: [0.6, 0.2, 0.2])  # train / prior / test videos
    synthetic_activities: Optional[list[str]] = None  # subset of walk, wave, squat, reach, jumping_jacks, kick, idle
    synthetic_test_stride: int = 3  # every n-th frame of a test video is a test image
    # "clutter": walls, floors, shapes and grain behind the figure (the default); "plain": a black
    # background, like the release's foreground-masked Simplified Human3.6M frames (a diagnostic
    # of what the clutter costs; docs/synthetic-data.md)
    synthetic_background: str = "clutter"
    synthetic_storage: str = "auto"  # "memory" (render once), "lazy" (on demand), "auto" (memory up to 512 MiB)
    cache_dir: Optional[str] = None
    workers: int = 0


@dataclass
class TrainConfig:
    """Optimisation (appendix F.1) and the run itself."""

    batch_size: int = 16
    lr: float = 2e-4
    betas: list[float] = field(default_factory=lambda: [0.5, 0.999])
    grad_clip: float = 1.0
    adam_impl: str = "auto"  # "fused" | "foreach" | "forloop" | "auto" (fused: one kernel for all tensors, ~5x faster on CPU)
    pool_size: int = 50
    iterations: int = 2000
    eta_pretrain_iterations: int = 500
    eta_pretrain_lr: Optional[float] = None  # (peak) learning rate of eta pre-training; None = lr
    eta_pretrain_schedule: str = "constant"  # "constant" (release) | "onecycle" (warm-up then cosine decay)
    ema_decay: float = 0.99  # EMA of Phi/Psi/eta weights, evaluated instead of the raw ones; 0 = off
    eta_augment: bool = False  # random similarity transforms of prior poses for eta (not for D); see docs/results.md
    d_augment: bool = False  # the same for the discriminator's real poses: a small prior (tens of poses) is not memorised
    minutes: Optional[float] = None  # wall-clock budget for the joint stage (stops early)
    precision: str = "auto"  # "bf16" | "fp32" | "auto" (bf16 on CPUs with AMX/AVX-512-bf16 and on CUDA)
    channels_last: Optional[bool] = None  # None (auto): with bf16 autocast or CUDA only; fp32 CPU convolutions ran faster NCHW
    device: str = "auto"
    threads: Optional[int] = None  # torch intra-op threads; None = number of cores
    # torch.compile (inductor) of Phi, Psi, eta and D for the training steps; the EMA, the
    # frozen eta and evaluation stay eager. Compiling costs minutes up front (docs/performance.md).
    compile: bool = False
    compile_backend: str = "inductor"  # torch.compile's backend; "aot_eager" traces without code generation (tests)
    seed: int = 0
    log_every: int = 10
    image_every: int = 200
    checkpoint_every: int = 250
    eval_every: int = 0  # joint steps between test-error logs (eval/* scalars); 0 = never. Logged only:
    eval_images: int = 256  # never used to pick weights (test images, evenly spread)


@dataclass
class Config:
    skeleton: str = "synth_humanoid"
    link_set: Optional[str] = None
    out_dir: str = "runs/default"
    render: RenderConfig = field(default_factory=RenderConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _coerce(value: Any, typ: Any, where: str) -> Any:
    origin = get_origin(typ)
    if origin is Union:
        args = [a for a in get_args(typ) if a is not type(None)]
        if value is None:
            return None
        return _coerce(value, args[0], where)
    if origin in (list, Sequence):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        (inner,) = get_args(typ) or (Any,)
        return [_coerce(v, inner, where) for v in value]
    if dataclasses.is_dataclass(typ):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return _build(typ, value, where)
    if typ is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        raise ConfigError(f"{where}: expected true/false, got {value!r}")
    if typ is int:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected an integer, got {value!r}") from None
    if typ is float:
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected a number, got {value!r}") from None
    if typ is str:
        if not isinstance(value, (str, int, float)):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return str(value)
    return value


def _build(cls: type, data: dict[str, Any], where: str, base: Any = None) -> Any:
    hints = get_type_hints(cls)
    obj = base if base is not None else cls()
    for key, value in data.items():
        if key not in hints:
            raise ConfigError(f"{where}: unknown key '{key}' (known: {', '.join(hints)})")
        cur = getattr(obj, key)
        if dataclasses.is_dataclass(cur) and isinstance(value, dict):
            _build(type(cur), value, f"{where}.{key}", base=cur)
        elif isinstance(cur, dict) and isinstance(value, dict):  # a free-form section (data.options): merged
            setattr(obj, key, {**cur, **value})
        else:
            setattr(obj, key, _coerce(value, hints[key], f"{where}.{key}"))
    return obj


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


def resolve_config_path(spec: str | Path) -> Path:
    """A preset name (``cpu``, ``paper``, ...) or a path to a YAML file."""
    p = Path(spec)
    if p.suffix in (".yaml", ".yml") or p.is_file():
        return p
    preset = PRESET_DIR / f"{spec}.yaml"
    if p.is_dir() and not preset.is_file():
        raise ConfigError(f"config '{spec}' is a folder, not a YAML file or a preset")
    if not preset.is_file():
        names = sorted(q.stem for q in PRESET_DIR.glob("*.yaml"))
        raise ConfigError(f"unknown config '{spec}': not a file and not a preset ({', '.join(names)})")
    return preset


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"train.lr=1e-4"`` -> (["train", "lr"], 1e-4); the value is parsed as YAML."""
    if "=" not in text:
        raise ConfigError(f"override '{text}' is not of the form section.key=value")
    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return key.strip().split("."), value


def load_config(spec: str | Path | None = "cpu", overrides: Sequence[str] = ()) -> Config:
    """Load a preset or YAML file (``base: other`` inherits from another), then apply overrides."""
    cfg = Config()
    if spec is not None:
        chain, seen = [], set()
        path = resolve_config_path(spec)
        while True:
            if path.resolve() in seen:
                raise ConfigError(f"{path}: 'base' chain loops")
            seen.add(path.resolve())
            data = _read_yaml(path)
            chain.append((path, data))
            if "base" not in data:
                break
            base = str(data["base"])
            cand = path.parent / base
            path = cand if cand.suffix in (".yaml", ".yml") and cand.exists() else resolve_config_path(base)
        for path, data in reversed(chain):
            data = {k: v for k, v in data.items() if k != "base"}
            _build(Config, data, str(path), base=cfg)
    return apply_overrides(cfg, overrides)


def apply_overrides(cfg: Config, overrides: Sequence[str] = (), fixed: Sequence[str] = (),
                    why: str = "{key} cannot be changed here") -> Config:
    """Apply ``section.key=value`` overrides to ``cfg`` in place (and return it); an override
    of a top-level key in ``fixed`` is a :class:`ConfigError` saying ``why`` (``{key}``: that key)."""
    for ov in overrides:
        keys, value = parse_override(ov)
        if keys[0] in fixed:
            raise ConfigError(f"override '{ov}': {why.format(key=keys[0])}")
        nested: Any = value
        for k in reversed(keys):
            nested = {k: nested}
        _build(Config, nested, f"override '{ov}'", base=cfg)
    return cfg


def config_from_dict(data: dict[str, Any], where: str = "config", cls: type = Config) -> Any:
    """A :class:`Config` (or another section ``cls``) from a nested dict, e.g. the ``config`` a
    checkpoint stores; ``where`` names the source in errors."""
    return _build(cls, data, where)


def save_config(cfg: Config, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
