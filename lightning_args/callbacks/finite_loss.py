"""Stop a run whose training loss became NaN or infinite, with a message saying what to change."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import lightning.pytorch as pl
import torch

from lightning_args._compat import lightning as compat
from lightning_args.errors import NonFiniteLossError


class FiniteLoss(pl.Callback):
    """Stop training when its loss becomes NaN or infinite: without it a run goes on with NaN
    weights to its last epoch and "completes", with a meaningless objective.

    The loss is looked at every ``trainer.log_every_n_steps`` batches (and the first), where
    Lightning synchronises with the device for logging anyway, so a GPU run is not slowed.
    ``lr``, the run's ``optimizer.lr`` where it has one, is named in the message.

    Example::

        trainer = lightning.pytorch.Trainer(callbacks=[FiniteLoss(lr=0.1)])
    """

    def __init__(self, lr: float | None = None) -> None:
        self.lr = lr
        self.last: Any = None  # the latest batch's loss, kept without a device sync

    def on_train_batch_end(
        self, trainer: pl.Trainer, module: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
        self.last = loss if isinstance(loss, torch.Tensor) else None
        every = compat.log_every_n_steps(trainer) or 1
        if batch_idx % max(1, every) == 0:
            self._check(trainer, batch_idx)

    def on_train_epoch_end(self, trainer: pl.Trainer, module: Any) -> None:
        self._check(trainer, None)  # an epoch shorter than log_every_n_steps is checked too

    def _check(self, trainer: pl.Trainer, batch_idx: int | None) -> None:
        loss, self.last = self.last, None
        if loss is None or bool(torch.isfinite(loss.detach()).all()):
            return
        kind = "NaN" if bool(torch.isnan(loss.detach()).any()) else "infinite"
        at = f", batch {batch_idx}" if batch_idx is not None else ""
        raise NonFiniteLossError(
            f"the training loss became {kind} in epoch {trainer.current_epoch}{at}. "
            "Expected a finite loss"
            + (f" (optimizer.lr={self.lr} may be too large)" if self.lr is not None else "")
            + ".\n  Fix: a smaller optimizer.lr, or trainer.gradient_clip_val=1.0; "
            "trainer.detect_anomaly=true names the operation that made it"
        )
