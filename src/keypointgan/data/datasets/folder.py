"""``data.source: folder``: a user's own videos, prior poses and test labels (docs/data-format.md).

Keys: ``data.root`` (videos: frame folders or video files), ``data.prior`` (COCO JSON or
``.npy``; ``data.prior_image_size``, ``data.prior_skeleton``, ``data.prior_crop``,
``data.num_prior``, ``data.prior_seed``), ``data.test_labels`` / ``data.test_root``
(``data.test_crop``, ``data.bbox_margin``), ``data.max_frames``, ``data.cache_dir``,
``data.background_root`` (backgrounds for ``data.background_swap``).
"""

from __future__ import annotations

from ...config import Config
from ...pose import Skeleton, get_skeleton
from ..base import DataError
from .base import Dataset, EvaluationSources, Sources


def _prior_skeleton(cfg: Config):
    return get_skeleton(cfg.data.prior_skeleton) if cfg.data.prior_skeleton else None


class FolderDataset(Dataset):
    name = "folder"
    description = "your own videos (frame folders or video files), prior poses and labelled test images"
    skeleton = None  # yours: the config's `skeleton` (a built-in name or a YAML file)
    protocol = "simplified_h36m"
    citation = "your data (formats: docs/data-format.md)"

    def sources(self, cfg: Config, skeleton: Skeleton) -> Sources:
        from ..folder import FolderVideos
        from ..labelled import LabelledFolder
        from ..prior import load_prior

        d = cfg.data
        if not d.root:
            raise DataError("data.source=folder needs data.root (a folder of videos)")
        if not d.prior:
            raise DataError("data.source=folder needs data.prior (COCO JSON or .npy of example poses)")
        train = FolderVideos(d.root, cfg.model.image_size, cache_dir=d.cache_dir, max_frames=d.max_frames,
                             background_root=d.background_root)
        prior = load_prior(d.prior, skeleton, image_size=d.prior_image_size, prior_skeleton=_prior_skeleton(cfg),
                           num=d.num_prior, seed=d.prior_seed, crop=d.prior_crop)
        test = None
        if d.test_labels:
            test = LabelledFolder(d.test_root or d.root, d.test_labels, cfg.model.image_size, skeleton,
                                  crop=d.test_crop, margin=d.bbox_margin)
        return Sources(train, prior, test, None, test_desc=str(d.test_labels), prior_desc=str(d.prior))

    def evaluation_sources(self, cfg: Config, skeleton: Skeleton, test: bool = True,
                           train_labelled: bool = True) -> EvaluationSources:
        """The config's test labels and prior, without reading the training videos; an unreadable
        prior only drops the mean-pose row (the reason is its description)."""
        from ..labelled import labelled_folder
        from ..prior import load_prior

        d = cfg.data
        out = EvaluationSources()
        if test and d.test_labels:
            out.test = labelled_folder(d.test_root or d.root, d.test_labels, cfg, skeleton, "test")
            out.test_desc = str(d.test_labels)
        if not d.prior:
            out.prior_desc = "the run's config names no prior (data.prior)"
            return out
        try:
            prior = load_prior(d.prior, skeleton, image_size=d.prior_image_size, num=d.num_prior, seed=d.prior_seed,
                               crop=d.prior_crop, prior_skeleton=_prior_skeleton(cfg))
        except (DataError, OSError) as e:
            out.prior_desc = f"prior {d.prior} not readable: {e}"
            return out
        out.prior, out.prior_desc = prior.keypoints, str(d.prior)
        return out
