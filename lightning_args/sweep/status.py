"""Where a study stands, read from its trials alone: counts by state, the best value so far,
the trials running now (their values, epoch and latest reported objective), and an estimate of
the time left.

One reading for the sweeping terminal's live view and for ``lightning-args watch``
(:mod:`lightning_args.sweep.view`): both see what any process that opens the storage sees.
Interrupted trials (their values ran again) and duplicates (closed without running) are left
out, as the summary and the shared budget leave them out.

Example:
    >>> from optuna.trial import create_trial
    >>> done = create_trial(value=0.9, params={}, distributions={})
    >>> s = status_of([done], total=4, minimize=False, started=0.0, now=10.0)
    >>> s.done, s.best[1], s.finished
    (1, 0.9, False)
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from lightning_args.sweep.attrs import DUPLICATE, ERROR, INTERRUPTED, STEP_UNIT

#: The states a trial ends in: each counts toward ``n_trials``.
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
LEADERS = 5  # the best trials a status keeps


def apart(trial: FrozenTrial) -> bool:
    """Whether ``trial`` is left out of every count: interrupted (its values ran again as a new
    trial) or a duplicate (closed without running)."""
    return bool(trial.user_attrs.get(INTERRUPTED)) or trial.user_attrs.get(DUPLICATE) is not None


def tally(trials: Sequence[FrozenTrial]) -> tuple[int, int]:
    """The trials that count toward ``n_trials``, and those running (any sweeper's): together
    what the study has used of its budget."""
    done = sum(1 for t in trials if t.state in FINISHED and not apart(t))
    running = sum(1 for t in trials if t.state == TrialState.RUNNING and not apart(t))
    return done, running


@dataclass(frozen=True)
class Running:
    """A trial running now, as its job last reported it."""

    number: int
    params: str  # its values, as overrides (:func:`describe_params`)
    #: Steps reported so far: epochs (the pruning callback reports once per validation) or, in
    #: a k-fold trial, folds (``unit``).
    steps: int
    latest: float | None  # the objective it reported last
    seconds: float  # since it started
    unit: str = "epoch"

    @property
    def progress(self) -> str:
        """``"12 epochs"``, ``"1 fold"``.

        >>> Running(0, "", 1, None, 0.0, "fold").progress
        '1 fold'
        """
        return f"{self.steps} {self.unit}{'' if self.steps == 1 else 's'}"


@dataclass(frozen=True)
class Leader:
    """One of the best completed trials so far."""

    number: int
    value: float
    params: str


@dataclass(frozen=True)
class StudyStatus:
    """A study at one moment (:func:`status_of`)."""

    total: int | None  # n_trials, when known
    states: Mapping[str, int]  # COMPLETE, PRUNED, FAIL: the trials that count
    running: tuple[Running, ...]
    #: The best feasible completed trials, best first (single-objective studies only).
    leaders: tuple[Leader, ...]
    elapsed: float
    left: float | None  # seconds, estimated from the durations of finished trials

    @property
    def best(self) -> tuple[int, float] | None:
        """(trial number, value) of the best trial so far."""
        return (self.leaders[0].number, self.leaders[0].value) if self.leaders else None

    @property
    def done(self) -> int:
        return sum(self.states.values())

    @property
    def finished(self) -> bool:
        """Every planned trial ended and none runs."""
        return self.total is not None and self.done >= self.total and not self.running

    def headline(self) -> str:
        """One line: done of total, by state, running, best, elapsed and left."""
        of = f"/{self.total}" if self.total is not None else ""
        states = ", ".join(f"{n} {s.lower()}" for s, n in self.states.items() if n) or "none"
        parts = [f"{self.done}{of} done ({states})", f"{len(self.running)} running"]
        if self.best is not None:
            parts.append(f"best {self.best[1]:.6g} (trial {self.best[0]})")
        parts.append(f"{duration(self.elapsed)} elapsed")
        if self.left is not None and not self.finished:
            parts.append(f"about {duration(self.left)} left")
        return ", ".join(parts)


def status_of(
    trials: Sequence[FrozenTrial],
    *,
    total: int | None,
    minimize: bool | None,
    started: float,
    now: float,
) -> StudyStatus:
    """The status of a study from its ``trials``, at unix time ``now``.

    ``minimize`` is the direction of a single-objective study (``None`` for several
    objectives: no single best); ``started`` is when the watching began (for the elapsed time).
    """
    counted = [t for t in trials if not apart(t)]
    counts = Counter(t.state.name for t in counted if t.state in FINISHED)
    states = {s.name: counts.get(s.name, 0) for s in FINISHED}
    running = tuple(
        _running(t, now) for t in counted if t.state == TrialState.RUNNING and t.datetime_start
    )
    leaders: tuple[Leader, ...] = ()
    if minimize is not None:
        feasible = [
            Leader(t.number, float(t.value), describe_params(t.params))
            for t in counted
            if t.state == TrialState.COMPLETE
            and t.value is not None
            and not any(v > 0 for v in t.constraints.values())
        ]
        feasible.sort(key=lambda leader: leader.value, reverse=not minimize)
        leaders = tuple(feasible[:LEADERS])
    durations = [
        (t.datetime_complete - t.datetime_start).total_seconds()
        for t in counted
        if t.state in FINISHED and t.datetime_start and t.datetime_complete
    ]
    left = None
    if total is not None:
        to_start = max(0, total - sum(states.values()) - len(running))
        left = estimate_left(durations, [r.seconds for r in running], to_start)
    return StudyStatus(
        total=total,
        states=states,
        running=running,
        leaders=leaders,
        elapsed=max(0.0, now - started),
        left=left,
    )


def estimate_left(
    durations: Sequence[float], running: Sequence[float], to_start: int
) -> float | None:
    """Seconds until the last planned trial ends, or ``None`` before any trial has finished.

    A trial takes the mean duration of the finished ones; the trials not started yet share the
    slots the running ones hold (at least one), after those end.

    >>> estimate_left([10.0, 20.0], running=[5.0, 14.0], to_start=4)  # 2 slots, 2 rounds each
    40.0
    >>> estimate_left([], running=[3.0], to_start=2) is None
    True
    """
    if not durations:
        return None
    mean = sum(durations) / len(durations)
    slots = max(1, len(running))
    running_left = max((max(0.0, mean - s) for s in running), default=0.0)
    return running_left + math.ceil(to_start / slots) * mean


def outcome(trial: FrozenTrial) -> str:
    """How a finished trial ended, in a few words: its value(s), the epoch it was pruned after,
    or its error's first line.

    >>> from optuna.trial import create_trial
    >>> outcome(create_trial(values=[0.5, 2.0], params={}, distributions={}))
    'finished: 0.5, 2'
    """
    if trial.state == TrialState.PRUNED:
        last = max(trial.intermediate_values, default=None)
        return "pruned" if last is None else f"pruned after {_unit(trial)} {last}"
    if trial.state == TrialState.FAIL:
        error = str(trial.user_attrs.get(ERROR) or "unknown error")
        return f"failed: {error.splitlines()[0] if error.strip() else 'unknown error'}"
    values = ", ".join(f"{v:.6g}" for v in trial.values or [])
    over = [metric for metric, v in trial.constraints.items() if v > 0]
    infeasible = f"; infeasible: {', '.join(over)} beyond bounds" if over else ""
    return f"finished: {values}{infeasible}"


def ended_line(trial: FrozenTrial, status: StudyStatus, output: Path | None = None) -> str:
    """The line said when ``trial`` ended: how, its values, where a failed trial's output is
    (``output``), and the study's headline.

    >>> from optuna.distributions import FloatDistribution
    >>> from optuna.trial import create_trial
    >>> x = {"x": FloatDistribution(0, 4)}
    >>> t = create_trial(value=0.5, params={"x": 2.0}, distributions=x)
    >>> empty = StudyStatus(None, {}, (), (), elapsed=3.0, left=None)
    >>> ended_line(t, empty)
    'Trial -1 finished: 0.5 (x=2) | 0 done (none), 0 running, 3s elapsed'
    """
    line = f"Trial {trial.number} {outcome(trial)} ({describe_params(trial.params)})"
    if output is not None and trial.state == TrialState.FAIL:
        line += f". Its output: {output}"
    return f"{line} | {status.headline()}"


def describe_params(params: Mapping[str, Any]) -> str:
    """A trial's values as overrides, floats to 4 significant digits.

    >>> describe_params({"optimizer.lr": 0.0059865202914287, "model/encoder": "cnn", "n": 3})
    'optimizer.lr=0.005987 model/encoder=cnn n=3'
    """
    return " ".join(
        f"{name}={f'{value:.4g}' if isinstance(value, float) else value}"
        for name, value in params.items()
    )


def duration(seconds: float) -> str:
    """``seconds`` for people.

    >>> duration(7.2), duration(65), duration(3725)
    ('7s', '1m05s', '1h02m')
    """
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def _running(trial: FrozenTrial, now: float) -> Running:
    steps = trial.intermediate_values
    last = max(steps, default=None)
    start = trial.datetime_start.timestamp() if trial.datetime_start else now
    return Running(
        number=trial.number,
        params=describe_params(trial.params),
        steps=0 if last is None else last + 1,
        latest=None if last is None else steps[last],
        seconds=max(0.0, now - start),
        unit=_unit(trial),
    )


def _unit(trial: FrozenTrial) -> str:
    """What ``trial``'s steps count (:data:`~lightning_args.sweep.attrs.STEP_UNIT`)."""
    unit = trial.user_attrs.get(STEP_UNIT)
    return unit if isinstance(unit, str) and unit.isidentifier() else "epoch"


def minimizing(study: optuna.Study) -> bool | None:
    """The single objective's direction of ``study`` (``None`` with several objectives)."""
    if len(study.directions) != 1:
        return None
    return study.directions[0] == optuna.study.StudyDirection.MINIMIZE
