"""The sweeper in process: its typed settings, and its trial loops on a real journal study with
a launcher that returns at once.

No Hydra app and no job process: what is checked is how settings arrive and the loops'
bookkeeping (``Progress``), which the heartbeat thread reads while trials run.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import optuna
import pytest
from hydra.core.utils import JobReturn, JobStatus
from omegaconf import ListConfig, OmegaConf

from hydra_plugins.lightning_args_optuna._budget import Budget
from hydra_plugins.lightning_args_optuna._composed import ComposedSpace
from hydra_plugins.lightning_args_optuna._console import ShortLaunchLines
from hydra_plugins.lightning_args_optuna._impl import OptunaSweep
from hydra_plugins.lightning_args_optuna._progress import Progress
from hydra_plugins.lightning_args_optuna._settings import launcher_parallelism, parse_directions
from hydra_plugins.lightning_args_optuna.config import Direction, SweeperConfig
from hydra_plugins.lightning_args_optuna.lightning_args_optuna_sweeper import (
    LightningArgsOptunaSweeper,
)
from lightning_args._compat import joblib as joblib_compat
from lightning_args.errors import ConfigValueError, SearchSpaceError
from lightning_args.sweep import report
from lightning_args.sweep.space import Space, parse
from lightning_args.sweep.storage import open_storage


@pytest.mark.parametrize(
    ("direction", "expected"),
    [
        (Direction.maximize, ["maximize"]),
        ("minimize", ["minimize"]),
        ("Max", ["maximize"]),
        ("min", ["minimize"]),
        (["maximize", "min"], ["maximize", "minimize"]),
        (ListConfig(["minimize", Direction.maximize]), ["minimize", "maximize"]),
    ],
)
def test_directions_are_read_through_the_one_enum(direction: object, expected: list[str]) -> None:
    assert parse_directions(direction) == expected
    assert [Direction(d) for d in expected] == [Direction[d] for d in expected]


@pytest.mark.parametrize("direction", ["up", 1, ["minimize", "sideways"]])
def test_an_unknown_direction_is_one_message(direction: object) -> None:
    with pytest.raises(SearchSpaceError, match=r"expected minimize or maximize .* Fix: "):
        parse_directions(direction)


def test_the_plugin_keeps_its_settings_typed() -> None:
    """What Hydra passes (``config.hydra.sweeper``'s values) becomes one SweeperConfig, which
    ``setup`` hands to the sweep; an untyped node with a key of another sweeper is refused."""
    sampler = OmegaConf.create({"_target_": "optuna.samplers.RandomSampler", "seed": 1})
    plugin = LightningArgsOptunaSweeper(n_trials=7, sampler=sampler, grace_period=60.0)
    # Compared field by field: Hydra's plugin scan may have loaded the module a second time.
    assert type(plugin.settings).__name__ == "SweeperConfig"
    expected = SweeperConfig(n_trials=7, sampler=sampler, grace_period=60.0)
    assert vars(plugin.settings) == vars(expected)
    with pytest.raises(ConfigValueError, match=r"hydra\.sweeper\.optuna_config is not a setting"):
        LightningArgsOptunaSweeper(n_trials=7, optuna_config={})


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
    """``Progress.running`` that notes every change made without ``lock`` held."""

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
    tmp_path: Path, launcher: _Launcher, space: Space, **settings: Any
) -> tuple[OptunaSweep, optuna.Study, Budget]:
    """An OptunaSweep as ``setup`` leaves it, without a Hydra app, and the budget ``run`` gives
    its trial loops: a journal study in ``tmp_path``, no option spaces, no heartbeat thread."""
    sweep = OptunaSweep.__new__(OptunaSweep)
    defaults = {"search_space_group": None, "heartbeat_interval": None, "plots": False}
    sweep.settings = SweeperConfig(**{**defaults, **settings})
    sweep.sweep_dir, sweep.launcher, sweep.in_process = tmp_path, launcher, False  # type: ignore[assignment]
    sweep._pooled = False
    sweep.directions, sweep.study_name = ["minimize"], "s"
    sweep.storage = str(tmp_path / "study.journal")
    sweep.total = sweep.settings.n_trials
    sweep._plots_once = threading.Lock()
    sweep._pruner_config = {"_target_": "optuna.pruners.NopPruner"}
    sweep._composed = ComposedSpace(None, None, sweep.settings.search_space_group)  # type: ignore[arg-type]
    sweep._constraints = []
    sweep._launch_lines, sweep._started, sweep._view = ShortLaunchLines(), 0.0, None
    backend = open_storage(sweep.storage)
    sampler = optuna.samplers.RandomSampler(seed=0)
    study = optuna.create_study(study_name="s", storage=backend, sampler=sampler)
    return sweep, study, sweep._budget(backend, [], space, None)


@pytest.mark.parametrize(("batched", "batches"), [(True, [2, 2, 1]), (False, [1] * 5)])
def test_the_trial_loops_change_the_running_trials_only_under_the_lock(
    tmp_path: Path, batched: bool, batches: list[int]
) -> None:
    """The heartbeat thread copies ``progress.running`` under ``progress.lock``; a loop that
    adds or removes a trial without it races that copy (``dict changed size during
    iteration``), and with ``batched=true`` the loop ran in the main thread without the lock."""
    launcher = _Launcher()
    space = parse({"x": "interval(0, 1)"})
    sweep, study, budget = _sweep(tmp_path, launcher, space, n_trials=5, n_jobs=2, batched=batched)
    progress = Progress(allowed_failures=0.0)
    running = progress.running = _LockedOnly(progress.lock)
    sweep._run_trials(study, budget, progress)
    assert running.unlocked == []
    assert (launcher.batches, len(progress.returns), running) == (batches, 5, {})
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 5


class _WaitsForPlots(_Launcher):
    """Holds trial ``held`` until the plots' imports begin, up to ``timeout`` seconds."""

    def __init__(self, held: int, timeout: float = 30.0) -> None:
        super().__init__()
        self.held, self.timeout = held, timeout
        self.prepared = threading.Event()
        self.released: bool | None = None

    def launch(self, jobs: Sequence[Sequence[str]], initial_job_idx: int) -> list[JobReturn]:
        if initial_job_idx == self.held:
            self.released = self.prepared.wait(self.timeout)
        return super().launch(jobs, initial_job_idx)


@pytest.mark.parametrize(("plots", "prepared"), [(True, 1), (False, 0)])
def test_a_slot_with_no_trial_left_prepares_the_plots_while_the_last_trial_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, plots: bool, prepared: int
) -> None:
    """With plots off (the control) nothing prepares them, and the held trial waits in vain."""
    launcher = _WaitsForPlots(held=2, timeout=30.0 if plots else 0.5)
    calls: list[int] = []

    def prepare() -> None:
        calls.append(1)
        launcher.prepared.set()

    monkeypatch.setattr(report, "prepare_plots", prepare)
    space = parse({"x": "interval(0, 1)"})
    sweep, study, budget = _sweep(tmp_path, launcher, space, n_trials=3, n_jobs=2, plots=plots)
    sweep._run_trials(study, budget, Progress(allowed_failures=0.0))
    assert len(calls) == prepared  # once per sweep, not once per slot
    assert launcher.released is plots
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 3


