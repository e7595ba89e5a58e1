"""keypointgan: self-supervised interpretable keypoints from unlabelled videos.

Implements KeypointGAN (Jakab, Gupta, Bilen, Vedaldi, CVPR 2020). The package has three
layers (docs/architecture.md): ``core`` with ``config`` and ``errors`` at the bottom
(runtime, checkpoints, run folders, logs); the library, ``pose`` (skeletons, the renderer
beta, soft-argmax), ``models`` (Phi, Psi, eta, D), ``losses``, ``viz``, ``data`` (with the
dataset registry), ``eval``, ``train``, ``infer``, ``examples``; and ``commands`` on top.
"""

__version__ = "0.1.0"
