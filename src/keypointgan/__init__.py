"""keypointgan: self-supervised interpretable keypoints from unlabelled videos.

Implements KeypointGAN (Jakab, Gupta, Bilen, Vedaldi, CVPR 2020). The package is laid
out by role: ``pose`` (skeletons, the renderer beta, soft-argmax), ``models`` (Phi,
Psi, eta, D), ``losses``, ``data``, ``train``, ``eval``, ``infer`` and ``cli``.
"""

__version__ = "0.1.0"
