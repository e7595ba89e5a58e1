"""The networks of KeypointGAN (appendix F.4): Phi, Psi, eta, the skeleton discriminator.

``build_models(cfg, skeleton)`` is the factory used by training, evaluation and
inference: it returns the :class:`KeypointGAN` (Phi, Psi, eta and the renderer beta,
composed as eq. 3) and the separate :class:`MultiScaleDiscriminator`.
"""

from __future__ import annotations

from typing import Optional

from ..config import Config, ConfigError, ModelConfig
from ..errors import KeypointGANError
from .discriminator import MultiScaleDiscriminator, PatchGAN, patchgan_output_size
from .eta import EtaOutput, SkeletonRegressor
from .init import init_weights
from .keypointgan import Detection, KeypointGAN, KeypointGANOutput, SkeletonLike
from .phi import ImageEncoder
from .psi import ConditionalDecoder


def build_discriminator(model: ModelConfig, init: bool = True) -> MultiScaleDiscriminator:
    """The multi-scale skeleton discriminator D_Y of ``model`` (checks every scale fits)."""
    d = MultiScaleDiscriminator(model.image_size, model.disc_scales, 1, model.disc_width, model.disc_layers,
                                "instance", model.disc_first_norm, model.disc_resize, model.disc_minibatch_std)
    return init_weights(d, model.init_std) if init else d


def build_models(cfg: Config, skeleton: Optional[SkeletonLike] = None,
                 init: bool = True) -> tuple[KeypointGAN, MultiScaleDiscriminator]:
    """(KeypointGAN, MultiScaleDiscriminator) for ``cfg``; skeleton defaults to ``cfg.skeleton``/``link_set``.

    The networks check their arguments with ``ValueError``s; built from a config, those
    are the config's errors (``model.*``, ``render.*``), raised as :class:`ConfigError`.
    """
    try:
        return KeypointGAN(cfg, skeleton, init=init), build_discriminator(cfg.model, init)
    except ValueError as e:
        if isinstance(e, KeypointGANError):  # SkeletonError, ConfigError: already a user's error
            raise
        raise ConfigError(str(e)) from e


__all__ = [
    "ConditionalDecoder", "Detection", "EtaOutput", "ImageEncoder", "KeypointGAN", "KeypointGANOutput",
    "MultiScaleDiscriminator", "PatchGAN", "SkeletonRegressor", "build_discriminator", "build_models",
    "init_weights", "patchgan_output_size",
]
