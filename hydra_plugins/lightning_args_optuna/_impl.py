"""The sweep: an Optuna study driven from the sweeper process, trials run by Hydra's launcher.

    parse the search space -> check it composes -> open (or resume) the study
    -> run trials, ``n_jobs`` at a time, each as soon as a slot frees -> record each outcome
    (a line each, and a live table on a terminal; a trial's own output goes to its run
    directory: :mod:`._console`) -> write the summary and plots

Each trial is one ``launcher.launch([overrides], initial_job_idx=trial.number)``: the job's
directory is ``<sweep dir>/<trial number>``, unique across resumed sweeps. With an out-of-process
launcher (joblib, submitit) ``n_jobs`` threads each launch one trial at a time, so a new trial
starts whenever any finishes (no batch barrier). Hydra's basic launcher runs jobs in this
process and changes its working directory and logging per job: trials then run one at a time.

Several sweepers (on several machines) may run the same study at once: same ``storage``,
``study_name`` and ``hydra.sweep.dir``. ``n_trials`` is then their common budget: before each
``ask`` a sweeper counts, under the storage's :func:`~lightning_args.sweep.storage.budget_lock`,
the trials that finished or run (any sweeper's), and stops once they reach ``n_trials``.

The sampler draws each trial's values from a random stream of that trial's own
(:class:`~lightning_args.sweep.sampling.ContinuingSampler`): a resumed sweep continues the
sequence, and sharing sweepers with one seed draw distinct values. Values equal to those of a
COMPLETE, PRUNED or RUNNING trial are not launched again
(:meth:`~hydra_plugins.lightning_args_optuna._budget.Budget.claim_distinct`).
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

import optuna
from hydra.core.plugins import Plugins
from hydra.core.utils import JobReturn
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf
from optuna.trial import TrialState

from hydra_plugins.lightning_args_optuna._budget import Budget
from hydra_plugins.lightning_args_optuna._composed import ComposedSpace, parse_space
from hydra_plugins.lightning_args_optuna._composing import ComposingOnce
from hydra_plugins.lightning_args_optuna._console import QuietTask, ShortLaunchLines, job_log
from hydra_plugins.lightning_args_optuna._constraints import parse_constraints
from hydra_plugins.lightning_args_optuna._enqueue import chosen_params, enqueue
from hydra_plugins.lightning_args_optuna._fallback import left_out
from hydra_plugins.lightning_args_optuna._finite import finite_sampler
from hydra_plugins.lightning_args_optuna._outcome import tell
from hydra_plugins.lightning_args_optuna._progress import Progress, in_threads
from hydra_plugins.lightning_args_optuna._settings import (
    check_settings,
    container,
    launcher_parallelism,
    parse_directions,
    pin_sweep_dir,
)
from hydra_plugins.lightning_args_optuna._study import (
    heartbeats,
    interrupt,
    open_study,
    requeue_interrupted,
)
from hydra_plugins.lightning_args_optuna._warm import WarmStart, add_runs, read_runs
from hydra_plugins.lightning_args_optuna.config import SweeperConfig
from lightning_args._compat import joblib as joblib_compat
from lightning_args._compat import optuna as compat
from lightning_args._compat.hydra import failed_job, is_joblib_launcher
from lightning_args._util.atomic import atomic_write
from lightning_args.errors import SearchSpaceError, SweepError
from lightning_args.sweep import report
from lightning_args.sweep.attrs import N_TRIALS
from lightning_args.sweep.names import study_name
from lightning_args.sweep.pacing import admission
from lightning_args.sweep.space import ConfigKey, Param, Space
from lightning_args.sweep.status import (
    StudyStatus,
    describe_params,
    ended_line,
    minimizing,
    status_of,
    tally,
)
from lightning_args.sweep.storage import open_storage
from lightning_args.sweep.trial import TrialLink
from lightning_args.sweep.view import LiveView

_log = logging.getLogger(__name__)


class OptunaSweep:
    """One ``-m`` invocation of the sweeper."""

    def __init__(
        self,
        *,
        settings: SweeperConfig,
        hydra_context: HydraContext,
        task_function: TaskFunction,
        config: DictConfig,
    ) -> None:
        self.hydra_context = hydra_context
        self.config = config
        #: ``config.hydra.sweeper`` as the plugin received it: typed values; ``sampler``,
        #: ``pruner`` and ``params`` still config (jobs need the pruner's config, not an object).
        self.settings = settings
        check_settings(settings)  # before anything is opened or made
        self.sweep_dir = pin_sweep_dir(config)
        # Jobs get their config through a loader that composes each set of group choices once.
        composing = HydraContext(
            config_loader=ComposingOnce(hydra_context.config_loader),
            callbacks=hydra_context.callbacks,
        )
        # A trial's own output goes to its run directory, unless verbose.
        task = task_function if settings.verbose else QuietTask(task_function)
        self.launcher: Launcher = Plugins.instance().instantiate_launcher(
            hydra_context=composing, task_function=task, config=config
        )
        self._launch_lines = ShortLaunchLines()
        self._started = time.time()
        self._view: LiveView | None = None  # while trials run
        self.in_process = type(self.launcher).__name__ == "BasicLauncher"
        #: Hydra's joblib launcher: jobs run in joblib's pool of worker processes.
        self._pooled = is_joblib_launcher(self.launcher)
        self.directions = parse_directions(self.settings.direction)
        self.study_name: str = self.settings.study_name or study_name(
            str(config.hydra.job.name), [str(o) for o in config.hydra.overrides.task]
        )
        self.storage: str = self.settings.storage or str(self.sweep_dir / "study.journal")
        self.total = self.settings.n_trials  # the study's, shared by all its sweepers
        self._plots_once = threading.Lock()  # taken by the first trial loop with nothing left
        self._pruner_config: dict[str, Any] = container(self.settings.pruner)
        self._composed = ComposedSpace(hydra_context, config, self.settings.search_space_group)
        self._constraints = parse_constraints(container(self.settings.constraints) or {})

    # --- the lifecycle --------------------------------------------------------------------

    def run(self, arguments: list[str]) -> list[list[JobReturn]]:
        try:
            return self._run(arguments)
        except BaseException:
            if self._pooled:  # none of its workers has a trial left: not waited for at exit
                joblib_compat.release_workers(idle=True)
            raise

    def _run(self, arguments: list[str]) -> list[list[JobReturn]]:
        base, space = parse_space(container(self.settings.params), arguments)
        self._composed.check(base, space)
        configurations: dict[ConfigKey, dict[str, Any]] | None = None
        declared = self._composed.option_params(base, {})
        sampler = self.settings.sampler
        if not space.params and not declared:
            self.total = 1  # nothing to tune: one run is the answer
        else:
            configurations = self._composed.finite_space(base, space)
            sampler = self._checked_sampler(base, space, [*space.params, *declared], configurations)
        queued = chosen_params(
            container(self.settings.enqueue) or [],
            lambda lines: [*space.params, *self._composed.option_params(base, _by_key(lines))],
        )
        backend = open_storage(self.storage)
        study = open_study(
            backend,
            url=self.storage,
            study_name=self.study_name,
            directions=self.directions,
            sampler=sampler,
            pruner=self._pruner_config,
        )
        # Earlier runs are read and composed outside the lock, which other sweepers wait for.
        warm = self._earlier_runs(study, base, space) if self.settings.warm_start else None
        budget = self._budget(backend, base, space, configurations)
        with budget.lock():
            done, running = tally(requeue_interrupted(study, self.settings.grace_period))
            if warm is not None:
                add_runs(study, *warm)  # under the lock: sweepers starting together add once
            enqueue(study, queued)
            study.set_user_attr(N_TRIALS, self.total)
        self._save_multirun_config()
        _log.info(
            "Study %s (%s): %d of %d trials done, %d running (any sweeper's); up to %d to "
            "run, %d at a time here. Storage: %s",
            self.study_name,
            "/".join(self.directions),
            done,
            self.total,
            running,
            max(0, self.total - done - running),
            self._workers(),
            self.storage,
        )
        progress = Progress(
            allowed_failures=self.settings.max_failure_rate * self.settings.n_trials,
        )
        beating = heartbeats(study, progress, self.settings.heartbeat_interval)
        self._view = LiveView(
            f"Study {self.study_name}",
            lambda: self._status(study),
            interval=self.settings.refresh,
            live=False if self.settings.verbose else None,
        )
        try:
            with self._launch_lines.installed(), self._view:
                self._run_trials(study, budget, progress)
        except BaseException:
            interrupt(study, progress)
            raise
        finally:
            beating.set()
        summary = report.write(study, self.sweep_dir, plots=self.settings.plots)
        _log.info("%s", report.describe(summary))
        if progress.stop:
            failures = "".join(
                f"\n  trial {f['number']}: {f['error'].splitlines()[0]}"
                for f in summary["failed"][-3:]
            )
            raise SweepError(
                f"sweep stopped: {progress.failed} trial(s) failed, more than "
                f"hydra.sweeper.max_failure_rate={self.settings.max_failure_rate} of "
                f"n_trials={self.settings.n_trials}.{failures}\n  Every failure is in "
                f"{self.sweep_dir / report.SUMMARY}. Fix: remove the cause, or raise "
                "max_failure_rate; re-running the same command continues the study."
            )
        return [[ret] for _, ret in sorted(progress.returns, key=lambda p: p[0])]

    def _checked_sampler(
        self,
        base: list[str],
        space: Space,
        params: list[Param],
        configurations: dict[ConfigKey, dict[str, Any]] | None,
    ) -> Any:
        """``hydra.sweeper.sampler`` as it runs on this space (a grid filled from it), checked
        before any job; what a model-based sampler leaves to random sampling is said."""
        sampler = finite_sampler(self.settings.sampler, configurations, params)
        reason = left_out(sampler, params, self._composed.conditional(base, space))
        if reason is not None:
            _log.warning("%s", reason)
        return sampler

    def _earlier_runs(
        self, study: optuna.Study, base: list[str], space: Space
    ) -> tuple[list[optuna.trial.FrozenTrial], WarmStart]:
        """The earlier runs of ``hydra.sweeper.warm_start`` that fit, as completed trials."""
        metric = OmegaConf.select(self.config, "objective.metric")
        if not isinstance(metric, str):
            raise SearchSpaceError(
                "hydra.sweeper.warm_start reads earlier runs' objective.metric, but this app's "
                "config has none. Fix: warm-start sweeps of lightning_args apps only"
            )

        def params_of(choices: dict[str, str]) -> list[Param]:
            chosen = {p.key: p.override(choices[p.name]) for p in space.params if p.name in choices}
            return [*space.params, *self._composed.option_params(base, chosen)]

        return read_runs(
            study,
            [str(root) for root in container(self.settings.warm_start)],
            metric=metric,
            params_of=params_of,
            compose=lambda overrides: self._composed.flat_config([*base, *space.fixed, *overrides]),
            own=self.sweep_dir,
        )

    def _budget(
        self,
        backend: optuna.storages.BaseStorage,
        base: list[str],
        space: Space,
        configurations: dict[ConfigKey, dict[str, Any]] | None,
    ) -> Budget:
        """How this sweeper takes trials from the study in ``backend`` (what ``open_storage``
        returned for :attr:`storage`), drawing each trial's values from ``space``."""
        return Budget(
            backend=backend,
            storage=self.storage,
            study_name=self.study_name,
            total=self.total,
            configurations=configurations,
            draw=lambda trial: self._composed.trial_overrides(trial, base, space),
            max_redraws=self.settings.max_redraws,
            heartbeat_interval=self.settings.heartbeat_interval,
            grace_period=self.settings.grace_period,
        )

    def _run_trials(self, study: optuna.Study, budget: Budget, progress: Progress) -> None:
        workers = self._workers()
        if self.settings.batched:
            self._batch_loop(study, budget, progress, workers)
        elif workers == 1:
            self._trial_loop(study, budget, progress)
        else:
            self._parallel_loops(study, budget, progress, workers)
        if self._pooled:
            # No trial is left to launch from here: joblib's workers end now, while the summary
            # and plots are written, instead of finalizing torch and Lightning at this
            # process's exit (seconds each).
            joblib_compat.release_workers(idle=True)

    def _parallel_loops(
        self, study: optuna.Study, budget: Budget, progress: Progress, workers: int
    ) -> None:
        """``workers`` trial loops in threads, each launching a trial as soon as its last ends."""

        def stop() -> None:
            with progress.lock:
                progress.stop = True

        in_threads(lambda: self._trial_loop(study, budget, progress), workers, on_error=stop)

    def _trial_loop(self, study: optuna.Study, budget: Budget, progress: Progress) -> None:
        while True:
            # Admitted before the trial is asked: a launcher that cannot start it yet (the GPU
            # launcher measuring its first trial) keeps it unasked instead of asked and idle.
            with admission(self.launcher):
                with progress.lock:
                    if progress.stop:
                        return
                    claimed = budget.claim_distinct(study, 1, progress)
                    if not claimed:
                        break
                    ((trial, overrides),) = claimed
                ret = self._launch(trial, overrides)
                with progress.lock:
                    self._record(study, trial, ret, progress)
        # Nothing left to claim: this slot's core is idle while the other slots finish.
        if self.settings.plots and self._plots_once.acquire(blocking=False):  # never released
            report.prepare_plots()

    def _batch_loop(
        self, study: optuna.Study, budget: Budget, progress: Progress, size: int
    ) -> None:
        """``batched=true``: ``size`` trials per launch; a batch waits for its slowest trial.

        Runs in the main thread, but the heartbeat thread reads ``progress`` meanwhile: changes
        are made under ``progress.lock``, as in :meth:`_trial_loop`, and the launch outside it.
        """
        while True:
            with progress.lock:
                if progress.stop:
                    return
                claimed = budget.claim_distinct(study, size, progress)
            if not claimed:
                return
            trials = [trial for trial, _ in claimed]
            jobs = [self._job(trial, overrides) for trial, overrides in claimed]
            # Consecutive numbers (asked in a row, under the budget lock): job index = trial
            # number holds, unless a re-queued trial or a skipped duplicate was among them.
            with self._launch_lines.launching([_named(trial) for trial in trials]):
                rets = self.launcher.launch(jobs, initial_job_idx=trials[0].number)
            with progress.lock:
                for trial, ret in zip(trials, rets, strict=True):
                    self._record(study, trial, ret, progress)

    def _record(
        self, study: optuna.Study, trial: optuna.trial.Trial, ret: JobReturn, progress: Progress
    ) -> None:
        """Tell the study how a trial ended; stop the sweep once too many failed."""
        del progress.running[trial.number]
        progress.returns.append((trial.number, ret))
        try:
            if compat.storage(study).get_trial(compat.trial_id(trial)).state != TrialState.RUNNING:
                raise optuna.exceptions.UpdateFinishedTrialError(trial.number)
            state = tell(study, trial, ret, len(self.directions), self._constraints)
            self._say(study, trial, ret)
        except optuna.exceptions.UpdateFinishedTrialError:
            _log.warning(
                "Trial %d was taken over by another sweeper (no heartbeat from here for "
                "grace_period=%ss): its values ran again as a new trial, this result is dropped",
                trial.number,
                self.settings.grace_period,
            )
            return
        if state == TrialState.FAIL:
            progress.failed += 1
            progress.stop = progress.stop or progress.failed > progress.allowed_failures

    # --- one trial ------------------------------------------------------------------------

    def _say(self, study: optuna.Study, trial: optuna.trial.Trial, ret: JobReturn) -> None:
        """One line for an ended trial (:func:`~lightning_args.sweep.status.ended_line`)."""
        frozen = compat.storage(study).get_trial(compat.trial_id(trial))
        status = self._status(study)
        if self._view is not None:
            self._view.update(status)  # the table agrees with the line
        level = logging.WARNING if frozen.state == TrialState.FAIL else logging.INFO
        _log.log(level, "%s", ended_line(frozen, status, _job_log(ret)))

    def _status(self, study: optuna.Study) -> StudyStatus:
        return status_of(
            study.get_trials(deepcopy=False),
            total=self.total,
            minimize=minimizing(study),
            started=self._started,
            now=time.time(),
        )

    def _launch(self, trial: optuna.trial.Trial, overrides: list[str]) -> JobReturn:
        try:
            with self._launch_lines.launching([_named(trial)]):
                (ret,) = self.launcher.launch(
                    [self._job(trial, overrides)], initial_job_idx=trial.number
                )
        except Exception as error:  # the launcher itself failed (e.g. submission refused)
            ret = failed_job(overrides, error)
        return ret

    def _job(self, trial: optuna.trial.Trial, overrides: list[str]) -> list[str]:
        """The trial's overrides plus what the job needs from the sweep (its directory, its
        trial), as Hydra overrides that stay out of the job's task overrides."""
        link = TrialLink(
            storage=self.storage,
            study_name=self.study_name,
            trial_id=compat.trial_id(trial),
            number=trial.number,
            n_objectives=len(self.directions),
            pruner=self._pruner_config,
        )
        # The sweep directory travels as a literal: a job re-composes its config, and an
        # interpolated one (the default names it after the command) would follow the job's
        # overrides instead of the sweep's.
        sweep_dir = str(self.sweep_dir).replace("'", "\\'")
        return [*overrides, f"hydra.sweep.dir='{sweep_dir}'", link.to_override()]

    # --- helpers ----------------------------------------------------------------------------

    def _workers(self) -> int:
        if self.settings.n_jobs is None:
            return launcher_parallelism(
                self.config.hydra.launcher, in_process=self.in_process, plugin=self.launcher
            )
        n_jobs = max(1, self.settings.n_jobs)
        if n_jobs > 1 and self.in_process:
            _log.warning(
                "hydra.sweeper.n_jobs=%d with the basic launcher, which runs jobs one at a time "
                "in this process: trials run one at a time. For parallel trials add "
                "hydra/launcher=joblib (or a submitit launcher).",
                n_jobs,
            )
            return 1
        return n_jobs

    def _save_multirun_config(self) -> None:
        self.sweep_dir.mkdir(parents=True, exist_ok=True)
        path = self.sweep_dir / "multirun.yaml"
        if not path.exists():  # a resumed sweep keeps the first one
            atomic_write(path, OmegaConf.to_yaml(self.config))  # sweepers may start together


def _named(trial: optuna.trial.Trial) -> tuple[int, str]:
    """A trial as its launch line names it: its number and sampled values."""
    return trial.number, describe_params(trial.params)


def _job_log(ret: JobReturn) -> Path | None:
    """The log file a job's output went to; ``None`` for a job that never ran (its launcher
    failed)."""
    hydra = getattr(ret.hydra_cfg, "hydra", None) if ret.hydra_cfg is not None else None
    return job_log(hydra) if hydra is not None else None


def _by_key(lines: list[str]) -> dict[str, str]:
    """Override lines by their key, as :meth:`ComposedSpace.option_params` takes them."""
    return {line.split("=", 1)[0]: line for line in lines}
