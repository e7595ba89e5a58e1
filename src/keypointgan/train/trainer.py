"""KeypointGAN training in the paper's two stages.

1. eta pre-training on the prior (appendix F.2, eq. 7): ``|eta(beta(p)) - p|^2``.
2. Joint training (eq. 6), each iteration in the release's order:
   - generator step: Phi and Psi on ``adv_weight * LSGAN(D(Phi(x)), 1) +
     rec_weight * rec(Psi(beta(eta(Phi(x))), x'), x)``; eta and D are frozen, but
     gradients flow through eta and beta into Phi;
   - discriminator step: ``0.5 * (LSGAN(D(beta(p_prior)), 1) + LSGAN(D(pool(Phi(x))), 0))``;
   - eta step: ``eta_prior_weight * |eta(beta(p)) - p|^2 +
     eta_cycle_weight * |beta(eta(y)) - y|^2`` with ``y = Phi(x)`` detached.
   Three Adam optimisers, gradient-norm clipping on each.

A frozen copy of the pre-trained eta is kept for the left/right orientation correction
at evaluation (appendix F.2). An exponential moving average of Phi, Psi and eta
(``train.ema_decay``) is what evaluation and inference use: the raw weights oscillate.

Runs stop cleanly on Ctrl-C (checkpoint, then exit), refuse to continue on NaN/inf
losses (the last good checkpoint stays), and resume exactly: every random draw of a
step comes from generators seeded by (seed, rank, step), so an interrupted and resumed
run sees the same batches as an uninterrupted one.
"""

from __future__ import annotations

import math
import signal
import time
import warnings
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Callable, Optional

import torch
from torch import nn

from ..config import Config, ConfigError, save_config
from ..errors import KeypointGANError
from ..losses import (build_reconstruction_loss, eta_cycle_loss, eta_prior_loss, lsgan_discriminator_loss,
                      lsgan_generator_loss, motion_weights)
from ..models import build_models
from ..data.prior import random_similarity
from ..pose import get_skeleton
from ..pose.stats import pose_spread
from ..core import checkpoint as ckpt
from ..core.seeds import D_AUGMENT_STREAM, EQUIVARIANCE_STREAM, ETA_AUGMENT_STREAM, POOL_STREAM, step_seed
from ..data import tps
from .ema import ModelEMA, eager_copy
from .distributed import DistInfo, all_reduce_mean, barrier, init_distributed, wrap
from ..core.logger import RunLogger
from .pool import HistoryPool
from ..core.runtime import Runtime


class TrainingDiverged(KeypointGANError, RuntimeError):
    """A loss became NaN or infinite; the run stopped without overwriting good checkpoints."""


@dataclass
class TrainState:
    """Counters that, with the weights and optimiser moments, define a run's position."""

    eta_step: int = 0
    step: int = 0
    elapsed: float = 0.0  # seconds of training so far, over all sessions of the run
    eta_pretrained: bool = False

    @property
    def global_step(self) -> int:
        return self.eta_step + self.step


def onecycle_lr(step: int, total: int, peak: float, warmup: float = 0.3, div: float = 25.0,
                final_div: float = 1e4) -> float:
    """Learning rate of 1-based ``step`` of ``total`` on a one-cycle schedule (the shape of
    torch's OneCycleLR with cosine annealing), as a pure function of the step so that
    resumed runs follow it exactly."""
    start, end = peak / div, peak / div / final_div
    n, up = step - 1, warmup * total - 1
    if n <= up:
        a, b, t = start, peak, n / up
    else:
        a, b, t = peak, end, (n - up) / (total - 1 - up)
    return b + (a - b) * 0.5 * (1.0 + math.cos(math.pi * min(1.0, t)))


