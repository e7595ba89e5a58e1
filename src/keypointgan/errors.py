"""The errors a user can cause, all under one base class.

Every error that a bad input, option, file or checkpoint can cause is a
:class:`KeypointGANError`; its message says what is wrong and where. The command line
prints these as one line (``keypointgan CMD: error: ...``, exit status 2); any other
exception is a bug and shows its traceback.

The family (each also keeps its standard base, so ``except ValueError`` still works):

- :class:`keypointgan.config.ConfigError` (``ValueError``): a config file, override or option value;
- :class:`keypointgan.data.base.DataError` (``ValueError``): input data (videos, labels, prior);
  :class:`keypointgan.examples.common.LabelerUnavailable` is one;
- :class:`keypointgan.pose.skeleton.SkeletonError` (``ValueError``): a skeleton file or name;
- :class:`keypointgan.losses.perceptual.WeightsError` (``ValueError``): a VGG weights file;
- :class:`keypointgan.core.checkpoint.CheckpointError` (``RuntimeError``): a checkpoint;
- :class:`keypointgan.core.runtime.DeviceError` (``RuntimeError``): a device that is not there;
- :class:`keypointgan.train.trainer.TrainingDiverged` (``RuntimeError``): a loss became NaN/inf;
- :class:`UsageError` (``ValueError``): an argument of a command or API call.

This module is the bottom of the package: it imports nothing from it.
"""

from __future__ import annotations


class KeypointGANError(Exception):
    """Base of every error a user can cause; the message is meant for the user."""


class UsageError(KeypointGANError, ValueError):
    """A bad argument of a command or an API call (e.g. an unknown keypoint in ``--move``)."""
