"""Typed schemas of every config group lightning_args provides (no heavy imports here)."""

from lightning_args.config.callbacks import (
    CheckpointConfig,
    EarlyStoppingConfig,
    LearningRateMonitorConfig,
    RichProgressBarConfig,
)
from lightning_args.config.cv import CVConfig
from lightning_args.config.loggers import (
    CSVLoggerConfig,
    MLflowLoggerConfig,
    TensorBoardLoggerConfig,
)
from lightning_args.config.objective import Mode, ObjectiveConfig
from lightning_args.config.optim import (
    AdamConfig,
    AdamWConfig,
    CosineSchedulerConfig,
    NamedOptimizerConfig,
    OneCycleSchedulerConfig,
    OptimizerConfig,
    SchedulerConfig,
    SGDConfig,
    StepSchedulerConfig,
)
from lightning_args.config.root import Config, DataConfig, ModelConfig, PathsConfig
from lightning_args.config.trainer import (
    CPUTrainerConfig,
    DDPTrainerConfig,
    DebugTrainerConfig,
    GPUTrainerConfig,
    TrainerConfig,
)

__all__ = [
    "AdamConfig",
    "AdamWConfig",
    "CPUTrainerConfig",
    "CSVLoggerConfig",
    "CVConfig",
    "CheckpointConfig",
    "Config",
    "CosineSchedulerConfig",
    "DDPTrainerConfig",
    "DataConfig",
    "DebugTrainerConfig",
    "EarlyStoppingConfig",
    "GPUTrainerConfig",
    "LearningRateMonitorConfig",
    "MLflowLoggerConfig",
    "Mode",
    "ModelConfig",
    "NamedOptimizerConfig",
    "ObjectiveConfig",
    "OneCycleSchedulerConfig",
    "OptimizerConfig",
    "PathsConfig",
    "RichProgressBarConfig",
    "SGDConfig",
    "SchedulerConfig",
    "StepSchedulerConfig",
    "TensorBoardLoggerConfig",
    "TrainerConfig",
]
