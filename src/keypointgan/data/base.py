"""What every data source provides: videos of frames, optional keypoints, a pose prior.

Training only needs :class:`VideoSource` (pairs of frames of one video, drawn by a
:class:`PairSource`); the discriminator and eta pre-training need a :class:`PoseSource`;
evaluation needs a :class:`LabelledSource`. The built-in synthetic data and a user's own folders both
implement these, so samplers, training and evaluation never ask where frames come from.

Conventions: frames are float tensors ``(3, H, W)`` in ``[-1, 1]`` at the model's
resolution; keypoints are ``(K, 2)`` in normalised ``[-1, 1]`` (see ``pose.coords``).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch

from ..errors import KeypointGANError


class DataError(KeypointGANError, ValueError):
    """Bad input data: the message names the file and the problem."""


@runtime_checkable
class VideoSource(Protocol):
    """A set of videos whose frames can be read by (video, frame) index."""

    image_size: int

    def __len__(self) -> int:
        """Number of videos."""

    def num_frames(self, video: int) -> int: ...

    def frame(self, video: int, index: int) -> torch.Tensor:
        """Frame ``index`` of ``video`` as ``(3, H, W)`` float in ``[-1, 1]``."""


@runtime_checkable
class LabelledSource(Protocol):
    """Test images with ground-truth keypoints (and a category for per-category means)."""

    image_size: int

    def __len__(self) -> int:
        """Number of labelled images."""

    def item(self, index: int) -> dict:
        """``{"image": (3,H,W) [-1,1], "keypoints": (K,2) normalised, "visible": (K,) bool,
        "category": str, "video": str, "id": int}``."""


@runtime_checkable
class PairSource(Protocol):
    """Training pairs by step: batch ``step`` is a pure function of the sampler's seed and ``step``."""

    def batch(self, step: int) -> dict[str, torch.Tensor]:
        """``{"x": (B, 3, H, W), "x_app": (B, 3, H, W)}``: pose source / target and appearance."""


@runtime_checkable
class PoseSource(Protocol):
    """Unpaired example poses (the empirical prior)."""

    def poses(self) -> torch.Tensor:
        """All poses as ``(M, K, 2)`` normalised keypoints."""


class SubsetSource:
    """The images ``indices`` of a :class:`LabelledSource` (e.g. an evenly spread sample)."""

    def __init__(self, source: LabelledSource, indices: "list[int]") -> None:
        self.source, self.indices = source, [int(i) for i in indices]
        self.image_size = source.image_size

    @classmethod
    def spread(cls, source: LabelledSource, n: int) -> "SubsetSource":
        """``n`` images evenly spread over ``source`` (all of them when it has fewer)."""
        m = len(source)
        k = min(n, m)
        return cls(source, [int(i * m / k) for i in range(k)])

    def __len__(self) -> int:
        return len(self.indices)

    def item(self, index: int) -> dict:
        return self.source.item(self.indices[index])
