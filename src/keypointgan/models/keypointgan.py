"""KeypointGAN: the one composition of eq. 3, x_hat = Psi(beta(eta(Phi(x))), x').

Training, evaluation, inference and ablations all go through this module, so the
bottleneck is wired in one place. The discriminator is not part of it: it is a
separate module built by the same factory (``models.build_models``).
"""

from __future__ import annotations

from typing import Iterator, NamedTuple, Optional, Union

import torch
from torch import nn

from ..config import Config, ModelConfig, RenderConfig
from ..pose.render import SkeletonRenderer
from ..pose.skeleton import Skeleton, get_skeleton
from .blocks import check_image_size
from .eta import EtaOutput, SkeletonRegressor
from .init import init_weights
from .phi import ImageEncoder
from .psi import ConditionalDecoder

SkeletonLike = Union[Skeleton, str]


class KeypointGANOutput(NamedTuple):
    """Every intermediate of eq. 3."""

    y: torch.Tensor  # Phi(x): skeleton image before the bottleneck (B,1,S,S); D's "fake"
    heatmaps: torch.Tensor  # eta's heatmaps (B,K,S/2^depth,S/2^depth)
    keypoints: torch.Tensor  # eta(y): (B,K,2), (x, y) in [-1, 1]
    y_star: torch.Tensor  # beta(keypoints): rendered skeleton (B,1,S,S), float32
    x_hat: torch.Tensor  # Psi(y_star, x'): reconstruction of x (B,3,S,S)
    y_warped: Optional[torch.Tensor] = None  # Phi(x_warped) when forward got x_warped (equivariance term)


class Detection(NamedTuple):
    """Inference output: keypoints read from an image (Phi then eta)."""

    keypoints: torch.Tensor  # (B,K,2), (x, y) in [-1, 1]
    heatmaps: torch.Tensor  # (B,K,S/2^depth,S/2^depth)
    y: torch.Tensor  # Phi(x) (B,1,S,S)


def _split_config(cfg: Union[Config, ModelConfig], render: Optional[RenderConfig],
                  skeleton: Optional[SkeletonLike]) -> tuple[ModelConfig, RenderConfig, Skeleton]:
    """(model, render, skeleton) from a full Config or a ModelConfig plus the rest."""
    if isinstance(cfg, Config):
        model, render = cfg.model, render or cfg.render
        skeleton = get_skeleton(cfg.skeleton if skeleton is None else skeleton,
                                cfg.link_set if skeleton is None or isinstance(skeleton, str) else None)
    elif isinstance(cfg, ModelConfig):
        if skeleton is None:
            raise ValueError("KeypointGAN: give a skeleton when building from a ModelConfig")
        model, render, skeleton = cfg, render or RenderConfig(), get_skeleton(skeleton)
    else:
        raise TypeError(f"KeypointGAN: expected a Config or ModelConfig, got {type(cfg).__name__}")
    return model, render, skeleton