def _check_train_options(cfg: Config) -> None:
    """Refuse bad training options at start-up, not after minutes of eta pre-training."""
    t = cfg.train
    if t.eta_pretrain_schedule not in ("constant", "onecycle"):
        raise ConfigError(f"train.eta_pretrain_schedule must be constant or onecycle, got {t.eta_pretrain_schedule!r}")
    if not 0.0 <= t.ema_decay < 1.0:
        raise ConfigError(f"train.ema_decay must be in [0, 1) (0 turns the EMA off), got {t.ema_decay}")
    m, d = cfg.model, cfg.data
    checks = [("train.batch_size", t.batch_size, t.batch_size >= 1, ">= 1"),
              ("train.iterations", t.iterations, t.iterations >= 0, ">= 0"),
              ("train.eta_pretrain_iterations", t.eta_pretrain_iterations, t.eta_pretrain_iterations >= 0, ">= 0"),
              ("train.lr", t.lr, t.lr > 0, "> 0"),
              ("train.minutes", t.minutes, t.minutes is None or t.minutes > 0, "> 0 (or unset)"),
              ("model.image_size", m.image_size, m.image_size > 0, "> 0"),
              ("model.disc_minibatch_std", m.disc_minibatch_std, m.disc_minibatch_std in (0,) or
               m.disc_minibatch_std >= 2, "0 (off) or a group size >= 2"),
              ("data.warp_scale", d.warp_scale, d.warp_scale >= 0, ">= 0"),
              ("loss.equivariance_weight", cfg.loss.equivariance_weight, cfg.loss.equivariance_weight >= 0, ">= 0"),
              ("loss.equivariance_warp_scale", cfg.loss.equivariance_warp_scale,
               cfg.loss.equivariance_warp_scale > 0, "> 0"),
              ("loss.equivariance_fraction", cfg.loss.equivariance_fraction,
               0 < cfg.loss.equivariance_fraction <= 1, "in (0, 1]"),
              ("loss.equivariance_flip", cfg.loss.equivariance_flip, 0 <= cfg.loss.equivariance_flip <= 1,
               "in [0, 1]"),
              ("loss.motion_weight", cfg.loss.motion_weight, cfg.loss.motion_weight >= 0, ">= 0"),
              ("render.psi_sigmas", cfg.render.psi_sigmas, all(v > 0 for v in cfg.render.psi_sigmas),
               "a list of positive widths"),
              ("train.adam_impl", t.adam_impl, t.adam_impl in ("auto", *ADAM_IMPLS), "auto, fused, foreach or forloop")]
    for name, value, ok, rule in checks:
        if not ok:
            raise ConfigError(f"{name} must be {rule}, got {value!r}")
    if t.compile:
        import torch._dynamo

        known = torch._dynamo.list_backends(exclude_tags=())
        if t.compile_backend not in known:
            raise ConfigError(f"train.compile_backend must be one of torch.compile's backends "
                              f"({', '.join(sorted(known))}), got {t.compile_backend!r}")


ADAM_IMPLS = {"fused": dict(fused=True), "foreach": dict(foreach=True), "forloop": dict(foreach=False)}


def adam_flags(impl: str) -> dict[str, bool]:
    """torch.optim.Adam's implementation flags for ``train.adam_impl``. ``auto`` = fused (one
    kernel over all tensors, CPU and CUDA): on a Zen 4 CPU the three optimisers' steps took
    19 ms fused, 84 ms foreach and 97 ms in torch's CPU default (the for-loop), 1 thread
    (docs/performance.md). The choice changes rounding, not the algorithm."""
    impl = "fused" if impl == "auto" else impl
    if impl not in ADAM_IMPLS:
        raise ConfigError(f"train.adam_impl must be auto, fused, foreach or forloop, got {impl!r}")
    return dict(ADAM_IMPLS[impl])


def _clip(params: list[nn.Parameter], max_norm: float) -> float:
    if max_norm <= 0:
        return float("nan")
    return float(torch.nn.utils.clip_grad_norm_(params, max_norm))


def _check_finite(losses: dict[str, torch.Tensor], where: str, step: int) -> None:
    bad = [k for k, v in losses.items() if not torch.isfinite(v).all()]
    if bad:
        raise TrainingDiverged(
            f"{where} step {step}: non-finite loss in {', '.join(bad)} "
            f"({', '.join(f'{k}={float(losses[k].detach()):.4g}' for k in bad)}); stopped without saving this state. "
            "Resume from the last checkpoint with a lower learning rate or precision=fp32."
        )


