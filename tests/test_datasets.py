"""The dataset registry: a toy dataset registered in a few lines trains and evaluates;
the built-in datasets name a skeleton, a protocol and a citation; old configs keep working."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import pytest
import torch
import yaml
from test_train import TINY

from keypointgan.cli import main
from keypointgan.config import ConfigError, load_config, save_config
from keypointgan.core.logger import read_scalars
from keypointgan.core.runs import run_config
from keypointgan.data import PriorPoses
from keypointgan.data.base import DataError, LabelledSource, VideoSource
from keypointgan.data.build import build_data
from keypointgan.data.datasets import (DATASETS, Dataset, FolderDataset, Sources, SyntheticDataset, get_dataset,
                                       list_datasets, protocol_name, register, unregister)
from keypointgan.eval.protocols import PROTOCOLS
from keypointgan.pose import get_skeleton
from keypointgan.train.trainer import Trainer


# -- a toy dataset in a few lines -----------------------------------------------------------
class Blobs:
    """Videos of a bright square moving along a line: a VideoSource, and a LabelledSource of
    its frames with the square's centre as every keypoint."""

    def __init__(self, videos: int, frames: int, size: int, k: int) -> None:
        self.videos, self.frames, self.image_size, self.k = videos, frames, size, k

    def __len__(self) -> int:
        return self.videos

    def num_frames(self, video: int) -> int:
        return self.frames

    def centre(self, video: int, index: int) -> torch.Tensor:
        t = index / max(1, self.frames - 1)
        return torch.tensor([-0.5 + t, -0.4 + 0.2 * video])

    def frame(self, video: int, index: int) -> torch.Tensor:
        s = self.image_size
        g = (torch.arange(s) + 0.5) / s * 2 - 1
        cx, cy = self.centre(video, index)
        on = ((g[None, :] - cx).abs() < 0.2) & ((g[:, None] - cy).abs() < 0.2)
        return torch.where(on, 1.0, -0.6).expand(3, s, s).clone()


class BlobFrames:
    """Every frame of ``Blobs`` as a labelled image (a LabelledSource)."""

    def __init__(self, blobs: Blobs) -> None:
        self.blobs, self.image_size = blobs, blobs.image_size

    def __len__(self) -> int:
        return self.blobs.videos * self.blobs.frames

    def item(self, i: int) -> dict:
        v, f = divmod(i, self.blobs.frames)
        kp = self.blobs.centre(v, f).expand(self.blobs.k, 2).clone()
        return {"image": self.blobs.frame(v, f), "keypoints": kp, "visible": torch.ones(self.blobs.k, dtype=torch.bool),
                "category": f"video{v}", "video": f"video{v}", "id": i}


@dataclass
class ToyOptions:
    videos: int = 3
    frames: int = 8


class Toy(Dataset):
    name, skeleton, protocol, citation = "toy", "synth_humanoid", "pck", "tests/test_datasets.py"
    Options = ToyOptions

    def sources(self, cfg, skeleton):
        o = self.options(cfg)
        blobs = Blobs(o.videos, o.frames, cfg.model.image_size, skeleton.num_keypoints)
        g = torch.Generator().manual_seed(0)
        poses = torch.rand(20, skeleton.num_keypoints, 2, generator=g) * 1.4 - 0.7
        prior = PriorPoses(poses, torch.ones(20, skeleton.num_keypoints, dtype=torch.bool), skeleton)
        return Sources(blobs, prior, test=BlobFrames(blobs), test_desc="toy frames")


@pytest.fixture
def toy():
    register(Toy())
    yield DATASETS["toy"]
    unregister("toy")


TOY = TINY + ["data.source=toy", "model.base_width=4", "model.max_width=16", "train.batch_size=2",
              "data.frame_gap=[1,3]", "train.log_every=1", "train.precision=fp32"]