class KeypointGAN(nn.Module):
    """Phi, Psi, eta and beta bound to one skeleton and image size.

    ``KeypointGAN(cfg, skeleton=None, render=None, init=True)``: ``cfg`` is a
    :class:`Config` (skeleton and renderer settings taken from it unless given) or a
    :class:`ModelConfig` (then ``skeleton`` is required; ``render`` defaults to
    :class:`RenderConfig`). Weights are initialised by :func:`init_weights`.
    """

    def __init__(self, cfg: Union[Config, ModelConfig], skeleton: Optional[SkeletonLike] = None,
                 render: Optional[RenderConfig] = None, init: bool = True) -> None:
        super().__init__()
        m, r, sk = _split_config(cfg, render, skeleton)
        check_image_size(m.image_size, m.depth, "KeypointGAN")
        self.model_config, self.render_config, self.skeleton = m, r, sk
        self.image_size, self.num_keypoints = m.image_size, sk.num_keypoints
        self.phi = ImageEncoder(m.base_width, m.depth, m.max_width, m.phi_norm)
        self.psi = ConditionalDecoder(m.base_width, m.depth, m.max_width, m.psi_norm,
                                      pose_channels=1 + len(r.psi_sigmas), pose_skips=m.psi_pose_skips)
        self.eta = SkeletonRegressor(sk.num_keypoints, m.eta_width or m.base_width, m.depth, m.max_width,
                                     m.eta_norm, m.softargmax, m.softargmax_temperature)
        self.renderer = SkeletonRenderer(sk, m.image_size, r.sigma, r.form, r.signed, extra_sigmas=r.psi_sigmas)
        if init:
            init_weights(self, m.init_std)

    @property
    def beta(self) -> SkeletonRenderer:
        """The renderer beta (alias of ``renderer``)."""
        return self.renderer

    # -- the pieces of eq. 3 -------------------------------------------------------
    def render(self, keypoints: torch.Tensor, visible: Optional[torch.Tensor] = None) -> torch.Tensor:
        """beta: keypoints (B,K,2) -> skeleton image (B,1,S,S), float32; clear error on a wrong K.

        ``visible`` (B,K) leaves out links with a missing end (priors mapped from another skeleton).
        """
        return self.renderer(keypoints, visible)

    def psi_pose(self, keypoints: torch.Tensor) -> torch.Tensor:
        """What Psi reads of a pose: beta(keypoints) (B,1,S,S), or with ``render.psi_sigmas``
        (B,1+n,S,S), channel 0 being beta's image and then the wider drawings."""
        if not self.renderer.extra_sigmas:
            return self.render(keypoints)
        return self.renderer.all_widths(keypoints)

    def reconstruct(self, pose: torch.Tensor, x_app: torch.Tensor) -> torch.Tensor:
        """Psi: pose image (:meth:`psi_pose`) and appearance image -> image (B,3,S,S)."""
        want = 1 + len(self.renderer.extra_sigmas)
        if pose.dim() != 4 or pose.shape[1] != want:
            raise ValueError(f"KeypointGAN.reconstruct: Psi reads {want} pose channel(s) (1 + len(render.psi_sigmas)), "
                             f"got {tuple(pose.shape)}; build the input with psi_pose(keypoints)")
        pose = pose.to(x_app.dtype)  # beta renders in float32; follow a float64/half model's inputs
        return self.psi(pose, x_app)

    def detect(self, x: torch.Tensor) -> Detection:
        """Inference: keypoints and heatmaps of images x (B,3,S',S'), S' any multiple of 2**depth."""
        y = self.phi(x)
        kp, hm = self.eta(y)
        return Detection(kp, hm, y)

    def forward(self, x: torch.Tensor, x_app: torch.Tensor,
                x_warped: Optional[torch.Tensor] = None) -> KeypointGANOutput:
        """Eq. 3: reconstruct x from its pose (through the keypoint bottleneck) and the appearance of x'.

        ``x_warped`` (n,3,S,S), n <= B, optional: warped copies of x[:n] that Phi also reads, in
        the same pass (one forward, as DDP wants), for the equivariance term; returned as
        ``y_warped`` (n,K,S,S)."""
        s = self.image_size
        for name, t in (("x", x), ("x_app", x_app)):
            if t.dim() != 4 or tuple(t.shape[-2:]) != (s, s):
                raise ValueError(f"KeypointGAN: {name} must be (B, 3, {s}, {s}) (model.image_size), "
                                 f"got {tuple(t.shape)}")
        y_warped = None
        if x_warped is None:
            y = self.phi(x)
        else:
            if x_warped.shape[1:] != x.shape[1:] or not 0 < x_warped.shape[0] <= x.shape[0]:
                raise ValueError(f"KeypointGAN: x_warped {tuple(x_warped.shape)} must be (n, *x.shape[1:]) "
                                 f"with 0 < n <= B, x is {tuple(x.shape)}")
            y, y_warped = self.phi(torch.cat([x, x_warped])).split([x.shape[0], x_warped.shape[0]])
        eta_out: EtaOutput = self.eta(y)
        pose = self.psi_pose(eta_out.keypoints)
        return KeypointGANOutput(y, eta_out.heatmaps, eta_out.keypoints, pose[:, :1], self.reconstruct(pose, x_app),
                                 y_warped)

    # -- helpers for the three optimisers of the training loop ----------------------
    def generator_parameters(self) -> Iterator[nn.Parameter]:
        """Parameters of Phi and Psi (the auto-encoder's optimiser)."""
        yield from self.phi.parameters()
        yield from self.psi.parameters()

    def set_eta_trainable(self, trainable: bool) -> None:
        """Freeze/unfreeze eta's weights; gradients still flow *through* eta to Phi when frozen."""
        self.eta.requires_grad_(trainable)