class Trainer:
    """Builds data, models, losses and optimisers from a :class:`Config` and trains them."""

    def __init__(self, cfg: Config, out_dir: str | Path | None = None, resume: bool = False,
                 data: Any = None, progress: bool = True) -> None:
        _check_train_options(cfg)
        self.cfg = cfg
        self.out_dir = Path(out_dir or cfg.out_dir)
        self.runtime = Runtime.create(cfg.train.device, cfg.train.precision, cfg.train.channels_last,
                                      cfg.train.threads)
        self.dist: DistInfo = init_distributed(self.runtime.device.type)
        self.progress = progress and self.dist.is_main
        self.skeleton = get_skeleton(cfg.skeleton, cfg.link_set)
        torch.manual_seed(cfg.train.seed)
        if data is None:
            from ..data.build import build_data

            data = build_data(cfg, self.skeleton, rank=self.dist.rank)
        self.data = data
        model, disc = build_models(cfg, self.skeleton)
        self.model = self.runtime.module(model)
        self.disc = self.runtime.module(disc)
        if cfg.train.compile:
            self._compile()
        self.eta_frozen: Optional[nn.Module] = None
        self.ema: Optional[ModelEMA] = None  # made when joint training starts (train.ema_decay > 0)
        self._eval_set: Any = None  # test images of log_test_error, chosen once
        self._deadline: Optional[float] = None
        self.rec_loss = build_reconstruction_loss(cfg.loss).to(self.runtime.device)
        t = cfg.train
        adam = dict(lr=t.lr, betas=tuple(t.betas), **adam_flags(t.adam_impl))
        self.g_params = list(self.model.phi.parameters()) + list(self.model.psi.parameters())
        self.opt_g = torch.optim.Adam(self.g_params, **adam)
        self.opt_d = torch.optim.Adam(self.disc.parameters(), **adam)
        self.opt_eta = torch.optim.Adam(self.model.eta.parameters(), **adam)
        self.pool = HistoryPool(t.pool_size, seed=t.seed + 7919 * self.dist.rank)
        self.state = TrainState()
        self._stop_requested = False
        self._wrap_ddp()
        if resume and not self.resume():
            raise ckpt.CheckpointError(f"--resume: no checkpoint in {self.checkpoint_dir} to continue from (is the "
                                       f"run folder right?); start a new run without --resume")
        self.logger = RunLogger(self.out_dir, enabled=self.dist.is_main,
                                resume_step=self.state.global_step if resume else None)
        if self.dist.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            save_config(cfg, self.out_dir / "config.yaml")

    # -- set-up ------------------------------------------------------------------------
    def _compile(self) -> None:
        """``train.compile``: torch.compile Phi, Psi, eta and D in place (state-dict keys and
        checkpoints unchanged). Shapes are static; each batch size a network sees (B, B + the
        equivariance batch, 2B) compiles once. Evaluation copies stay eager (eager_copy)."""
        for m in (self.model.phi, self.model.psi, self.model.eta, self.disc):
            m.compile(dynamic=False, backend=self.cfg.train.compile_backend)

    def _wrap_ddp(self) -> None:
        """DDP wrappers: G covers Phi+Psi only (eta frozen at wrap time), eta and D their own."""
        dev = self.runtime.device
        self.model.eta.requires_grad_(False)
        self.g_ddp = wrap(self.model, self.dist, dev)
        self.model.eta.requires_grad_(True)
        self.eta_ddp = wrap(self.model.eta, self.dist, dev)
        self.d_ddp = wrap(self.disc, self.dist, dev)

    @property
    def checkpoint_dir(self) -> Path:
        return self.out_dir / "checkpoints"

    def _generator(self, stream: int, step: int) -> torch.Generator:
        """Generator for one stream of random draws at one step: resumable by construction."""
        return torch.Generator().manual_seed(step_seed(self.cfg.train.seed, self.dist.rank, stream, step))

    # -- eta pre-training -------------------------------------------------------------
    def _prior(self, step: int) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Prior keypoints of a step and their visibility (None when all are visible)."""
        b = self.data.prior_batch(step)
        vis = b.get("visible")
        vis = None if vis is None or bool(vis.all()) else self.runtime.tensor(vis)
        return self.runtime.tensor(b["keypoints"]), vis

    def prior_batch(self, step: int) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """The prior poses training draws at ``step``, on the run's device, and their visibility
        (None when all are visible): what :meth:`eta_loss_prior` takes."""
        return self._prior(step)

    def _augment(self, prior: torch.Tensor, step: int, enabled: Optional[bool] = None,
                 stream: int = ETA_AUGMENT_STREAM) -> torch.Tensor:
        """Prior poses randomly moved (data.prior.random_similarity) when ``enabled`` (default
        ``train.eta_augment``: eta's poses; the discriminator's use ``train.d_augment``)."""
        if not (self.cfg.train.eta_augment if enabled is None else enabled):
            return prior
        return random_similarity(prior.cpu(), self._generator(stream, step)).to(prior.device)

    def eta_loss_prior(self, prior: torch.Tensor, visible: Optional[torch.Tensor] = None) -> torch.Tensor:
        y = self.model.render(prior, visible)
        with self.runtime.autocast():
            pred = self.eta_ddp(self.runtime.tensor(y)).keypoints
        return eta_prior_loss(pred.float(), prior, visible)

    def pretrain_eta(self, iterations: Optional[int] = None, deadline: Optional[float] = None,
                     callback: Optional[Callable[[int, dict], None]] = None) -> None:
        """Stage 1: fit eta to invert beta on prior poses (eq. 7)."""
        total = self.cfg.train.eta_pretrain_iterations if iterations is None else iterations
        self.model.eta.train()
        t = self.cfg.train
        peak = t.eta_pretrain_lr or t.lr
        bar = self._bar(total, self.state.eta_step, "eta pre-training")
        self._deadline = deadline  # the progress bar shows the time left
        with self._sigint_guard():
            while self.state.eta_step < total and not self._should_stop(deadline):
                step = self.state.eta_step + 1
                lr = onecycle_lr(step, total, peak) if t.eta_pretrain_schedule == "onecycle" else peak
                for group in self.opt_eta.param_groups:
                    group["lr"] = lr
                prior, visible = self._prior(step)
                loss = self.eta_loss_prior(self._augment(prior, step), visible)
                _check_finite({"eta_prior": loss}, "eta pre-training", step)
                self.opt_eta.zero_grad(set_to_none=True)
                loss.backward()
                gn = _clip(list(self.model.eta.parameters()), self.cfg.train.grad_clip)
                self.opt_eta.step()
                self.state.eta_step = step
                self._after_step("eta_pretrain", {"eta_prior": float(loss.detach()), "eta_grad_norm": gn}, bar, callback)
        bar.close()
        if self.state.eta_step >= total:
            self._freeze_pretrained_eta()

    def _freeze_pretrained_eta(self) -> None:
        for group in self.opt_eta.param_groups:  # fine-tuning runs at the joint stage's rate
            group["lr"] = self.cfg.train.lr
        self.state.eta_pretrained = True
        self.eta_frozen = eager_copy(self.model.eta).eval().requires_grad_(False)

    # -- joint training ---------------------------------------------------------------
    def equivariance_warp(self, step: int, n: int) -> Callable[[torch.Tensor], torch.Tensor]:
        """The random TPS warps T of the equivariance term at ``step``, one per batch item:
        a function (n,C,S,S) -> (n,C,S,S) that applies them (``data.tps`` distribution, every
        sd times ``loss.equivariance_warp_scale``), each then mirrored left-right with
        probability ``loss.equivariance_flip``. The sampling grid is computed once, at the
        first call's size, and reused for x and Phi(x)."""
        import numpy as np

        params = tps.scaled(tps.TPSParams(), self.cfg.loss.equivariance_warp_scale)
        rng = np.random.default_rng(step_seed(self.cfg.train.seed, self.dist.rank, EQUIVARIANCE_STREAM, step))
        affine, weights = tps.sample_affine(n, params, rng), tps.sample_kernel_weights(n, params, rng)
        flip = torch.from_numpy(rng.random(n) < self.cfg.loss.equivariance_flip)  # drawn last: p=0 keeps T
        grids: dict[tuple[int, int], torch.Tensor] = {}

        def apply(images: torch.Tensor) -> torch.Tensor:
            size = tuple(images.shape[-2:])
            if size not in grids:
                grids[size] = tps.warp_grid(size, affine, weights, params.grid)
                if flip.any():  # sampling at the mirrored column = mirroring the warped image
                    grids[size] = torch.where(flip[:, None, None, None], grids[size].flip(2), grids[size])
            return tps.apply_grid(images, grids[size])

        return apply

    def equivariance_n(self, batch: int) -> int:
        """How many of a batch's images the equivariance term warps: ``loss.equivariance_fraction``
        of ``batch``, rounded, at least 1."""
        return max(1, min(batch, round(self.cfg.loss.equivariance_fraction * batch)))

    def generator_step(self, x: torch.Tensor, x_app: torch.Tensor,
                       x_phi: Optional[torch.Tensor] = None) -> tuple[dict[str, torch.Tensor], Any]:
        """Phi + Psi update; eta and D frozen, gradients flow through eta and beta.

        ``x_phi`` (B,3,S,S), optional: what Phi reads instead of x (x in front of other
        backgrounds, ``data.background_swap``); the reconstruction target stays x.

        With ``loss.equivariance_weight > 0`` (beyond the paper), Phi also reads T(x) for
        random warps T, and ``|Phi(T(x)) - T(Phi(x))|^2`` asks its skeleton to move with the
        image: a pose drawn the same on every frame cannot satisfy it. Only the first
        ``equivariance_n(B)`` images of the batch are warped (``loss.equivariance_fraction``)."""
        self.model.eta.requires_grad_(False)
        self.disc.requires_grad_(False)
        c = self.cfg.loss
        n_eq = self.equivariance_n(x.shape[0])
        warp = self.equivariance_warp(self.state.step + 1, n_eq) if c.equivariance_weight > 0 else None
        try:
            with self.runtime.autocast():
                src = x if x_phi is None else x_phi
                x_warped = None if warp is None else self.runtime.tensor(warp(src[:n_eq].float()).to(src.dtype))
                out = self.g_ddp(src, x_app, x_warped)
                adv = lsgan_generator_loss(self.disc(out.y))
                if c.motion_weight > 0:  # beyond the paper: what moved between x' and x counts more
                    rec = self.rec_loss(out.x_hat, x, motion_weights(x, x_app, c.motion_weight))
                else:
                    rec = self.rec_loss(out.x_hat, x)
            loss = c.adv_weight * adv + c.rec_weight * rec
            losses = {"g_adv": adv, "g_rec": rec}
            if warp is not None:
                equiv = torch.mean((out.y_warped.float() - warp(out.y[:n_eq].float())) ** 2)
                loss = loss + c.equivariance_weight * equiv
                losses["g_equiv"] = equiv
            losses["g_total"] = loss
            raw = getattr(self.rec_loss, "last_raw_terms", None)
            if raw is not None:  # the loss divides its terms by running means: log their raw mean too
                losses["g_rec_raw"] = raw.mean()
            _check_finite(losses, "generator", self.state.step + 1)
            self.opt_g.zero_grad(set_to_none=True)
            loss.backward()
            losses["g_grad_norm"] = torch.tensor(_clip(self.g_params, self.cfg.train.grad_clip))
            self.opt_g.step()
        finally:
            self.model.eta.requires_grad_(True)
            self.disc.requires_grad_(True)
        return losses, out

    def discriminator_step(self, fake_y: torch.Tensor, prior: torch.Tensor,
                           visible: Optional[torch.Tensor] = None) -> dict[str, torch.Tensor]:
        """D update on beta(prior) (real) vs pooled Phi(x) (fake), one forward for DDP."""
        prior = self._augment(prior, self.state.eta_step + self.state.step + 1, self.cfg.train.d_augment,
                              stream=D_AUGMENT_STREAM)
        real = self.model.render(prior, visible)
        fake = self.runtime.tensor(self.pool.query(fake_y.detach().float()))
        with self.runtime.autocast():
            scores = self.d_ddp(self.runtime.tensor(torch.cat([real, fake])))
        n = real.shape[0]
        loss = lsgan_discriminator_loss([s[:n] for s in scores], [s[n:] for s in scores])
        _check_finite({"d": loss}, "discriminator", self.state.step + 1)
        self.opt_d.zero_grad(set_to_none=True)
        loss.backward()
        gn = _clip(list(self.disc.parameters()), self.cfg.train.grad_clip)
        self.opt_d.step()
        return {"d": loss, "d_grad_norm": torch.tensor(gn)}

    def eta_step(self, y: torch.Tensor, prior: torch.Tensor,
                 visible: Optional[torch.Tensor] = None) -> dict[str, torch.Tensor]:
        """eta fine-tuning: prior regression + lambda' * skeleton cycle on Phi(x)."""
        y = y.detach().float()
        prior = self._augment(prior, self.state.eta_step + self.state.step + 1)
        real = self.model.render(prior, visible)
        with self.runtime.autocast():
            kp = self.eta_ddp(self.runtime.tensor(torch.cat([real, y]))).keypoints.float()
        n = prior.shape[0]
        l_prior = eta_prior_loss(kp[:n], prior, visible)
        l_cycle = eta_cycle_loss(self.model.render(kp[n:]), y)
        c = self.cfg.loss
        loss = c.eta_prior_weight * l_prior + c.eta_cycle_weight * l_cycle
        losses = {"eta_prior": l_prior, "eta_cycle": l_cycle}
        _check_finite(losses, "eta", self.state.step + 1)
        self.opt_eta.zero_grad(set_to_none=True)
        loss.backward()
        losses["eta_grad_norm"] = torch.tensor(_clip(list(self.model.eta.parameters()), self.cfg.train.grad_clip))
        self.opt_eta.step()
        return losses

    @staticmethod
    def health(keypoints: torch.Tensor, prior: torch.Tensor) -> dict[str, torch.Tensor]:
        """Label-free collapse signal: spread of the batch's predicted pose shapes against the
        prior batch's (``pose_spread``); a ratio near 0 means one pose drawn on every frame."""
        pred, real = pose_spread(keypoints), pose_spread(prior)
        return {"pose_spread": pred, "prior_spread": real, "spread_ratio": pred / real.clamp_min(1e-8)}

    def train_step(self) -> tuple[dict[str, float], Any]:
        step = self.state.step + 1
        batch = self.data.pair_batch(step)
        x, x_app = self.runtime.tensor(batch["x"]), self.runtime.tensor(batch["x_app"])
        x_phi = self.runtime.tensor(batch["x_phi"]) if "x_phi" in batch else None
        prior, visible = self._prior(self.state.eta_step + step)
        self.pool.generator.manual_seed(int(self._generator(POOL_STREAM, step).initial_seed()))
        self.model.train()
        self.disc.train()
        losses, out = self.generator_step(x, x_app, x_phi)
        losses.update(self.discriminator_step(out.y, prior, visible))
        losses.update(self.eta_step(out.y, prior, visible))
        losses.update(self.health(out.keypoints, prior))
        return {k: float(all_reduce_mean(v.detach(), self.dist)) for k, v in losses.items()}, (x, x_app, out, prior)

    def train(self, iterations: Optional[int] = None, deadline: Optional[float] = None,
              callback: Optional[Callable[[int, dict], None]] = None) -> None:
        """Stage 2 (eq. 6): runs until ``iterations`` or the wall-clock ``deadline``."""
        if not self.state.eta_pretrained:
            self._freeze_pretrained_eta()  # no pre-training asked for: keep the initial eta as reference
        if self.ema is None and self.cfg.train.ema_decay > 0:
            self.ema = ModelEMA(self.model, self.cfg.train.ema_decay)
        total = self.cfg.train.iterations if iterations is None else iterations
        if self.cfg.train.minutes and deadline is None:
            deadline = time.monotonic() + 60 * self.cfg.train.minutes
        # a time-bounded run shows its count and speed, not an ETA for an iteration cap it will not reach
        bar = self._bar(None if deadline is not None else total, self.state.step, "KeypointGAN")
        self._deadline = deadline  # the progress bar shows the time left
        with self._sigint_guard():
            while self.state.step < total and not self._should_stop(deadline):
                scalars, tensors = self.train_step()
                self.state.step += 1
                if self.ema is not None:
                    self.ema.update(self.model, self.state.step)
                if self.dist.is_main and self.cfg.train.image_every and self.state.step % self.cfg.train.image_every == 0:
                    self._log_images(*tensors)
                if self.cfg.train.eval_every and self.state.step % self.cfg.train.eval_every == 0:
                    self.log_test_error()
                self._after_step("joint", scalars, bar, callback)
        bar.close()

    def log_test_error(self) -> dict[str, float]:
        """Test error (%), PCK@0.1 and (with flip pairs) the left/right-swap-min error of the EMA
        and raw weights on ``train.eval_images`` test images, logged as ``eval/*`` scalars (rank 0; nothing when the data has no test labels).

        For watching a run only: the weights a run keeps never depend on these numbers.
        """
        test = getattr(self.data, "test", None)
        if not self.dist.is_main or test is None or len(test) == 0:
            return {}
        from ..data.base import SubsetSource
        from ..eval.evaluator import mean_pose_baseline, predict_labelled, score

        if self._eval_set is None:
            self._eval_set = SubsetSource.spread(test, self.cfg.train.eval_images)
        sk, size = self.skeleton, self.cfg.model.image_size
        models = [("ema", self.ema.module)] if self.ema is not None else []
        out: dict[str, float] = {}
        for name, m in models + [("raw", self.model)]:
            p = predict_labelled(m, self._eval_set, self.runtime, sk, self.eta_frozen)
            s = score(p.oriented, p.truth, sk, size)
            out[f"{name}_error_percent"], out[f"{name}_pck@0.1"] = s["error_percent"], s["pck@0.1"]
            if "error_percent_min_over_flip" in s:  # skeletons with left/right pairs
                out[f"{name}_flip_min_percent"] = s["error_percent_min_over_flip"]
        base = mean_pose_baseline(self.data.prior, p.truth, sk, size)
        out["mean_pose_error_percent"] = base["error_percent"]
        if "error_percent_min_over_flip" in base:
            out["mean_pose_flip_min_percent"] = base["error_percent_min_over_flip"]
        self.logger.scalars(self.state.global_step, "eval", out)
        return out

    # -- the loop's bookkeeping ---------------------------------------------------------
    def _should_stop(self, deadline: Optional[float]) -> bool:
        return self._stop_requested or (deadline is not None and time.monotonic() >= deadline)

    def _after_step(self, stage: str, scalars: dict[str, float], bar: Any, callback: Any) -> None:
        now = time.monotonic()
        self.state.elapsed += now - getattr(self, "_last_tick", now)
        self._last_tick = now
        t = self.cfg.train
        gstep = self.state.global_step
        if bar is not None:
            bar.update(1)
            post = {k: f"{v:.3g}" for k, v in scalars.items() if "norm" not in k}
            if self._deadline is not None:
                left = max(0, int(self._deadline - now))
                post["left"] = f"{left // 60}:{left % 60:02d}"
            bar.set_postfix(post, refresh=False)
        if t.log_every and gstep % t.log_every == 0:
            self.logger.scalars(gstep, stage, scalars)
        if callback is not None:
            callback(gstep, scalars)
        if t.checkpoint_every and gstep % t.checkpoint_every == 0:
            self.save()

    def _bar(self, total: Optional[int], start: int, desc: str):
        from tqdm.auto import tqdm

        return tqdm(total=total, initial=start, desc=desc, disable=not self.progress, dynamic_ncols=True,
                    smoothing=0.1, unit="it")

    class _Guard:
        def __init__(self, trainer: "Trainer") -> None:
            self.trainer, self.previous = trainer, None

        def __enter__(self):
            self.trainer._last_tick = time.monotonic()
            try:
                self.previous = signal.signal(signal.SIGINT, self._handle)
            except ValueError:  # not the main thread
                self.previous = None
            return self

        def _handle(self, signum, frame):
            if self.trainer._stop_requested:  # second Ctrl-C: stop now
                raise KeyboardInterrupt
            self.trainer._stop_requested = True
            print("\nCtrl-C: finishing this step, saving a checkpoint and exiting (Ctrl-C again to abort)",
                  flush=True)

        def __exit__(self, *exc):
            if self.previous is not None:
                signal.signal(signal.SIGINT, self.previous)
            if self.trainer._stop_requested and exc[0] is None:
                self.trainer.save()
            return False

    def _sigint_guard(self) -> "Trainer._Guard":
        return Trainer._Guard(self)

    @property
    def interrupted(self) -> bool:
        return self._stop_requested

    def _log_images(self, x, x_app, out, prior) -> None:
        from ..viz import training_grid

        self.logger.images(self.state.global_step, "train/x_app_phi_ystar_xhat_prior",
                           training_grid(x, x_app, out.y, out.y_star, out.x_hat, self.model.render(prior[: x.shape[0]])))

    # -- checkpoints ------------------------------------------------------------------
    @property
    def inference_model(self) -> nn.Module:
        """The weights to evaluate: the EMA when the run keeps one, else the raw model."""
        return self.ema.module if self.ema is not None else self.model

    # The one list of what a checkpoint holds: a variant with another network or optimiser
    # adds one entry here (and its module/optimiser in __init__); save and resume follow.
    REQUIRED_MODULES = ("model", "disc")  # resume fails if a checkpoint lacks them
    OPTIONAL_MODULES = ("rec_loss",)  # running means; older checkpoints may lack them

    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"opt_g": self.opt_g, "opt_d": self.opt_d, "opt_eta": self.opt_eta}

    def _modules(self) -> dict[str, nn.Module]:
        mods: dict[str, nn.Module] = {name: getattr(self, name)
                                      for name in self.REQUIRED_MODULES + self.OPTIONAL_MODULES}
        if self.eta_frozen is not None:
            mods["eta_pretrained"] = self.eta_frozen
        if self.ema is not None:
            mods["model_ema"] = self.ema.module
        return mods

    def save(self) -> Optional[Path]:
        """Write a checkpoint (rank 0 only); atomic, keeps the last three."""
        if not self.dist.is_main:
            return None
        weights: dict[str, torch.Tensor] = {}
        for name, m in self._modules().items():
            weights.update(ckpt.flatten_state_dict(name, m.state_dict()))
        state: dict[str, torch.Tensor] = {}
        meta: dict[str, Any] = {"train_state": {k: v for k, v in vars(self.state).items()},
                                "config": self.cfg.to_dict(), "skeleton": self.skeleton.to_dict(),
                                "machine": self.runtime.record()}
        for name, opt in self._optimizers().items():
            tensors, m = ckpt.optimizer_to_tensors(name, opt)
            state.update(tensors)
            meta[name] = m
        state.update(ckpt.flatten_state_dict("pool", self.pool.state_dict()))
        return ckpt.save_checkpoint(self.checkpoint_dir, self.state.global_step, weights, state, meta)

    def resume(self, path: str | Path | None = None) -> bool:
        """Continue from ``path`` or this run's latest checkpoint; False if there is none."""
        root = Path(path) if path else self.checkpoint_dir
        if ckpt.latest_checkpoint(root) is None:
            return False
        weights, state, meta = ckpt.load_checkpoint(root)
        dev = self.runtime.device
        for name in self.REQUIRED_MODULES:
            ckpt.load_module_state(getattr(self, name), name, weights, str(root))
        for name in self.OPTIONAL_MODULES:
            if any(k.startswith(f"{name}.") for k in weights):
                ckpt.load_module_state(getattr(self, name), name, weights, str(root))
        known = {f.name for f in fields(TrainState)}
        self.state = TrainState(**{k: v for k, v in meta["train_state"].items() if k in known})
        was = meta.get("machine", {}).get("precision")
        if was is not None and was != self.runtime.precision:
            warnings.warn(f"{root}: the run trained in {was}, it continues in {self.runtime.precision} "
                          f"(train.precision={self.cfg.train.precision} on this machine): it goes on, but not "
                          f"bit-exactly; set train.precision={was} to keep it", stacklevel=2)
        if self.state.eta_pretrained:
            self.eta_frozen = eager_copy(self.model.eta).eval().requires_grad_(False)
            ckpt.load_module_state(self.eta_frozen, "eta_pretrained", weights, str(root))
        if any(k.startswith("model_ema.") for k in weights) and self.cfg.train.ema_decay > 0:
            self.ema = ModelEMA(self.model, self.cfg.train.ema_decay)
            ckpt.load_module_state(self.ema.module, "model_ema", weights, str(root))
        for name, opt in self._optimizers().items():
            ckpt.optimizer_from_tensors(name, opt, state, meta[name])
        self.pool.load_state_dict(ckpt.unflatten_state_dict("pool", state), dev)
        self.model.to(dev)
        barrier(self.dist)
        return True

    def close(self) -> None:
        self.logger.close()