def test_a_toy_dataset_registered_in_a_few_lines_trains_for_two_iterations(toy, tmp_path):
    cfg = load_config("cpu", TOY + [f"out_dir={tmp_path}", "train.eta_pretrain_iterations=1", "train.iterations=2",
                                    "data.options.frames=6"])
    tr = Trainer(cfg, progress=False)
    assert isinstance(tr.data.train, Blobs) and tr.data.train.frames == 6  # data.options reached the dataset
    assert isinstance(tr.data.train, VideoSource) and isinstance(tr.data.test, LabelledSource)
    tr.pretrain_eta()
    tr.train()
    tr.save()
    tr.close()
    assert tr.state.step == 2
    joint = [r for r in read_scalars(tmp_path) if r["stage"] == "joint"]
    assert [r["step"] for r in joint] == [2, 3] and all(math.isfinite(v) for r in joint for v in r["scalars"].values())
    # evaluation scores it by the dataset's protocol, reported by name
    from keypointgan.commands.evaluate import evaluate_run

    res = evaluate_run(tmp_path, progress=False, num_show=2)
    assert res["protocol"]["name"] == "pck" and res["protocol"]["metric"] == "pck@0.1"
    assert res["summary"]["protocol"] == "pck" and "pck@0.1" in res["summary"]
    assert set(res["methods"]) == {"unsupervised", "unsupervised_no_lr_fix", "mean_pose"}  # no labelled training set
    assert res["test"]["source"] == "toy frames" and res["test"]["num_images"] == 3 * 6
    # data.protocol overrides the dataset's, at evaluation too
    again = evaluate_run(tmp_path, out_dir=tmp_path / "ev2", progress=False, overrides=["data.protocol=simplified_h36m"])
    assert again["protocol"]["name"] == "simplified_h36m"
    assert again["methods"]["unsupervised"]["error_percent"] == res["methods"]["unsupervised"]["error_percent"]


def test_toy_options_are_checked(toy, tmp_path):
    with pytest.raises(ConfigError, match="data.options.*unknown key 'colour'"):
        build_data(load_config("cpu", TOY + ["data.options.colour=red"]), get_skeleton("synth_humanoid"))
    with pytest.raises(ConfigError, match="data.source=synthetic takes no options"):
        build_data(load_config("cpu", TINY + ["data.options.frames=3"]), get_skeleton("synth_humanoid"))
    merged = load_config("cpu", TOY + ["data.options.frames=4", "data.options.videos=2"])
    assert merged.data.options == {"frames": 4, "videos": 2}  # options given one by one are merged


def test_registry_names_skeleton_protocol_and_citation():
    assert list_datasets()[:2] == ["synthetic", "folder"]
    assert isinstance(get_dataset("synthetic"), SyntheticDataset) and isinstance(get_dataset("folder"), FolderDataset)
    for ds in DATASETS.values():
        assert ds.protocol in PROTOCOLS, ds.name
        assert ds.citation and ds.description, ds.name
        if ds.skeleton is not None:
            get_skeleton(ds.skeleton)
        assert ds.describe()["name"] == ds.name
    with pytest.raises(DataError, match=r"unknown data.source 'nope' \(synthetic or folder\)"):
        get_dataset("nope")
    with pytest.raises(ValueError, match="already registered"):
        register(SyntheticDataset())

    @register
    class Other(Dataset):
        name = "other_test_dataset"

    try:
        assert DATASETS["other_test_dataset"].__class__ is Other and protocol_name(
            load_config("cpu", ["data.source=other_test_dataset"])) == "simplified_h36m"
        assert protocol_name(load_config("cpu", ["data.source=other_test_dataset", "data.protocol=pck"])) == "pck"
    finally:
        unregister("other_test_dataset")


def test_unknown_source_is_a_one_line_cli_error(tmp_path, capsys):
    assert main(["train", "-q", "--out", str(tmp_path / "r"), *TINY, "data.source=nope"]) == 2
    assert "unknown data.source 'nope' (synthetic or folder)" in capsys.readouterr().err


def test_old_run_configs_without_the_new_keys_still_load(tmp_path):
    cfg = load_config("cpu", ["data.source=folder", "data.root=/videos", "data.prior=/p.json"])
    save_config(cfg, tmp_path / "config.yaml")
    old = yaml.safe_load((tmp_path / "config.yaml").read_text())
    for key in ("options", "protocol"):  # what a run saved before the registry holds
        del old["data"][key]
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(old, sort_keys=False))
    again = load_config(tmp_path / "config.yaml")
    assert again.data.source == "folder" and again.data.root == "/videos" and again.data.prior == "/p.json"
    assert again.data.options == {} and again.data.protocol is None
    assert again.to_dict() == cfg.to_dict()
    stored = run_config({"config": json.loads(json.dumps(old))}, ["data.test_labels=/t.json"])  # an old state.json
    assert stored.data.test_labels == "/t.json" and protocol_name(stored) == "simplified_h36m"
    with pytest.raises(DataError, match="needs data.root"):
        build_data(load_config("cpu", ["data.source=folder"]), get_skeleton("synth_humanoid"))
