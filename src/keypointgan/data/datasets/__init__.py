"""The dataset registry: ``data.source: NAME`` picks one dataset module.

Each module names its skeleton, its evaluation protocol and its citation, and builds
the train / prior / test sources (:class:`Dataset`). Adding a dataset is one new module
here and one line in :data:`DATASETS` below; its own options go in its ``Options``
dataclass (``data.options.KEY=VALUE``), not in ``DataConfig``.

    from keypointgan.data.datasets import Dataset, Sources, register

    class MyData(Dataset):
        name, skeleton, protocol, citation = "mine", "h36m", "h36m_17", "..."

        def sources(self, cfg, skeleton):
            return Sources(train=..., prior=...)   # VideoSource, PriorPoses, test=LabelledSource

    register(MyData())   # then: keypointgan train data.source=mine
"""

from __future__ import annotations

from typing import Union

from ...config import Config
from ...pose import Skeleton
from ..base import DataError
from ..bundle import DataBundle
from .base import Dataset, EvaluationSources, Sources
from .folder import FolderDataset
from .synthetic import SyntheticDataset

# -- the registry: one line per dataset -----------------------------------------------
DATASETS: dict[str, Dataset] = {
    SyntheticDataset.name: SyntheticDataset(),
    FolderDataset.name: FolderDataset(),
}


def register(dataset: Union[Dataset, type[Dataset]], replace: bool = False) -> Union[Dataset, type[Dataset]]:
    """Add ``dataset`` (an instance, or a class: then usable as a class decorator) under its ``name``."""
    inst = dataset() if isinstance(dataset, type) else dataset
    if not isinstance(inst, Dataset) or not inst.name:
        raise TypeError(f"register: expected a Dataset with a name, got {dataset!r}")
    if inst.name in DATASETS and not replace:
        raise ValueError(f"register: a dataset named '{inst.name}' is already registered")
    DATASETS[inst.name] = inst
    return dataset


def unregister(name: str) -> None:
    DATASETS.pop(name, None)


def list_datasets() -> list[str]:
    return list(DATASETS)


def get_dataset(name: str) -> Dataset:
    """The dataset registered as ``name`` (``data.source``); a DataError names the known ones."""
    if name not in DATASETS:
        names = list(DATASETS)
        known = " or ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names)
        raise DataError(f"unknown data.source '{name}' ({known})")
    return DATASETS[name]


def protocol_name(cfg: Config) -> str:
    """The evaluation protocol of ``cfg``: ``data.protocol``, else the dataset's (names in eval/protocols.py)."""
    return cfg.data.protocol or get_dataset(cfg.data.source).protocol


def build_data(cfg: Config, skeleton: Skeleton, rank: int = 0) -> DataBundle:
    """The training data of ``cfg``: the ``data.source`` dataset's sources with the run's samplers."""
    return get_dataset(cfg.data.source).build(cfg, skeleton, rank)


__all__ = ["DATASETS", "Dataset", "EvaluationSources", "FolderDataset", "Sources", "SyntheticDataset",
           "build_data", "get_dataset", "list_datasets", "protocol_name", "register", "unregister"]
