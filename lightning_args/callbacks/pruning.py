"""The Lightning callback that reports a job's objective to its Optuna trial and stops it."""

from __future__ import annotations

import logging
import math
from typing import Any

import lightning.pytorch as pl

from lightning_args.sweep.trial import TrialLink

_log = logging.getLogger(__name__)


class TrialReporter(pl.Callback):
    """After each validation, report ``metric`` to the trial (step = epoch) and ask its pruner.

    A pruned trial stops training cleanly (``trainer.should_stop``), so its checkpoints and run
    record stay valid; :func:`lightning_args.train` then raises ``optuna.TrialPruned``, which the
    sweeper records as PRUNED. Under DDP rank 0 reports and decides, and every rank follows.
    """

    def __init__(self, link: TrialLink, metric: str) -> None:
        self.link = link
        self.metric = metric
        self.pruned_at: int | None = None
        self.last_value: float | None = None
        self._trial: Any = None

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or self.pruned_at is not None:
            return
        epoch = trainer.current_epoch
        prune = False
        if trainer.is_global_zero:
            prune = self._report(trainer, epoch)
        if trainer.world_size > 1:
            prune = bool(trainer.strategy.broadcast(prune, src=0))
        if prune:
            self.pruned_at = epoch
            trainer.should_stop = True

    def _report(self, trainer: pl.Trainer, epoch: int) -> bool:
        value = trainer.callback_metrics.get(self.metric)
        if value is None:
            return False
        number = float(value)
        self.last_value = number
        if not math.isfinite(number) or self.link.n_objectives > 1:
            # Optuna prunes single-objective studies only; a NaN is the sweeper's to record.
            return False
        if self._trial is None:
            self._trial = self.link.open()
        self._trial.report(number, step=epoch)
        if self._trial.should_prune():
            _log.info(
                "Trial %d pruned after epoch %d: %s=%.4f",
                self.link.number,
                epoch,
                self.metric,
                number,
            )
            return True
        return False
