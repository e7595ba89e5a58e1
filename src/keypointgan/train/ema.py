"""Exponential moving average (EMA) of the model's weights: the copy that is evaluated.

GAN training oscillates: on the built-in data the raw detector's test error jumps by
several points between evaluations 100 iterations apart, while an EMA of the same
weights moves smoothly and is better on average (docs/results.md). Evaluation, the
demo, ``predict`` and ``export`` therefore use the EMA weights when a run has them.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


def ema_decay_at(decay: float, updates: int) -> float:
    """``decay``, warmed up as ``(1 + n) / (10 + n)`` so early averages are not dominated
    by the initial weights (the schedule of TensorFlow's ExponentialMovingAverage)."""
    return min(decay, (1.0 + updates) / (10.0 + updates))


def eager_copy(model: nn.Module) -> nn.Module:
    """A deep copy of ``model`` that runs eagerly even where ``model``'s submodules were
    compiled in place (``nn.Module.compile``, ``train.compile``): the copy is evaluated
    at other batch sizes and in eval mode, where compiled graphs would recompile."""
    twin = copy.deepcopy(model)
    for m in twin.modules():
        if getattr(m, "_compiled_call_impl", None) is not None:
            m._compiled_call_impl = None
    return twin


class ModelEMA:
    """An eval-mode copy of ``model`` whose floating-point weights and buffers track an EMA."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"train.ema_decay must be in (0, 1) (0 turns the EMA off), got {decay}")
        self.decay = decay
        self.module = eager_copy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module, updates: int) -> None:
        """Blend ``model`` in; ``updates`` counts the calls so far (the joint step)."""
        w = 1.0 - ema_decay_at(self.decay, updates)
        for e, p in zip(self.module.state_dict().values(), model.state_dict().values()):
            if e.dtype.is_floating_point:
                e.lerp_(p.detach().to(e.dtype), w)
            else:
                e.copy_(p)
