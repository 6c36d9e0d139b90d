"""How a sweeper takes new trials from the study: ``n_trials`` is one budget shared by every
sweeper of the study, so trials are counted and asked under the storage's lock, and no trial
runs values that one which ran or runs has, so a finite space ends once each configuration ran.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import TrialState

from hydra_plugins.lightning_args_optuna._progress import Progress
from hydra_plugins.lightning_args_optuna._study import requeue_interrupted
from lightning_args._compat import optuna as compat
from lightning_args.sweep.attrs import DUPLICATE, HEARTBEAT, HOST, OVERRIDES, PID
from lightning_args.sweep.space import ConfigKey, config_key
from lightning_args.sweep.status import tally
from lightning_args.sweep.storage import budget_lock

_log = logging.getLogger(__name__)

# A new trial must not repeat the values of one in these states (a FAIL may be retried).
_TAKEN = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)


@dataclass(frozen=True)
class Budget:
    """What taking trials from the study needs: its shared budget and the storage's lock, the
    configurations of a finite space, how a trial gets its values, and the sweeper's settings
    for redraws and heartbeats."""

    backend: optuna.storages.BaseStorage  # what open_storage returned for ``storage``
    storage: str  # hydra.sweeper.storage, or the sweep's own journal
    study_name: str
    total: int  # the study's n_trials, shared by all its sweepers (1: nothing to tune)
    #: Every configuration of a finite search space, by its key, or None: some parameter is
    #: continuous, or there are too many to list.
    configurations: dict[ConfigKey, dict[str, Any]] | None
    #: Samples a trial's values (define-by-run) and returns its job's task overrides.
    draw: Callable[[optuna.trial.Trial], list[str]]
    max_redraws: int
    heartbeat_interval: float | None
    grace_period: float

    def lock(self) -> AbstractContextManager[None]:
        """The study's cross-process lock (:func:`~lightning_args.sweep.storage.budget_lock`)."""
        return budget_lock(self.backend, self.storage, self.study_name)

    def claim_distinct(
        self, study: optuna.Study, want: int, progress: Progress
    ) -> list[tuple[optuna.trial.Trial, list[str]]]:
        """Up to ``want`` new trials with their job's overrides, none repeating the values of a
        trial that ran or runs (the duplicate guard).

        A trial whose suggested values repeat those of a COMPLETE, PRUNED or RUNNING trial is
        closed without running (FAIL, marked :data:`DUPLICATE`, not counted toward
        ``n_trials``) and another is drawn: a new trial, so a new random stream for the sampler.
        After more than ``max_redraws`` repeats in a row, a finite space gets one of the
        configurations no trial has (queued); elsewhere this sweeper starts no more trials.
        Trials from the queue (re-queued after an interruption, or queued by a user) run as
        given. Called under ``progress.lock``; the trials are in ``progress.running`` as soon as
        they are asked, so that an interruption releases them.
        """
        out: list[tuple[optuna.trial.Trial, list[str]]] = []
        repeats, queue = 0, None
        while len(out) < want and progress.ended is None:
            claimed = self._claim(study, want - len(out), progress, queue=queue)
            if not claimed:
                break
            queue = None
            for trial in claimed:
                progress.running[trial.number] = trial
                overrides = self.draw(trial)
                earlier = _duplicate_of(study, trial)
                if earlier is None:
                    out.append((trial, overrides))
                    repeats = 0
                    continue
                _close_duplicate(study, trial, earlier, progress)
                repeats += 1
            if repeats > self.max_redraws:
                queue = self._unexplored(study)
                if queue is None:
                    progress.ended = (
                        f"the sampler suggested values that earlier trials have {repeats} times "
                        "in a row (hydra.sweeper.max_redraws="
                        f"{self.max_redraws}): this sweeper starts no more trials"
                    )
                    _log.warning("%s", progress.ended)
                    break
                _log.info(
                    "The sampler keeps suggesting values already run (%d times in a row): the "
                    "next trial runs a configuration of the finite space that no trial has",
                    repeats,
                )
                repeats = 0
        return out

    def _unexplored(self, study: optuna.Study) -> dict[str, Any] | None:
        """A configuration of the finite space that no COMPLETE, PRUNED or RUNNING trial has
        (the first in the space's order), or ``None``."""
        if self.configurations is None:
            return None
        taken = _taken_keys(study.get_trials(deepcopy=False))
        return next((v for k, v in self.configurations.items() if k not in taken), None)

    def _claim(
        self,
        study: optuna.Study,
        want: int,
        progress: Progress,
        queue: dict[str, Any] | None = None,
    ) -> list[optuna.trial.Trial]:
        """Up to ``want`` new trials for this sweeper, within what the study has left.

        Under the budget lock, so that sweepers sharing the study neither overshoot
        ``n_trials`` nor take a dead sweeper's trial twice. Counting reads every trial from the
        storage, which also warms an RDB storage's cache before the trials are used. A finite
        search space whose every configuration ran (or runs) has nothing left: the sweep ends
        there, saying so (``progress.ended``). ``queue``: values to queue and ask first.
        """
        with self.lock():
            stored = requeue_interrupted(study, self.grace_period)
            done, running = tally(stored)
            left = self.total - done - running
            if left > 0 and self._exhausted(stored, progress, done):
                return []
            if queue is not None and left > 0:
                study.enqueue_trial(queue, skip_if_exists=False)
            trials = [study.ask() for _ in range(min(want, left))]
            for trial in trials:  # ours, while we live (see _study.requeue_interrupted)
                # PID first: a sweeper that sees our host on the trial must see our PID too,
                # or it would take the trial for a dead one (storages without a budget lock).
                trial.set_user_attr(PID, os.getpid())
                trial.set_user_attr(HOST, socket.gethostname())
                if self.heartbeat_interval:
                    trial.set_user_attr(HEARTBEAT, time.time())
        return trials

    def _exhausted(
        self, trials: Sequence[optuna.trial.FrozenTrial], progress: Progress, done: int
    ) -> bool:
        """Whether every configuration of a finite space ran or runs (then said, once)."""
        if self.configurations is None:
            return False
        size = len(self.configurations)
        if len(_taken_keys(trials) & self.configurations.keys()) < size:
            return False
        progress.ended = (
            f"the search space is exhausted: each of its {size} configuration(s) ran or runs, "
            f"{done} of n_trials={self.total} trials count; the sweep ends there"
        )
        _log.warning("The %s", progress.ended.removeprefix("the "))
        return True


