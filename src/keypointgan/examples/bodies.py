"""Example ``bodies``: people moving, from the demo videos of Pose2Sim and Sports2D.

Videos (inside the wheels of pose2sim 0.10.49 and sports2d 0.8.34):

- ``Pose2Sim/Demo_SinglePerson/videos/cam01..04.mp4``: one person, four synchronised
  cameras, 100 frames each (60 fps, 1080x1920 portrait);
- ``Pose2Sim/Demo_MultiPerson/videos/cam01..04.mp4``: two people, four cameras, 100
  frames each;
- ``Sports2D/Demo/demo.mp4``: one person outdoors, 230 frames (30 fps, 1768x994).

Reference joints: MediaPipe Pose (legacy ``mediapipe.solutions.pose``, mediapipe
0.10.21, ``model_complexity=1``, tracking mode), its 33 landmarks mapped to the 13
joints of the built-in ``body13`` skeleton. These are another model's output, not
human annotation.

Split by video (the choice, documented in docs/examples.md):

- train: SinglePerson cam01-03 and the Sports2D demo (frames only, no labels). The
  Sports2D demo has two people (one jumping on a roof, one walking by): MediaPipe
  finds one person per image, so it runs twice, the second time with the first
  person blacked out, and each tracked segment (a new one starts where the box jumps,
  i.e. the tracker switched person) becomes its own training video;
- prior: MultiPerson cam01-04, both people found the same way; the multi-person
  videos are used only as a prior (poses need no identity over time);
- test: SinglePerson cam04, a held-out camera. It films the same performance as the
  training cameras from another viewpoint; the training frames carry no labels.

Frames where MediaPipe finds no one get no label, and no crop when no box can be
interpolated from neighbouring frames (gaps up to 8 frames are).

For ``data.background_swap`` (beyond the paper) the training crops of Pose2Sim's fixed
cameras also get their backgrounds (``train_backgrounds/<video>/``): the per-pixel
median of the camera's full frames, cropped like each frame. The Sports2D demo gets none.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Callable, Optional

import numpy as np
from PIL import Image

from ..pose.skeleton import get_skeleton
from .common import BoxRule, BuildSpec, Labeler, LabelerUnavailable, VideoJob, build, decode_frames, \
    describe_labeler, video_info
from .sources import WheelFile, locate

POSE2SIM_VERSION, SPORTS2D_VERSION = "0.10.49", "0.8.34"
SINGLE = [WheelFile("pose2sim", POSE2SIM_VERSION, f"Pose2Sim/Demo_SinglePerson/videos/cam0{i}.mp4")
          for i in range(1, 5)]
MULTI = [WheelFile("pose2sim", POSE2SIM_VERSION, f"Pose2Sim/Demo_MultiPerson/videos/cam0{i}.mp4")
         for i in range(1, 5)]
SPORTS = WheelFile("sports2d", SPORTS2D_VERSION, "Sports2D/Demo/demo.mp4")

# MediaPipe Pose's 33 landmarks -> body13 (by name; MediaPipe's left is the person's left).
MEDIAPIPE_INDEX = {"nose": 0, "l_shoulder": 11, "r_shoulder": 12, "l_elbow": 13, "r_elbow": 14,
                   "l_wrist": 15, "r_wrist": 16, "l_hip": 23, "r_hip": 24, "l_knee": 25, "r_knee": 26,
                   "l_ankle": 27, "r_ankle": 28}
# The 13 joints end at the nose and the ankles: room for the head and the feet, a little more above.
RULE = BoxRule(margin=0.4, shift=(0.0, -0.05), min_score=0.3, sigma=2.0, max_gap=8, max_jump=0.4)
LABEL_SIZE = 384
MIN_SCORE = 0.5  # MediaPipe visibility below this: the joint is written as not labelled (v = 0)
MAX_DISAGREEMENT = 3.0  # % of the crop: a frame whose two opinions differ more gets no label (e.g. two
#                         overlapping people, joints mixed between them); clean test frames stay below 1.2
MAX_SIDE = 1280  # frames are downscaled to this longer side when decoded (memory; crops are 128 px)

INSTALL_HINT = ('pip install -e ".[examples]" && pip install --no-deps mediapipe==0.10.21 '
                "(see docs/examples.md: mediapipe's own requirements would downgrade numpy and protobuf)")


def _protobuf_compat() -> None:
    """mediapipe 0.10.21 calls ``MessageFactory.GetPrototype``, gone from protobuf >= 5: alias it."""
    from google.protobuf import message_factory

    if not hasattr(message_factory.MessageFactory, "GetPrototype"):
        message_factory.MessageFactory.GetPrototype = lambda self, d: message_factory.GetMessageClass(d)


class MediaPipePoseLabeler:
    """MediaPipe Pose (legacy solution): image -> (13, 3) ``[x, y, visibility]`` pixels or None.

    In tracking mode (``static_image_mode=False``) it follows one person from frame to
    frame; :meth:`reset` starts afresh (called before every sequence).
    """

    def __init__(self, model_complexity: int = 1, static_image_mode: bool = False,
                 min_detection_confidence: float = 0.5, min_tracking_confidence: float = 0.5) -> None:
        if importlib.util.find_spec("mediapipe") is None:
            raise LabelerUnavailable(f"the 'bodies' example labels frames with MediaPipe Pose (mediapipe==0.10.21), "
                                     f"which is not installed: {INSTALL_HINT}")
        try:
            import google.protobuf
        except ImportError as e:
            raise LabelerUnavailable(f"the 'bodies' example labels frames with MediaPipe Pose: {e}; "
                                     f"{INSTALL_HINT}") from None
        if int(google.protobuf.__version__.split(".")[0]) >= 7:
            raise LabelerUnavailable(f"mediapipe 0.10.21 does not work with protobuf {google.protobuf.__version__} "
                                     f"(FieldDescriptor.label is gone): pip install 'protobuf>=6.31.1,<7'")
        _protobuf_compat()  # before mediapipe registers its messages
        try:
            import mediapipe as mp
            mp.solutions.pose  # noqa: B018  (the legacy API; gone from newer mediapipe releases)
        except ImportError as e:
            raise LabelerUnavailable(f"the 'bodies' example labels frames with MediaPipe Pose, which cannot be "
                                     f"imported ({e}): {INSTALL_HINT}") from None
        except AttributeError as e:
            raise LabelerUnavailable(f"mediapipe cannot be used ({e}); the example needs mediapipe==0.10.21 "
                                     f"(legacy solutions.pose) with protobuf >= 4.25, < 7: {INSTALL_HINT}") from None
        self._mp = mp
        self._kw = dict(static_image_mode=static_image_mode, model_complexity=model_complexity,
                        min_detection_confidence=min_detection_confidence,
                        min_tracking_confidence=min_tracking_confidence)
        self._pose = None
        self._index = list(MEDIAPIPE_INDEX.values())
        self.description = (f"MediaPipe Pose {mp.__version__} (legacy solutions.pose, model_complexity="
                            f"{model_complexity}, static_image_mode={static_image_mode}), 33 landmarks -> body13")

    def reset(self) -> None:
        if self._pose is not None:
            self._pose.close()
        self._pose = self._mp.solutions.pose.Pose(**self._kw)

    def __call__(self, image: np.ndarray) -> Optional[np.ndarray]:
        if self._pose is None:
            self.reset()
        res = self._pose.process(np.ascontiguousarray(image))
        if res.pose_landmarks is None:
            return None
        h, w = image.shape[:2]
        lm = res.pose_landmarks.landmark
        # MediaPipe: x, y in [0, 1] of the width/height from the image's outer edge; COCO: pixel centres
        return np.array([[lm[i].x * w - 0.5, lm[i].y * h - 0.5, lm[i].visibility] for i in self._index])

    def close(self) -> None:
        if self._pose is not None:
            self._pose.close()
            self._pose = None


# Pose2Sim films at 60 fps: the release's 5-30 frame gap (0.1-0.5 s) leaves x' nearly x, so Psi
# rebuilds x without the pose. 20-99 frames (clamped to each video) asks the keypoints for the
# change: 3 seeds, 300 joint iterations, 0.67x the mean pose against 0.85x (docs/examples.md).
TRAIN_ARGS = ("data.frame_gap=[20,99]",)


def _downscale(image: np.ndarray, max_side: int) -> np.ndarray:
    h, w = image.shape[:2]
    s = max_side / max(h, w)
    if s >= 1:
        return image
    return np.asarray(Image.fromarray(image).resize((round(w * s), round(h * s)), Image.BILINEAR, reducing_gap=2.0))


def prepare(out_dir: str | Path, *, image_size: int = 128, cache_dir: str | Path | None = None,
            labeler: Optional[Labeler] = None, overwrite: bool = False, max_side: int = MAX_SIDE,
            progress: Optional[Callable[[str], None]] = None, download: bool = True) -> dict:
    """Write the ``bodies`` example to ``out_dir``; returns its summary (example.json)."""
    skeleton = get_skeleton("body13")
    if [skeleton.keypoint_names.index(n) for n in MEDIAPIPE_INDEX] != list(range(len(MEDIAPIPE_INDEX))):
        raise AssertionError("MEDIAPIPE_INDEX must follow body13's order")
    lab = labeler if labeler is not None else MediaPipePoseLabeler()
    files = locate([*SINGLE, *MULTI, SPORTS], cache_dir, download=download)
    by_member = {f.file.member: f for f in files}

    def loader(member: str) -> Callable[[], list]:
        path = by_member[member].path
        return lambda: decode_frames(path, lambda i, im: _downscale(im, max_side))

    jobs = []
    for i, f in enumerate(SINGLE[:3], 1):
        jobs.append(VideoJob(f"single_cam0{i}", f.member, "train", loader(f.member), category="single",
                             fixed_camera=True))  # Pose2Sim's calibrated cameras stand still
    jobs.append(VideoJob("sports2d_a", SPORTS.member, "train", loader(SPORTS.member), category="sports2d"))
    jobs.append(VideoJob("sports2d_b", SPORTS.member, "train", loader(SPORTS.member), category="sports2d",
                         hide_from="sports2d_a"))
    for i, f in enumerate(MULTI, 1):
        first = f"multi_cam0{i}_a"
        jobs.append(VideoJob(first, f.member, "prior", loader(f.member), category="multi"))
        jobs.append(VideoJob(f"multi_cam0{i}_b", f.member, "prior", loader(f.member), category="multi",
                             hide_from=first))
    jobs.append(VideoJob("single_cam04", SINGLE[3].member, "test", loader(SINGLE[3].member), category="single"))
    noise_lab, note = None, ""
    if labeler is None:
        noise_lab = MediaPipePoseLabeler(static_image_mode=True)
        note = "the second opinion runs MediaPipe on every frame independently (static_image_mode=True)"
    spec = BuildSpec("bodies", skeleton, "body13", RULE, LABEL_SIZE, min_score=MIN_SCORE, noise_note=note,
                     max_disagreement=MAX_DISAGREEMENT, train_args=TRAIN_ARGS)
    split = {
        "rule": "by video: train and test are different cameras, the prior comes from other videos",
        "train": "Pose2Sim Demo_SinglePerson cam01-03 + Sports2D demo, both of its people, one folder per "
                 "tracked segment (no labels)",
        "prior": "Pose2Sim Demo_MultiPerson cam01-04, both people (the second found with the first blacked out)",
        "test": "Pose2Sim Demo_SinglePerson cam04 (held-out camera; same performance as the training cameras)",
    }
    videos = []
    for f in files:
        videos.append(dict(f.provenance(), **video_info(f.path)))
    prov = {"videos": videos, "labeler": describe_labeler(lab), "decode_max_side": max_side,
            "note": "reference keypoints are MediaPipe Pose's output (a model), not human annotation"}
    try:
        return build(out_dir, spec, jobs, lab, image_size=image_size, provenance=prov, split=split,
                     overwrite=overwrite, progress=progress, noise_labeler=noise_lab)
    finally:
        for owned in ([lab, noise_lab] if labeler is None else []):
            if owned is not None:
                owned.close()
