"""The sweeper's trial loops in process: a real journal study, a launcher that returns at once.

No Hydra app and no job process: what is checked is the loops' bookkeeping (``_Progress``), which
the heartbeat thread reads while trials run.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import optuna
import pytest
from hydra.core.utils import JobReturn, JobStatus
from omegaconf import OmegaConf

from hydra_plugins.lightning_args_optuna._impl import OptunaSweep, _Progress
from hydra_plugins.lightning_args_optuna.config import SweeperConfig
from lightning_args.sweep.space import parse
from lightning_args.sweep.storage import open_storage


class _Launcher:
    """Returns each job's ``x`` as its objective; remembers the batches it was given."""

    def __init__(self) -> None:
        self.batches: list[int] = []

    def launch(self, jobs: Sequence[Sequence[str]], initial_job_idx: int) -> list[JobReturn]:
        self.batches.append(len(jobs))
        values = [float(next(o for o in job if o.startswith("x=")).split("=")[1]) for job in jobs]
        return [
            JobReturn(overrides=list(job), status=JobStatus.COMPLETED, _return_value=value)
            for job, value in zip(jobs, values, strict=True)
        ]


class _LockedOnly(dict[int, Any]):
    """``_Progress.running`` that notes every change made without ``lock`` held."""

    def __init__(self, lock: threading.Lock) -> None:
        super().__init__()
        self.lock = lock
        self.unlocked: list[tuple[str, int]] = []

    def __setitem__(self, key: int, value: Any) -> None:
        if not self.lock.locked():
            self.unlocked.append(("add", key))
        super().__setitem__(key, value)

    def __delitem__(self, key: int) -> None:
        if not self.lock.locked():
            self.unlocked.append(("remove", key))
        super().__delitem__(key)


def _sweep(
    tmp_path: Path, launcher: _Launcher, **settings: Any
) -> tuple[OptunaSweep, optuna.Study]:
    """An OptunaSweep as ``setup`` leaves it, without a Hydra app: a journal study in
    ``tmp_path``, no option spaces, no heartbeat thread."""
    sweep = OptunaSweep.__new__(OptunaSweep)
    defaults = {"search_space_group": None, "heartbeat_interval": None, "plots": False}
    sweep.settings = OmegaConf.structured(SweeperConfig(**{**defaults, **settings}))
    sweep.sweep_dir, sweep.launcher, sweep.in_process = tmp_path, launcher, False  # type: ignore[assignment]
    sweep.directions, sweep.study_name = ["minimize"], "s"
    sweep.storage = str(tmp_path / "study.journal")
    sweep.total = int(sweep.settings.n_trials)
    sweep._pruner_config = {"_target_": "optuna.pruners.NopPruner"}
    sweep._choices_cache, sweep._option_spaces, sweep._groups = {}, {}, {}
    sweep._configurations = None
    sweep._backend = open_storage(sweep.storage)
    sampler = optuna.samplers.RandomSampler(seed=0)
    study = optuna.create_study(study_name="s", storage=sweep._backend, sampler=sampler)
    return sweep, study


@pytest.mark.parametrize(("batched", "batches"), [(True, [2, 2, 1]), (False, [1] * 5)])
def test_the_trial_loops_change_the_running_trials_only_under_the_lock(
    tmp_path: Path, batched: bool, batches: list[int]
) -> None:
    """The heartbeat thread copies ``progress.running`` under ``progress.lock``; a loop that
    adds or removes a trial without it races that copy (``dict changed size during
    iteration``), and with ``batched=true`` the loop ran in the main thread without the lock."""
    launcher = _Launcher()
    sweep, study = _sweep(tmp_path, launcher, n_trials=5, n_jobs=2, batched=batched)
    progress = _Progress(allowed_failures=0.0)
    running = progress.running = _LockedOnly(progress.lock)
    sweep._run_trials(study, [], parse({"x": "interval(0, 1)"}), progress)
    assert running.unlocked == []
    assert (launcher.batches, len(progress.returns), running) == (batches, 5, {})
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 5
