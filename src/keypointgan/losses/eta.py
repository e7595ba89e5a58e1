"""Losses that train the skeleton-to-keypoints regressor eta (appendix F.2).

* ``eta_prior_loss``: eq. 7, ``||eta(beta(p)) - p||^2`` on unpaired prior poses p
  (pre-training, and the 0.9-weighted term of fine-tuning in the release).
* ``eta_cycle_loss``: ``||beta(eta(y)) - y||^2`` with y = Phi(x) a predicted skeleton
  image (the lambda' = 0.1 term of fine-tuning). The caller renders beta(eta(y)); y is
  detached so this term trains eta only, never Phi.

Both are means (MSE), as in the release, reduced in float32.
"""

from __future__ import annotations

from typing import Optional

import torch.nn.functional as F
from torch import Tensor


def eta_prior_loss(pred_kp: Tensor, prior_kp: Tensor,
                   visible: Optional[Tensor] = None) -> Tensor:
    """MSE between eta's keypoints and the prior keypoints, both (B, K, 2) in [-1, 1].

    ``visible`` (B, K), optional: 0/1 (or soft) weights for prior keypoints that are
    missing in the data; the mean is then over visible coordinates only.
    """
    if pred_kp.shape != prior_kp.shape or pred_kp.dim() != 3 or pred_kp.shape[-1] != 2:
        raise ValueError(f"expected two (B, K, 2) keypoint tensors, got "
                         f"{tuple(pred_kp.shape)} and {tuple(prior_kp.shape)}")
    sq = (pred_kp.float() - prior_kp.float()).square()
    if visible is None:
        return sq.mean()
    if visible.shape != pred_kp.shape[:2]:
        raise ValueError(f"visible must be (B, K) = {tuple(pred_kp.shape[:2])}, "
                         f"got {tuple(visible.shape)}")
    w = visible.float().unsqueeze(-1).expand_as(sq)
    return (sq * w).sum() / w.sum().clamp_min(1.0)


def eta_cycle_loss(rendered: Tensor, skeleton_image: Tensor) -> Tensor:
    """MSE(beta(eta(y)), y.detach()) for skeleton images of the same shape."""
    if rendered.shape != skeleton_image.shape:
        raise ValueError(f"rendered {tuple(rendered.shape)} and skeleton image "
                         f"{tuple(skeleton_image.shape)} differ in shape")
    return F.mse_loss(rendered.float(), skeleton_image.detach().float())
