"""From a :class:`Config` to the data a run needs: ``build_data(cfg, skeleton, rank)``.

``data.source`` names a dataset of the registry (:mod:`keypointgan.data.datasets`:
``synthetic``, the built-in videos; ``folder``, a user's videos, prior and labels,
formats in docs/data-format.md). Either way training sees one :class:`DataBundle`.
"""

from .bundle import DataBundle, make_samplers, prior_subset
from .datasets import build_data, get_dataset

__all__ = ["DataBundle", "build_data", "get_dataset", "make_samplers", "prior_subset"]
