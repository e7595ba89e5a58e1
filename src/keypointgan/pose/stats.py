"""Label-free statistics of a set of poses: is a detector drawing the same pose on every frame?

A KeypointGAN run can satisfy its discriminator with one plausible skeleton drawn on
every image (mode collapse to the mean pose). The spread of its predictions over a
batch, next to the spread of the prior's poses, shows that at once, without a label.
"""

from __future__ import annotations

import torch
from torch import Tensor


def pose_spread(keypoints: Tensor, centered: bool = True) -> Tensor:
    """Mean over keypoints and axes of the std over the batch: ``(B, K, 2) -> ()``.

    With ``centered`` each pose's centroid is removed first, so the number measures the
    variety of pose *shapes*, not of where the figure stands. In the keypoints' units
    (normalised [-1, 1]: half the image side per unit). 0 for B < 2.
    """
    kp = keypoints.detach().float()
    if kp.dim() != 3 or kp.shape[-1] != 2:
        raise ValueError(f"pose_spread: expected (B, K, 2) keypoints, got {tuple(kp.shape)}")
    if kp.shape[0] < 2:
        return kp.new_zeros(())
    if centered:
        kp = kp - kp.mean(dim=1, keepdim=True)
    return kp.std(dim=0).mean()

