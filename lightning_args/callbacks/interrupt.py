"""Ctrl-C and SIGTERM are a status: the run stops between two steps, resumable, and says so.

Lightning's own handling of Ctrl-C tears the trainer down and exits 1, and SIGTERM (what
``scancel`` and most schedulers send) kills the process where it stands; either way
``run.json`` said ``failed`` or stayed ``running``. :class:`StopOnInterrupt` takes both signals
first and only remembers them. At the end of the current training batch (every rank agreeing,
under DDP) it saves ``checkpoints/last.ckpt`` and raises :class:`RunInterrupted`;
:func:`lightning_args.train` records ``interrupted`` with the signal and the command that
resumes the run, and the process exits with the conventional status (130 for SIGINT, 143 for
SIGTERM). A second signal stops at once. Under submitit, SIGTERM stays submitit's (it lets its
USR2 requeue finish: :mod:`lightning_args.callbacks.requeue`).

A signal that arrives after the last training batch (during the final validation) stops the run
when training ends, before testing: its checkpoints are already written by then, and
``lightning-args resume`` runs what is left.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

import lightning.pytorch as pl

from lightning_args._compat import lightning as compat
from lightning_args.callbacks.requeue import Handler, stop_here
from lightning_args.errors import RunInterrupted

_log = logging.getLogger(__name__)

LAST = Path("checkpoints") / "last.ckpt"


def interrupt_signals() -> tuple[signal.Signals, ...]:
    """The signals that stop a run gracefully here: SIGINT, and SIGTERM outside submitit."""
    if os.environ.get("SUBMITIT_EXECUTOR"):
        return (signal.SIGINT,)
    return (signal.SIGINT, signal.SIGTERM)


class StopOnInterrupt(pl.Callback):
    """Defer SIGINT and SIGTERM to the next training batch boundary; save ``last.ckpt`` there."""

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self._previous: dict[int, Handler | int | None] = {}
        self._received: int | None = None

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        # Handlers can be installed from the main thread only (not in a launcher's thread).
        if stage != "fit" or threading.current_thread() is not threading.main_thread():
            return
        for signum in interrupt_signals():
            self._previous[signum] = signal.getsignal(signum)
            signal.signal(signum, self._remember)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Lightning 2.x puts its own SIGTERM handler in front of ours after ``setup``: it stops
        # the run by itself mid-validation or at an epoch's end (SIGTERMException) and saves
        # nothing (lightning_args._compat.lightning: the signal connector). Taking SIGTERM back
        # makes every stop during training the one above: at a training batch's end,
        # checkpointed, every rank agreeing.
        for signum in self._previous:
            signal.signal(signum, self._remember)

    def _remember(self, signum: int, frame: FrameType | None) -> None:
        if self._received is not None:
            _log.warning("Received %s again: stopping now", signal.Signals(signum).name)
            raise KeyboardInterrupt
        _log.warning(
            "Received %s: saving the run after this training batch, then stopping "
            "(send it again to stop at once)",
            signal.Signals(signum).name,
        )
        self._received = signum

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any
    ) -> None:
        if not self._previous:
            return
        if not trainer.strategy.reduce_boolean_decision(self._received is not None, all=False):
            return
        signum = self._received or signal.SIGINT
        stop_here(trainer, self.run_dir / LAST)
        raise RunInterrupted(
            signum,
            f"stopped by {signal.Signals(signum).name} after step {trainer.global_step}, saved "
            f"in {LAST}. Continue it: lightning-args resume {self.run_dir}",
        )

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # No batch is left to stop at: without this, the signal would be swallowed and the run
        # would go on to test (SIGTERM included, which the scheduler sent to end the job).
        if not self._previous:
            return
        if not trainer.strategy.reduce_boolean_decision(self._received is not None, all=False):
            return
        signum = self._received or signal.SIGINT
        raise RunInterrupted(
            signum,
            f"stopped by {signal.Signals(signum).name} after its last training step "
            f"({trainer.global_step}), before testing; its checkpoints are saved. Continue it: "
            f"lightning-args resume {self.run_dir}",
        )

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage == "fit":
            self.restore_signals()

    def restore_signals(self) -> None:
        """Give the signals back to the handlers found when fitting started (idempotent)."""
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous = {}


class DefersSignals(Protocol):
    """A callback that takes signals over while fitting: :class:`StopOnInterrupt`,
    :class:`lightning_args.callbacks.requeue.RequeueOnSignal`."""

    def restore_signals(self) -> None: ...


@contextmanager
def signals_given_back(*callbacks: DefersSignals) -> Iterator[None]:
    """Around ``trainer.fit``: afterwards the signals are the caller's again, however it ended.

    A callback's ``teardown`` runs only when fitting ends normally, and after a failed fit
    Lightning's own signal connector reinstalls the handlers it found when it started, which
    are the callbacks'. Left there, the next Ctrl-C (in a sweep, between two trials) would reach
    a callback that no longer stops anything.

    Example:
        >>> import signal
        >>> before = signal.getsignal(signal.SIGINT)
        >>> stop = StopOnInterrupt("run")
        >>> with signals_given_back(stop):
        ...     stop._previous[signal.SIGINT] = signal.signal(signal.SIGINT, stop._remember)
        >>> signal.getsignal(signal.SIGINT) is before
        True
    """
    try:
        yield
    finally:
        for callback in callbacks:
            callback.restore_signals()


def interrupted_by(error: BaseException, run_dir: str | Path) -> RunInterrupted | None:
    """``error`` as a :class:`RunInterrupted` when a signal caused it, else ``None``.

    Ours; a KeyboardInterrupt or Lightning's ``sys.exit(1)`` after its own Ctrl-C handling; or
    Lightning's ``SIGTERMException``: outside training (the sanity check, testing) Lightning
    2.x takes SIGTERM too and stops by itself with ``SystemExit(None)``, which would exit 0.
    The run goes on from its last checkpoint then.
    """
    if isinstance(error, RunInterrupted):
        return error
    if isinstance(error, KeyboardInterrupt) or (
        isinstance(error, SystemExit) and isinstance(error.__context__, KeyboardInterrupt)
    ):
        return RunInterrupted(signal.SIGINT, "stopped by SIGINT during a step")
    if compat.stopped_by_sigterm(error):
        return RunInterrupted(
            signal.SIGTERM,
            f"stopped by SIGTERM outside a training step: it goes on from its last checkpoint, "
            f"{LAST}. Continue it: lightning-args resume {run_dir}",
        )
    return None
