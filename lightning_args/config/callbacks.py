"""The ``callbacks`` group; several may be chosen at once: ``callbacks=[checkpoint,lr_monitor]``.

Callbacks that watch a metric follow the run's objective (``objective.metric``,
``objective.mode``), so changing the objective changes what is checkpointed and early-stopped.
"""

from __future__ import annotations

from dataclasses import dataclass

from lightning_args.config.objective import Mode


@dataclass
class CheckpointConfig:
    """``checkpoints/last.ckpt`` after every epoch, ``checkpoints/best.ckpt`` by the objective.

    The target is Lightning's ``ModelCheckpoint`` with ``last.ckpt`` really written every epoch
    (Lightning 2.6 writes it only with a new best; see :class:`BestAndLastCheckpoint`).
    """

    _target_: str = "lightning_args.callbacks.checkpoint.BestAndLastCheckpoint"
    dirpath: str = "${paths.run_dir}/checkpoints"
    filename: str = "best"
    monitor: str | None = "${objective.metric}"
    mode: Mode = "${objective.mode}"  # type: ignore[assignment]
    save_top_k: int = 1
    save_last: bool = True
    # One file named best.ckpt that is replaced, rather than best-v1.ckpt, best-v2.ckpt...
    enable_version_counter: bool = False
    auto_insert_metric_name: bool = False


@dataclass
class EarlyStoppingConfig:
    """Stop when the objective has not improved for ``patience`` validations."""

    _target_: str = "lightning.pytorch.callbacks.EarlyStopping"
    monitor: str = "${objective.metric}"
    mode: Mode = "${objective.mode}"  # type: ignore[assignment]
    patience: int = 5
    min_delta: float = 0.0


@dataclass
class LearningRateMonitorConfig:
    """Log each optimizer's learning rate."""

    _target_: str = "lightning.pytorch.callbacks.LearningRateMonitor"
    logging_interval: str | None = "epoch"


@dataclass
class RichProgressBarConfig:
    """A rich progress bar in place of tqdm."""

    _target_: str = "lightning.pytorch.callbacks.RichProgressBar"
    leave: bool = True
