"""Losses of KeypointGAN: LSGAN (eq. 5), reconstruction (eq. 4 and fallbacks), eta (F.2).

See docs/losses.md for the paper-vs-release differences and the accepted VGG-19
weight files.
"""

from .adversarial import lsgan_discriminator_loss, lsgan_generator_loss
from .eta import eta_cycle_loss, eta_prior_loss
from .perceptual import (
    FEATURE_NAMES,
    PerceptualLoss,
    VGG19Features,
    WeightsError,
    load_vgg19_state_dict,
)
from .reconstruction import (
    FALLBACK_CHOICES,
    RECONSTRUCTION_CHOICES,
    L1SSIMLoss,
    LaplacianPyramidLoss,
    build_reconstruction_loss,
    laplacian_pyramid,
    motion_weights,
    resolve_reconstruction,
)

__all__ = [
    "FALLBACK_CHOICES",
    "FEATURE_NAMES",
    "L1SSIMLoss",
    "LaplacianPyramidLoss",
    "PerceptualLoss",
    "RECONSTRUCTION_CHOICES",
    "VGG19Features",
    "WeightsError",
    "build_reconstruction_loss",
    "eta_cycle_loss",
    "eta_prior_loss",
    "laplacian_pyramid",
    "load_vgg19_state_dict",
    "lsgan_discriminator_loss",
    "lsgan_generator_loss",
    "motion_weights",
    "resolve_reconstruction",
]
