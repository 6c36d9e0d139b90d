"""lightning_args: experiment management for PyTorch Lightning, as Hydra plugins.

Importing the package is cheap (no torch): configs register with Hydra and heavy parts load on
first use, so ``train.py --help`` and ``--cfg job`` stay instant.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lightning_args._util.aliases import install as _install_aliases
from lightning_args._util.lazy import lazy_exports
from lightning_args.config import Config, DataConfig, ModelConfig
from lightning_args.config.objective import Objective
from lightning_args.config.store import register
from lightning_args.config.terms import TBPTTConfig, TermConfig
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
from lightning_args.run.app import main, train
from lightning_args.run.fork import Forked
from lightning_args.run.preflight import check_complete
from lightning_args.run.record import RunRecord
from lightning_args.run.reproduce import Reproduction, reproduce
from lightning_args.run.resume import fork, resume
from lightning_args.run.trust import allow_targets

if TYPE_CHECKING:
    from lightning_args.instantiate.builder import Built, build
    from lightning_args.modules.configured import ConfiguredModule
    from lightning_args.modules.data import TensorBatches
    from lightning_args.modules.ensemble import FoldEnsemble
    from lightning_args.modules.gather import gather_rows
    from lightning_args.modules.keyed import KeyedModule
    from lightning_args.run.checkpoint import config_from_checkpoint, load_from_checkpoint
    from lightning_args.run.load import LoadedRun, load_run

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
    "FoldEnsemble",
    "Forked",
    "KeyedModule",
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
    "TBPTTConfig",
    "TargetError",
    "TensorBatches",
    "TermConfig",
    "UnknownOptionError",
    "UntrustedPathError",
    "UntrustedTargetError",
    "allow_targets",
    "build",
    "check_complete",
    "config_from_checkpoint",
    "fork",
    "gather_rows",
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
    "Built": "lightning_args.instantiate.builder",
    "build": "lightning_args.instantiate.builder",
    "config_from_checkpoint": "lightning_args.run.checkpoint",
    "load_from_checkpoint": "lightning_args.run.checkpoint",
    "TensorBatches": "lightning_args.modules.data",
    "ConfiguredModule": "lightning_args.modules.configured",
    "KeyedModule": "lightning_args.modules.keyed",
    "FoldEnsemble": "lightning_args.modules.ensemble",
    "gather_rows": "lightning_args.modules.gather",
    "LoadedRun": "lightning_args.run.load",
    "load_run": "lightning_args.run.load",
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)


register()
_install_aliases(__name__)  # the module paths of the flat layout (run directories store them)
