"""lightning_args: experiment management for PyTorch Lightning, as Hydra plugins.

Importing the package is cheap (no torch): configs register with Hydra and heavy parts load on
first use, so ``train.py --help`` and ``--cfg job`` stay instant.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lightning_args.app import Objective, check_complete, main, train
from lightning_args.config import Config, DataConfig, ModelConfig
from lightning_args.errors import (
    CheckpointError,
    ConfigKeyError,
    ConfigTypeError,
    ConfigValueError,
    DiskFullError,
    LightningArgsError,
    MissingValueError,
    RecordError,
    RunBusyError,
    RunExistsError,
    SearchSpaceError,
    StorageError,
    SweepError,
    TargetError,
    UnknownOptionError,
    UntrustedPathError,
    UntrustedTargetError,
)
from lightning_args.lazy import lazy_exports
from lightning_args.record import RunRecord
from lightning_args.reproduce import Reproduction, reproduce
from lightning_args.resume import resume
from lightning_args.store import register
from lightning_args.trust import allow_targets

if TYPE_CHECKING:
    from lightning_args.builder import Built, build
    from lightning_args.checkpoint import config_from_checkpoint, load_from_checkpoint
    from lightning_args.data import TensorBatches
    from lightning_args.module import ConfiguredModule
    from lightning_args.runs import LoadedRun, load_run

__version__ = "0.1.0"

__all__ = [
    "Built",
    "CheckpointError",
    "Config",
    "ConfigKeyError",
    "ConfigTypeError",
    "ConfigValueError",
    "ConfiguredModule",
    "DataConfig",
    "DiskFullError",
    "LightningArgsError",
    "LoadedRun",
    "MissingValueError",
    "ModelConfig",
    "Objective",
    "RecordError",
    "Reproduction",
    "RunBusyError",
    "RunExistsError",
    "RunRecord",
    "SearchSpaceError",
    "StorageError",
    "SweepError",
    "TargetError",
    "TensorBatches",
    "UnknownOptionError",
    "UntrustedPathError",
    "UntrustedTargetError",
    "allow_targets",
    "build",
    "check_complete",
    "config_from_checkpoint",
    "load_from_checkpoint",
    "load_run",
    "main",
    "register",
    "reproduce",
    "resume",
    "train",
]

# Public names whose modules import torch/lightning: loaded on first access.
_LAZY = {
    "Built": "lightning_args.builder",
    "build": "lightning_args.builder",
    "config_from_checkpoint": "lightning_args.checkpoint",
    "load_from_checkpoint": "lightning_args.checkpoint",
    "TensorBatches": "lightning_args.data",
    "ConfiguredModule": "lightning_args.module",
    "LoadedRun": "lightning_args.runs",
    "load_run": "lightning_args.runs",
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)


register()
