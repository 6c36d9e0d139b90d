"""How a job's return becomes its trial's state in the study: pruned, failed (the reason kept
on the trial, which the sweep's summary lists) or complete, with its values checked against the
study's directions first. The sweep says how each trial ended (:mod:`lightning_args.sweep.status`
reads it back from the study), so this module says nothing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import optuna
from hydra.core.utils import JobReturn, JobStatus
from optuna.trial import TrialState

from hydra_plugins.lightning_args_optuna._constraints import Constraint, violations
from lightning_args._compat.hydra import job_error
from lightning_args.sweep.attrs import ERROR


def tell(
    study: optuna.Study,
    trial: optuna.trial.Trial,
    ret: JobReturn,
    n_objectives: int,
    constraints: list[Constraint] | None = None,
) -> TrialState:
    """Tell the study how the trial's job ended (its return, ``ret``).

    With ``constraints``, a completed trial's constraint values are set first (from its run
    record); one that cannot be read fails the trial, saying why.
    """
    error = job_error(ret)
    if ret.status == JobStatus.FAILED:
        if isinstance(error, optuna.TrialPruned):
            study.tell(trial, state=TrialState.PRUNED)
            return TrialState.PRUNED
        return _fail(study, trial, f"{type(error).__name__}: {error}")
    values = _values(ret.return_value, n_objectives)
    if isinstance(values, str):
        return _fail(study, trial, values)
    if constraints:
        found = violations(constraints, ret)
        if isinstance(found, str):
            return _fail(study, trial, found)
        for metric, violation in found.items():
            trial.set_constraint(metric, violation)
    study.tell(trial, values)
    return TrialState.COMPLETE


def _fail(study: optuna.Study, trial: optuna.trial.Trial, error: str) -> TrialState:
    trial.set_user_attr(ERROR, error[:2000])
    study.tell(trial, state=TrialState.FAIL)
    return TrialState.FAIL


def _values(value: Any, n_objectives: int) -> list[float] | str:
    """The job's return as objective values, or why it is not one."""
    items = (
        list(value)
        if isinstance(value, Sequence | tuple) and not isinstance(value, str)
        else [value]
    )
    if len(items) != n_objectives:
        return (
            f"the task returned {value!r}: expected {n_objectives} value(s), one per "
            "hydra.sweeper.direction"
        )
    try:
        numbers = [float(v) for v in items]
    except (TypeError, ValueError):
        return f"the task returned {value!r}, not a number"
    if not all(math.isfinite(v) for v in numbers):
        return f"the task returned {value!r} (not finite)"
    return numbers
