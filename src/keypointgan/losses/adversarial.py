"""LSGAN losses (eq. 5, Mao et al.) for a multi-scale patch discriminator.

The discriminator returns one patch-score tensor per scale. As in the authors'
release, real skeletons are pushed to 1 and fakes to 0, each scale's loss is an MSE
over its patches, and the scales are averaged. (The paper's eq. 5 prints the targets
the other way round; only the convention matters, and we follow the release.)
Everything is reduced in float32 so bf16 scores under autocast lose no precision.
"""

from __future__ import annotations

from typing import Sequence, Union

import torch
from torch import Tensor

Scores = Union[Tensor, Sequence[Tensor]]


def _as_list(scores: Scores, what: str) -> list[Tensor]:
    """One tensor or a per-scale sequence -> a non-empty list."""
    out = [scores] if isinstance(scores, Tensor) else list(scores)
    if not out:
        raise ValueError(f"{what}: expected at least one scale of discriminator scores")
    return out


def _mse_to(scores: Tensor, target: float) -> Tensor:
    """Mean of (score - target)^2 over every patch of one scale, in float32."""
    return (scores.float() - target).square().mean()


def lsgan_discriminator_loss(real_scores: Scores, fake_scores: Scores) -> Tensor:
    """``0.5 * (MSE(D(real), 1) + MSE(D(fake), 0))`` averaged over scales.

    Call with ``fake`` detached (or drawn from the history pool) so the step only
    updates D.
    """
    real = _as_list(real_scores, "real_scores")
    fake = _as_list(fake_scores, "fake_scores")
    if len(real) != len(fake):
        raise ValueError(f"{len(real)} real vs {len(fake)} fake discriminator scales")
    per_scale = [0.5 * (_mse_to(r, 1.0) + _mse_to(f, 0.0)) for r, f in zip(real, fake)]
    return torch.stack(per_scale).mean()


def lsgan_generator_loss(fake_scores: Scores) -> Tensor:
    """``MSE(D(fake), 1)`` averaged over scales: the generator's (Phi's) side of eq. 5."""
    fake = _as_list(fake_scores, "fake_scores")
    return torch.stack([_mse_to(f, 1.0) for f in fake]).mean()