def _duplicate_of(study: optuna.Study, trial: optuna.trial.Trial) -> int | None:
    """The number of a COMPLETE, PRUNED or RUNNING trial with ``trial``'s values, if any.

    Every value of ``trial`` is in the storage before the others are read: of two sweepers
    suggesting the same values at once, the later reader sees the other's trial.
    """
    trials = compat.all_trials(study)
    mine = next(t for t in trials if t.number == trial.number)
    if compat.from_queue(mine):
        return None  # queued values (a re-queued interruption, a user's) run as given
    key = config_key(mine.params, mine.distributions)
    for other in trials:
        if (
            other.number != mine.number
            and other.state in _TAKEN
            and other.user_attrs.get(DUPLICATE) is None
            and config_key(other.params, other.distributions) == key
        ):
            return other.number
    return None


def _close_duplicate(
    study: optuna.Study, trial: optuna.trial.Trial, earlier: int, progress: Progress
) -> None:
    trial.set_user_attr(DUPLICATE, earlier)
    study.tell(trial, state=TrialState.FAIL)
    del progress.running[trial.number]
    _log.info(
        "Trial %d repeats the values of trial %d (%s): closed without running, not counted; "
        "drawing again",
        trial.number,
        earlier,
        " ".join(trial.user_attrs.get(OVERRIDES, [])),
    )


def _taken_keys(trials: Sequence[optuna.trial.FrozenTrial]) -> set[ConfigKey]:
    """The configurations that COMPLETE, PRUNED and RUNNING trials have (a RUNNING trial once
    all its values are suggested: its overrides are set last)."""
    return {
        config_key(t.params, t.distributions)
        for t in trials
        if t.state in _TAKEN
        and t.user_attrs.get(DUPLICATE) is None
        and (t.state != TrialState.RUNNING or OVERRIDES in t.user_attrs)
    }
