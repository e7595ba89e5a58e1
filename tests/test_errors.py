"""One base class for the errors a user can cause; the CLI prints those in one line, bugs with a traceback."""

from __future__ import annotations

import pytest

import keypointgan.commands.cli as cli
from keypointgan.config import ConfigError
from keypointgan.core.checkpoint import CheckpointError
from keypointgan.core.runtime import DeviceError, resolve_device, resolve_precision
from keypointgan.data.base import DataError
from keypointgan.errors import KeypointGANError, UsageError
from keypointgan.examples.common import LabelerUnavailable
from keypointgan.losses.perceptual import WeightsError
from keypointgan.pose.skeleton import SkeletonError
from keypointgan.train.trainer import TrainingDiverged


@pytest.mark.parametrize("cls, std", [(ConfigError, ValueError), (DataError, ValueError), (SkeletonError, ValueError),
                                      (WeightsError, ValueError), (UsageError, ValueError),
                                      (LabelerUnavailable, ValueError), (CheckpointError, RuntimeError),
                                      (DeviceError, RuntimeError), (TrainingDiverged, RuntimeError)])
def test_every_user_error_is_a_keypointgan_error_and_keeps_its_standard_base(cls, std):
    assert issubclass(cls, KeypointGANError) and issubclass(cls, std)


def test_config_values_checked_deep_down_are_config_errors():
    with pytest.raises(ConfigError, match="precision must be auto, bf16 or fp32"):
        resolve_precision("fp16", resolve_device("cpu"))
    from keypointgan.config import load_config
    from keypointgan.models import build_models

    with pytest.raises(ConfigError, match="unknown norm 'group'"):  # a network's ValueError, raised for the config
        build_models(load_config("cpu", ["model.phi_norm=group"]))


def test_the_cli_prints_user_errors_in_one_line_and_lets_bugs_show_their_traceback(monkeypatch, capsys):
    def user_error(a):
        raise DataError("frames.json: no annotations")

    monkeypatch.setattr(cli, "_cmd_skeletons", user_error)
    assert cli.main(["skeletons"]) == 2
    assert capsys.readouterr().err == "keypointgan skeletons: error: frames.json: no annotations\n"

    def bug(a):
        raise ValueError("an internal shape mismatch")

    monkeypatch.setattr(cli, "_cmd_skeletons", bug)
    with pytest.raises(ValueError, match="internal shape mismatch"):  # not swallowed: the traceback shows
        cli.main(["skeletons"])