@pytest.mark.parametrize(
    ("pooled", "batched", "n_jobs", "released"),
    [(True, False, 2, 1), (True, True, 2, 1), (True, False, 1, 1), (False, False, 2, 0)],
    ids=["joblib", "joblib-batched", "joblib-one-slot", "control-not-joblib"],
)
def test_joblibs_workers_are_released_once_the_last_trial_has_returned(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    pooled: bool,
    batched: bool,
    n_jobs: int,
    released: int,
) -> None:
    """They then exit while the summary and plots are written (the release itself, on real
    workers, is tests/test_joblib_compat.py's)."""
    launcher = _Launcher()
    calls: list[int] = []

    def release(*, idle: bool = False) -> None:
        assert idle  # every launch has returned: the workers may be ended at once
        calls.append(len(launcher.batches))

    monkeypatch.setattr(joblib_compat, "release_workers", release)
    space = parse({"x": "interval(0, 1)"})
    sweep, study, budget = _sweep(
        tmp_path, launcher, space, n_trials=3, n_jobs=n_jobs, batched=batched
    )
    sweep._pooled = pooled
    sweep._run_trials(study, budget, Progress(allowed_failures=0.0))
    assert calls == [len(launcher.batches)] * released  # once, after the last launch returned
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 3


@pytest.mark.parametrize(("pooled", "released"), [(True, [True]), (False, [])])
def test_a_sweep_that_fails_before_its_trials_ends_joblibs_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pooled: bool, released: list[bool]
) -> None:
    """Our joblib launcher starts its workers at setup (they import torch and Lightning); a
    sweep that then fails does not wait at exit for their imports. The control: no pool."""
    calls: list[bool] = []
    monkeypatch.setattr(joblib_compat, "release_workers", lambda *, idle=False: calls.append(idle))
    sweep, _, _ = _sweep(tmp_path, _Launcher(), parse({"x": "interval(0, 1)"}))
    sweep._pooled = pooled

    def refused(arguments: list[str]) -> list[list[JobReturn]]:
        raise SearchSpaceError("hydra.sweeper.params.x: refused")

    monkeypatch.setattr(sweep, "_run", refused)
    with pytest.raises(SearchSpaceError):
        sweep.run([])
    assert calls == released


