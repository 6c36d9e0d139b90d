"""The callbacks around checkpoints: the config inside each one, ``last.ckpt`` after every
epoch, and the training loaders' position on resume."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import ModelCheckpoint

from lightning_args._compat import lightning as compat
from lightning_args.run.checkpoint import CONFIG_KEY


class ConfigInCheckpoint(pl.Callback):
    """Store the run's resolved config (plain dicts and lists) in every checkpoint it saves."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config

    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        checkpoint[CONFIG_KEY] = {"config": self.config}


class BestAndLastCheckpoint(ModelCheckpoint):
    """Lightning's ``ModelCheckpoint``, with ``last.ckpt`` written after every epoch.

    Since Lightning 2.6, ``save_last=True`` writes ``last.ckpt`` only at a step where a top-k
    checkpoint is written: with ``save_top_k=1`` and a monitored metric, that is each new best,
    and ``last.ckpt`` becomes a copy of ``best.ckpt``, however many epochs came after it. A run
    resumed from it (``lightning-args resume``, a requeued job) would train those epochs again.
    Here the last checkpoint is also written at the end of every epoch where no top-k one was.
    """

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        due = self._last_due(trainer) and compat.saves_on_train_epoch_end(self, trainer)
        super().on_train_epoch_end(trainer, pl_module)
        if due:
            self._save_last_if_missing(trainer)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        due = self._last_due(trainer) and not compat.saves_on_train_epoch_end(self, trainer)
        super().on_validation_end(trainer, pl_module)
        if due:
            self._save_last_if_missing(trainer)

    def _last_due(self, trainer: pl.Trainer) -> bool:
        return bool(self.save_last) and not compat.skips_saving(self, trainer)

    def _save_last_if_missing(self, trainer: pl.Trainer) -> None:
        if compat.last_saved_step(self) != trainer.global_step:
            compat.save_last(self, trainer)


class LoaderStateOnResume(pl.Callback):
    """Give the training loaders their position from the checkpoint, when Lightning did not.

    Lightning restores stateful loaders (:class:`~lightning_args.modules.data.TensorBatches`)
    only when the training loader is first built after the checkpoint is read. A scheduler that
    asks for ``trainer.estimated_stepping_batches`` (cosine, one-cycle) builds it earlier, and
    the position is dropped: a run resumed mid-epoch would see the epoch's first batches again
    (Lightning-AI/pytorch-lightning#20550). At the start of training the pending states are
    loaded; no batch has been drawn yet.
    """

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        compat.load_pending_loader_states(trainer)
