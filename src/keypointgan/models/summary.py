"""Parameter counts of Phi, Psi, eta and D for a configuration (``keypointgan params``)."""

from __future__ import annotations

from typing import Mapping, Optional

import torch
from torch import nn

from ..config import Config
from . import build_models
from .keypointgan import SkeletonLike

LABELS = {"phi": "Phi (image encoder)", "psi": "Psi (conditional decoder)", "eta": "eta (skeleton regressor)",
          "discriminator": "D (multi-scale PatchGAN)", "total": "total"}


def count_parameters(net: nn.Module) -> int:
    """Number of scalar parameters (trainable or not; buffers excluded)."""
    return sum(p.numel() for p in net.parameters())


def parameter_counts(cfg: Config, skeleton: Optional[SkeletonLike] = None) -> dict[str, int]:
    """``{"phi", "psi", "eta", "discriminator", "total"}`` -> parameter count, built on the meta device."""
    with torch.device("meta"):
        gan, disc = build_models(cfg, skeleton, init=False)
    counts = {"phi": count_parameters(gan.phi), "psi": count_parameters(gan.psi),
              "eta": count_parameters(gan.eta), "discriminator": count_parameters(disc)}
    counts["total"] = sum(counts.values())
    return counts


def format_parameter_table(counts: Mapping[str, int], title: Optional[str] = None) -> str:
    """A plain-text table of :func:`parameter_counts` (exact counts and millions)."""
    rows = [(LABELS.get(k, k), f"{v:,}", f"{v / 1e6:.3f} M") for k, v in counts.items()]
    w = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [title] if title else []
    lines += [f"{a:<{w[0]}}  {b:>{w[1]}}  {c:>{w[2]}}" for a, b, c in rows]
    return "\n".join(lines)