CORES = os.cpu_count() or 1
LOCAL = "hydra_plugins.hydra_submitit_launcher.submitit_launcher.LocalLauncher"
SLURM = "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"


@pytest.mark.parametrize(
    ("launcher", "in_process", "expected"),
    [
        ({"n_jobs": 3}, False, 3),
        ({"n_jobs": -1}, False, CORES),  # joblib's: every core
        ({"n_jobs": -2}, False, max(1, CORES - 1)),
        ({"n_jobs": 0}, False, 1),
        ({"array_parallelism": 8, "_target_": SLURM}, False, 8),
        ({"array_parallelism": 256, "_target_": LOCAL, "cpus_per_task": 1}, False, CORES),
        (
            {"array_parallelism": 256, "_target_": LOCAL, "cpus_per_task": 2},
            False,
            max(1, CORES // 2),
        ),
        ({"_target_": "hydra._internal.core_plugins.basic_launcher.BasicLauncher"}, True, 1),
        ({"n_jobs": 4}, True, 1),  # in this process trials run one at a time whatever it says
        ({}, False, 1),
    ],
    ids=[
        "joblib",
        "joblib-all",
        "joblib-all-but-one",
        "joblib-zero",
        "slurm",
        "local-1cpu",
        "local-2cpus",
        "basic",
        "in-process",
        "unknown",
    ],
)
def test_n_jobs_follows_the_launcher(
    launcher: dict[str, Any], in_process: bool, expected: int
) -> None:
    assert launcher_parallelism(OmegaConf.create(launcher), in_process=in_process) == expected


@pytest.mark.parametrize(("n_jobs", "workers"), [(None, 3), (2, 2)], ids=["follows", "set"])
def test_the_sweeper_takes_the_launchers_parallelism_unless_set(
    tmp_path: Path, n_jobs: int | None, workers: int
) -> None:
    sweep, _, _ = _sweep(tmp_path, _Launcher(), parse({"x": "interval(0, 1)"}), n_jobs=n_jobs)
    sweep.config = OmegaConf.create({"hydra": {"launcher": {"n_jobs": 3}}})
    assert sweep._workers() == workers
