"""The ``trainer`` group: typed arguments of :class:`lightning.pytorch.Trainer`.

Callbacks, loggers and the output directory are not here: they come from the ``callbacks`` and
``logger`` groups and from the run directory, so that a preset such as ``trainer=gpu`` never
drops a user's callbacks.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TrainerConfig:
    """Arguments of ``lightning.pytorch.Trainer``; see its documentation for each field.

    Presets in the ``trainer`` group: ``cpu`` (default), ``gpu``, ``ddp``, ``debug``.
    """

    _target_: str = "lightning.pytorch.Trainer"
    accelerator: str = "auto"
    devices: int | str = "auto"
    strategy: str = "auto"
    num_nodes: int = 1
    precision: str | None = None
    max_epochs: int | None = 20
    min_epochs: int | None = None
    max_steps: int = -1
    max_time: str | None = None
    limit_train_batches: int | float | None = None
    limit_val_batches: int | float | None = None
    limit_test_batches: int | float | None = None
    val_check_interval: int | float | None = None
    check_val_every_n_epoch: int | None = 1
    num_sanity_val_steps: int | None = None
    log_every_n_steps: int | None = None
    accumulate_grad_batches: int = 1
    gradient_clip_val: float | None = None
    gradient_clip_algorithm: str | None = None
    deterministic: bool | None = None
    benchmark: bool | None = None
    enable_checkpointing: bool | None = None
    enable_progress_bar: bool | None = None
    enable_model_summary: bool | None = None
    detect_anomaly: bool = False
    sync_batchnorm: bool = False
    use_distributed_sampler: bool = True
    inference_mode: bool = True
    reload_dataloaders_every_n_epochs: int = 0
    profiler: str | None = None
    barebones: bool = False


@dataclass
class CPUTrainerConfig(TrainerConfig):
    """One CPU process."""

    accelerator: str = "cpu"
    devices: int | str = 1


@dataclass
class GPUTrainerConfig(TrainerConfig):
    """One GPU, bf16 mixed precision where the GPU supports it (Ampere and newer)."""

    accelerator: str = "gpu"
    devices: int | str = 1
    precision: str | None = "bf16-mixed"


@dataclass
class DDPTrainerConfig(TrainerConfig):
    """Data-parallel over every visible device (GPUs, or CPU processes with gloo)."""

    strategy: str = "ddp"
    devices: int | str = "auto"
    sync_batchnorm: bool = True


@dataclass
class DebugTrainerConfig(TrainerConfig):
    """A few batches of each stage on CPU, with anomaly detection: a smoke test of the pipeline.

    Unlike Lightning's ``fast_dev_run`` it keeps checkpoints and loggers, so the run directory is
    complete and can be inspected.
    """

    accelerator: str = "cpu"
    devices: int | str = 1
    max_epochs: int | None = 1
    limit_train_batches: int | float | None = 5
    limit_val_batches: int | float | None = 2
    limit_test_batches: int | float | None = 2
    num_sanity_val_steps: int | None = 0
    log_every_n_steps: int | None = 1
    detect_anomaly: bool = True
