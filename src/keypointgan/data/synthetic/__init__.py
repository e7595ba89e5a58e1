"""Built-in synthetic videos: a procedurally animated, textured 2D humanoid.

The project's default data and test bed (no download). Each video shows one figure
doing one activity (its ``category``) with its own body proportions, clothes and
background; videos are split by video into train (frames), prior (poses) and test
(frames + keypoints). See docs/synthetic-data.md.

    from keypointgan.data.synthetic import synthetic_sources
    src = synthetic_sources(cfg.data, image_size=cfg.model.image_size)
    src.train.frame(0, 5); src.prior.poses(); src.test.item(0)
"""

from .dataset import (GENERATOR_VERSION, SPLITS, FrameStore, SynthParams, SyntheticLabelled, SyntheticPoses,
                      SyntheticSources, SyntheticVideos, SyntheticWorld, VideoInfo, assign_splits,
                      synthetic_sources)
from .motion import ACTIVITIES
from .scene import PART_NAMES
from .writer import preview_grid, save_preview, write_synthetic_dataset

__all__ = [
    "ACTIVITIES", "GENERATOR_VERSION", "PART_NAMES", "SPLITS", "FrameStore", "SynthParams",
    "SyntheticLabelled", "SyntheticPoses", "SyntheticSources", "SyntheticVideos", "SyntheticWorld",
    "VideoInfo", "assign_splits", "preview_grid", "save_preview", "synthetic_sources",
    "write_synthetic_dataset",
]
