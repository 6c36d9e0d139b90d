"""Preemption and time limits: checkpoint between two steps, requeue, resume in the same run.

On Slurm, submitit asks for a signal (USR2) ``signal_delay_s`` before a job's time limit, and
Slurm sends the same when it preempts the job. submitit's handler then pickles the submission
(the Hydra job: same overrides, same job number, hence the same run directory) and requeues it.
That handler runs wherever Python happens to be, mid-step; the job's training would be lost.

:class:`RequeueOnSignal` takes the signal first and only remembers it. At the end of the current
training batch (every rank agreeing, under DDP; the next one when an epoch's end or a validation
follows this one, which Lightning would skip on resume) it saves ``checkpoints/requeue.ckpt``
and raises :class:`JobRequeued`; :func:`lightning_args.train` marks the run ``requeued`` and
hands the signal to submitit, which requeues and exits. When the job starts again,
:func:`requeue_checkpoint` finds that checkpoint and the run continues from the batch after it:
the model, optimizers, random generators and the position in the epoch all come back, so the
run ends as an uninterrupted one would.

Lightning's own Slurm auto-requeue (on USR1) is switched off where submitit is in charge
(:func:`cluster_plugins`); two requeue mechanisms would each resubmit the job.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import lightning.pytorch as pl

from lightning_args._compat import lightning as compat
from lightning_args.run.record import RunStatus

_log = logging.getLogger(__name__)

CHECKPOINT = Path("checkpoints") / "requeue.ckpt"

Handler = Callable[[int, FrameType | None], Any]


class JobRequeued(Exception):  # noqa: N818 (control flow, not an error)
    """Training stopped at a signal after saving ``checkpoint``; :meth:`hand_over` requeues."""

    def __init__(self, signum: int, checkpoint: Path, handler: Handler) -> None:
        super().__init__(
            f"stopped by {signal.Signals(signum).name} after saving {checkpoint}; "
            "the job is requeued and resumes from it"
        )
        self.signum = signum
        self.checkpoint = checkpoint
        self._handler = handler

    def hand_over(self) -> None:
        """Call the handler the signal was meant for (submitit's: requeue, then exit)."""
        self._handler(self.signum, None)


def preemption_signal() -> signal.Signals:
    """The signal submitit requeues on: ``SUBMITIT_PREEMPT_SIGNAL`` (default USR2)."""
    return signal.Signals["SIG" + os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2")]


class RequeueOnSignal(pl.Callback):
    """Defer a requeue signal to the next batch boundary and checkpoint there.

    Active only while a handler for the signal is installed when fitting starts (submitit's, on
    a cluster); otherwise there is nobody to requeue the job and the callback does nothing.
    """

    def __init__(self, run_dir: str | Path, signum: int | None = None) -> None:
        self.path = Path(run_dir) / CHECKPOINT
        self.signum = int(signum if signum is not None else preemption_signal())
        self._previous: Handler | None = None
        self._received: int | None = None
        self._deferred = False

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        previous = signal.getsignal(self.signum)
        if not callable(previous):
            return
        self._previous = previous
        signal.signal(self.signum, self._remember)

    def _remember(self, signum: int, frame: FrameType | None) -> None:
        if self._received is None:
            _log.warning(
                "Received %s: checkpointing after this training batch, then requeueing",
                signal.Signals(signum).name,
            )
        self._received = signum

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any
    ) -> None:
        if self._previous is None:
            return
        # Every rank stops at the same batch, or the others would wait in the next all-reduce.
        if not trainer.strategy.reduce_boolean_decision(self._received is not None, all=False):
            return
        # Lightning resumes a checkpoint of an epoch's last batch, or of one that a validation
        # follows, past that validation and the epoch's end (their metrics, the epoch's
        # checkpoint, the next epoch's start hooks would be lost): stop after the next batch
        # instead. Once only, should that one be such a batch too (a validation every batch).
        if not self._deferred and compat.epoch_end_or_validation_follows(trainer):
            self._deferred = True
            return
        stop_here(trainer, self.path)
        raise JobRequeued(self._received or self.signum, self.path, self._previous)

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # The run got past the point it was requeued at: its last.ckpt supersedes this one.
        if trainer.is_global_zero:
            self.path.unlink(missing_ok=True)

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage != "fit" or self._previous is None:
            return
        if self._received is not None and not trainer.interrupted:
            _log.warning(
                "%s arrived after the last training batch: the job goes on without a requeue",
                signal.Signals(self._received).name,
            )
        self.restore_signals()

    def restore_signals(self) -> None:
        """Give the signal back to the handler found when fitting started (idempotent)."""
        if self._previous is not None:
            signal.signal(self.signum, self._previous)
        self._previous = None


def stop_here(trainer: pl.Trainer, path: Path) -> None:
    """Checkpoint the training at the end of this batch into ``path``, with the step's metrics
    logged: the caller then stops training by raising."""
    trainer.save_checkpoint(path, weights_only=False)  # the whole state, not just weights
    # Lightning hands this step's metrics to the loggers after the batch-end hooks, which the
    # caller's exception skips: the continued run starts with the next step, so they would be
    # lost. (Private: Lightning 2.6 has no public call for it.)
    compat.log_step_metrics(trainer)


class OnceRanksMeet(pl.Callback):
    """Call ``action`` when fitting starts, once every rank's process has joined the job.

    :func:`lightning_args.train` marks a continued run's record ``running`` here rather than
    at once: every rank reads the record first, to decide whether to continue from
    :data:`CHECKPOINT`, and they have all read it once the process group exists.
    """

    def __init__(self, action: Callable[[], None]) -> None:
        self.action: Callable[[], None] | None = action

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self.action is not None:
            self.action()
            self.action = None


def requeue_checkpoint(run_dir: Path, status: str | None) -> Path | None:
    """The checkpoint a requeued run continues from: its own, when its record says requeued."""
    path = run_dir / CHECKPOINT
    return path if status == RunStatus.REQUEUED and path.is_file() else None


def cluster_plugins() -> list[Any]:
    """Lightning plugins for the cluster the job runs on.

    Under submitit on Slurm, Lightning's ``SLURMEnvironment`` keeps its rank and world-size
    detection but not its auto-requeue: submitit requeues, from the run directory.
    """
    from lightning.fabric.plugins.environments.slurm import SLURMEnvironment

    if os.environ.get("SUBMITIT_EXECUTOR") == "slurm" and SLURMEnvironment.detect():
        return [SLURMEnvironment(auto_requeue=False)]
    return []
