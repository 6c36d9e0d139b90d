"""The sweep: an Optuna study driven from the sweeper process, trials run by Hydra's launcher.

    parse the search space -> check it composes -> open (or resume) the study
    -> run trials, ``n_jobs`` at a time, each as soon as a slot frees -> record each outcome
    -> write the summary and plots

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
COMPLETE, PRUNED or RUNNING trial are not launched again (:meth:`OptunaSweep._claim_distinct`).
"""

from __future__ import annotations

import logging
import math
import os
import socket
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from hydra.core.plugins import Plugins
from hydra.core.utils import JobReturn, JobStatus
from hydra.errors import ConfigCompositionException, MissingConfigException
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict, read_write
from optuna.trial import TrialState

from hydra_plugins.lightning_args_optuna.config import Direction, SweeperConfig
from lightning_args._compat import optuna as compat
from lightning_args._compat.hydra import failed_job, job_error
from lightning_args._util.atomic import atomic_write
from lightning_args._util.flat import flatten
from lightning_args.errors import ConfigValueError, SearchSpaceError, StorageError, SweepError
from lightning_args.run.explain import translate
from lightning_args.run.record import process_alive
from lightning_args.sweep import report
from lightning_args.sweep.attrs import (
    DUPLICATE,
    ERROR,
    HEARTBEAT,
    HOST,
    INTERRUPTED,
    OVERRIDES,
    PID,
)
from lightning_args.sweep.names import study_name
from lightning_args.sweep.sampling import ContinuingSampler
from lightning_args.sweep.space import (
    ConfigKey,
    Param,
    Space,
    config_key,
    finite_values,
    parse,
    suggest,
)
from lightning_args.sweep.storage import budget_lock, open_storage
from lightning_args.sweep.trial import TrialLink

_log = logging.getLogger(__name__)

_FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
# A new trial must not repeat the values of one in these states (a FAIL may be retried).
_TAKEN = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
_MAX_LISTED = 10_000  # a finite space with more configurations is not listed (nor checked)


@dataclass
class _Progress:
    """What the trial threads share (under ``lock``)."""

    allowed_failures: float
    failed: int = 0
    stop: bool = False
    returns: list[tuple[int, JobReturn]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    running: dict[int, optuna.trial.Trial] = field(default_factory=dict)
    ended: str | None = None  # why no new trial starts (the space is exhausted), said once


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
        _check_settings(settings)  # before anything is opened or made
        self.sweep_dir = _pin_sweep_dir(config)
        self.launcher: Launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )
        self.in_process = type(self.launcher).__name__ == "BasicLauncher"
        self.directions = _directions(self.settings.direction)
        self.study_name: str = self.settings.study_name or study_name(
            str(config.hydra.job.name), [str(o) for o in config.hydra.overrides.task]
        )
        self.storage: str = self.settings.storage or str(self.sweep_dir / "study.journal")
        self.total = self.settings.n_trials  # the study's, shared by all its sweepers
        self._backend: optuna.storages.BaseStorage | None = None  # set by _open_study
        self._pruner_config: dict[str, Any] = _container(self.settings.pruner)
        self._choices_cache: dict[tuple[str, ...], dict[str, str]] = {}
        self._option_spaces: dict[tuple[str, str], Space | None] = {}
        self._groups: dict[str, bool] = {}
        # Every configuration of a finite search space, by its key (set by run), or None: some
        # parameter is continuous, or there are too many to list.
        self._configurations: dict[ConfigKey, dict[str, Any]] | None = None

    # --- the lifecycle --------------------------------------------------------------------

    def run(self, arguments: list[str]) -> list[list[JobReturn]]:
        base, space = self._space(arguments)
        self._check(base, space)
        study = self._open_study()
        if not space.params and not self._option_params(base, {}):
            self.total = 1  # nothing to tune: one run is the answer
        else:
            self._configurations = self._finite_space(base, space)
        with self._budget_lock():
            done, running = _tally(self._requeue_interrupted(study))
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
        progress = _Progress(
            allowed_failures=self.settings.max_failure_rate * self.settings.n_trials,
        )
        beating = self._heartbeats(study, progress)
        try:
            self._run_trials(study, base, space, progress)
        except BaseException:
            self._interrupt(study, progress)
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

    def _run_trials(
        self, study: optuna.Study, base: list[str], space: Space, progress: _Progress
    ) -> None:
        workers = self._workers()
        if self.settings.batched:
            self._batch_loop(study, base, space, progress, workers)
            return
        if workers == 1:
            self._trial_loop(study, base, space, progress)
            return
        errors: list[BaseException] = []

        def loop() -> None:
            try:
                self._trial_loop(study, base, space, progress)
            except BaseException as error:  # surfaced in the main thread below
                errors.append(error)
                with progress.lock:
                    progress.stop = True

        threads = [threading.Thread(target=loop, daemon=True) for _ in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            while thread.is_alive():
                thread.join(timeout=0.5)  # a bare join() would not let Ctrl-C through
        if errors:
            raise errors[0]

    def _trial_loop(
        self, study: optuna.Study, base: list[str], space: Space, progress: _Progress
    ) -> None:
        while True:
            with progress.lock:
                if progress.stop:
                    return
                claimed = self._claim_distinct(study, base, space, 1, progress)
                if not claimed:
                    return
                ((trial, overrides),) = claimed
            ret = self._launch(trial, overrides)
            with progress.lock:
                self._record(study, trial, ret, progress)

    def _batch_loop(
        self, study: optuna.Study, base: list[str], space: Space, progress: _Progress, size: int
    ) -> None:
        """``batched=true``: ``size`` trials per launch; a batch waits for its slowest trial.

        Runs in the main thread, but the heartbeat thread reads ``progress`` meanwhile: changes
        are made under ``progress.lock``, as in :meth:`_trial_loop`, and the launch outside it.
        """
        while True:
            with progress.lock:
                if progress.stop:
                    return
                claimed = self._claim_distinct(study, base, space, size, progress)
            if not claimed:
                return
            trials = [trial for trial, _ in claimed]
            jobs = [self._job(trial, overrides) for trial, overrides in claimed]
            # Consecutive numbers (asked in a row, under the budget lock): job index = trial
            # number holds, unless a re-queued trial or a skipped duplicate was among them.
            rets = self.launcher.launch(jobs, initial_job_idx=trials[0].number)
            with progress.lock:
                for trial, ret in zip(trials, rets, strict=True):
                    self._record(study, trial, ret, progress)

    def _record(
        self, study: optuna.Study, trial: optuna.trial.Trial, ret: JobReturn, progress: _Progress
    ) -> None:
        """Tell the study how a trial ended; stop the sweep once too many failed."""
        del progress.running[trial.number]
        progress.returns.append((trial.number, ret))
        try:
            if compat.storage(study).get_trial(compat.trial_id(trial)).state != TrialState.RUNNING:
                raise optuna.exceptions.UpdateFinishedTrialError(trial.number)
            state = self._tell(study, trial, ret)
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

    def _claim_distinct(
        self, study: optuna.Study, base: list[str], space: Space, want: int, progress: _Progress
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
                overrides = self._trial_overrides(trial, base, space)
                earlier = self._duplicate_of(study, trial)
                if earlier is None:
                    out.append((trial, overrides))
                    repeats = 0
                    continue
                self._close_duplicate(study, trial, earlier, progress)
                repeats += 1
            if repeats > self.settings.max_redraws:
                queue = self._unexplored(study)
                if queue is None:
                    progress.ended = (
                        f"the sampler suggested values that earlier trials have {repeats} times "
                        "in a row (hydra.sweeper.max_redraws="
                        f"{self.settings.max_redraws}): this sweeper starts no more trials"
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

    def _duplicate_of(self, study: optuna.Study, trial: optuna.trial.Trial) -> int | None:
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
        self, study: optuna.Study, trial: optuna.trial.Trial, earlier: int, progress: _Progress
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

    def _unexplored(self, study: optuna.Study) -> dict[str, Any] | None:
        """A configuration of the finite space that no COMPLETE, PRUNED or RUNNING trial has
        (the first in the space's order), or ``None``."""
        if self._configurations is None:
            return None
        taken = _taken_keys(study.get_trials(deepcopy=False))
        return next((v for k, v in self._configurations.items() if k not in taken), None)

    def _claim(
        self,
        study: optuna.Study,
        want: int,
        progress: _Progress,
        queue: dict[str, Any] | None = None,
    ) -> list[optuna.trial.Trial]:
        """Up to ``want`` new trials for this sweeper, within what the study has left.

        Under the budget lock, so that sweepers sharing the study neither overshoot
        ``n_trials`` nor take a dead sweeper's trial twice. Counting reads every trial from the
        storage, which also warms an RDB storage's cache before the trials are used. A finite
        search space whose every configuration ran (or runs) has nothing left: the sweep ends
        there, saying so (``progress.ended``). ``queue``: values to queue and ask first.
        """
        with self._budget_lock():
            stored = self._requeue_interrupted(study)
            done, running = _tally(stored)
            left = self.total - done - running
            if left > 0 and self._exhausted(stored, progress, done):
                return []
            if queue is not None and left > 0:
                study.enqueue_trial(queue, skip_if_exists=False)
            trials = [study.ask() for _ in range(min(want, left))]
            for trial in trials:  # ours, while we live (see _requeue_interrupted)
                # PID first: a sweeper that sees our host on the trial must see our PID too,
                # or it would take the trial for a dead one (storages without a budget lock).
                trial.set_user_attr(PID, os.getpid())
                trial.set_user_attr(HOST, socket.gethostname())
                if self.settings.heartbeat_interval:
                    trial.set_user_attr(HEARTBEAT, time.time())
        return trials

    def _exhausted(
        self, trials: Sequence[optuna.trial.FrozenTrial], progress: _Progress, done: int
    ) -> bool:
        """Whether every configuration of a finite space ran or runs (then said, once)."""
        if self._configurations is None:
            return False
        size = len(self._configurations)
        if len(_taken_keys(trials) & self._configurations.keys()) < size:
            return False
        progress.ended = (
            f"the search space is exhausted: each of its {size} configuration(s) ran or runs, "
            f"{done} of n_trials={self.total} trials count; the sweep ends there"
        )
        _log.warning("The %s", progress.ended.removeprefix("the "))
        return True

    def _heartbeats(self, study: optuna.Study, progress: _Progress) -> threading.Event:
        """Mark this sweeper's running trials as alive every ``heartbeat_interval`` seconds,
        until the returned event is set."""
        stop = threading.Event()
        interval = self.settings.heartbeat_interval
        if not interval:
            return stop

        storage = compat.storage(study)

        def beat() -> None:
            while not stop.wait(interval):
                with progress.lock:
                    running = list(progress.running.values())
                for trial in running:
                    try:
                        storage.set_trial_user_attr(compat.trial_id(trial), HEARTBEAT, time.time())
                    except Exception:  # finished meanwhile, or a storage hiccup: next beat
                        _log.debug("no heartbeat for trial %d", trial.number, exc_info=True)

        threading.Thread(target=beat, name="sweeper-heartbeat", daemon=True).start()
        return stop

    def _budget_lock(self) -> AbstractContextManager[None]:
        assert self._backend is not None, "the study is opened first"
        return budget_lock(self._backend, self.storage, self.study_name)

    # --- one trial ------------------------------------------------------------------------

    def _trial_overrides(
        self, trial: optuna.trial.Trial, base: list[str], space: Space
    ) -> list[str]:
        """Sample the trial's values (define-by-run) and return the job's task overrides."""
        chosen: dict[str, str] = {}
        for param in space.params:
            chosen[param.key] = param.override(suggest(trial, param))
        taken = space.names()
        # Options chosen by the values so far may make more keys tunable; those may choose
        # further options (a depth of nested groups), hence the loop.
        for _ in range(8):
            extra = [p for p in self._option_params(base, chosen) if p.name not in taken]
            if not extra:
                break
            for param in extra:
                chosen[param.key] = param.override(suggest(trial, param))
                taken.add(param.name)
        overrides = [*base, *space.fixed, *chosen.values()]
        trial.set_user_attr(OVERRIDES, overrides)
        return overrides

    def _launch(self, trial: optuna.trial.Trial, overrides: list[str]) -> JobReturn:
        try:
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

    def _tell(self, study: optuna.Study, trial: optuna.trial.Trial, ret: JobReturn) -> TrialState:
        error = job_error(ret)
        if ret.status == JobStatus.FAILED:
            if isinstance(error, optuna.TrialPruned):
                study.tell(trial, state=TrialState.PRUNED)
                _log.info("Trial %d pruned (%s)", trial.number, error)
                return TrialState.PRUNED
            return self._fail(study, trial, f"{type(error).__name__}: {error}")
        values = _values(ret.return_value, len(self.directions))
        if isinstance(values, str):
            return self._fail(study, trial, values)
        study.tell(trial, values)
        _log.info(
            "Trial %d finished: %s (%s)",
            trial.number,
            ", ".join(f"{v:.6g}" for v in values),
            " ".join(trial.user_attrs.get(OVERRIDES, [])) or "no overrides",
        )
        return TrialState.COMPLETE

    def _fail(self, study: optuna.Study, trial: optuna.trial.Trial, error: str) -> TrialState:
        trial.set_user_attr(ERROR, error[:2000])
        study.tell(trial, state=TrialState.FAIL)
        _log.warning("Trial %d failed: %s", trial.number, error.splitlines()[0] if error else "")
        return TrialState.FAIL

    # --- the study --------------------------------------------------------------------------

    def _open_study(self) -> optuna.Study:
        storage = self._backend = open_storage(self.storage)
        node = self.settings.sampler
        # Per-trial random streams: a resumed sweep continues the sampler's sequence instead of
        # starting it over, and sweepers sharing the study draw distinct values (sampling.py).
        sampler = ContinuingSampler(_sampler(node), seed=_seed(node))
        try:
            existing = optuna.load_study(study_name=self.study_name, storage=storage)
        except KeyError:
            existing = None
        if existing is not None:
            stored = [d.name.lower() for d in existing.directions]
            if stored != self.directions:
                raise StorageError(
                    f"study {self.study_name!r} in {self.storage} was created with direction "
                    f"{stored}, not {self.directions}. Fix: hydra.sweeper.direction={stored} "
                    "to continue it, or hydra.sweeper.study_name=<new name> for a new study"
                )
        return optuna.create_study(
            study_name=self.study_name,
            storage=storage,
            sampler=sampler,
            pruner=instantiate(self._pruner_config),
            directions=[optuna.study.StudyDirection[d.upper()] for d in self.directions],
            load_if_exists=True,
        )

    def _requeue_interrupted(self, study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
        """Trials left RUNNING by a sweeper that died: mark them failed, re-queue their values.

        A sweeper on this host is dead when its process is; one on another machine (a
        distributed sweep) when its heartbeat is older than ``grace_period``. Checked before
        every new trial (under the budget lock), so a dead sweeper's trials go to those still
        running. Returns the study's trials, those re-queued now marked interrupted.
        """
        host, now = socket.gethostname(), time.time()
        storage = compat.storage(study)
        trials = study.get_trials(deepcopy=False)
        for i, trial in enumerate(trials):
            if trial.state != TrialState.RUNNING or not self._dead(trial.user_attrs, host, now):
                continue
            if trial.user_attrs.get(DUPLICATE) is not None:
                # Closing a duplicate was under way: it never ran, nothing to queue again.
                storage.set_trial_state_values(compat.trial_id(trial), TrialState.FAIL)
            else:
                storage.set_trial_user_attr(compat.trial_id(trial), INTERRUPTED, True)
                storage.set_trial_state_values(compat.trial_id(trial), TrialState.FAIL)
                study.enqueue_trial(trial.params, skip_if_exists=False)
                _log.info("Trial %d was interrupted: its values are queued again", trial.number)
            trials[i] = storage.get_trial(compat.trial_id(trial))
        return trials

    def _dead(self, attrs: dict[str, Any], host: str, now: float) -> bool:
        """Whether the sweeper that runs a RUNNING trial with these user attributes is gone."""
        if attrs.get(INTERRUPTED):
            return False
        if attrs.get(HOST) == host:
            return not process_alive(attrs.get(PID))
        heartbeat = attrs.get(HEARTBEAT)
        return heartbeat is not None and now - float(heartbeat) > self.settings.grace_period

    def _interrupt(self, study: optuna.Study, progress: _Progress) -> None:
        """On Ctrl-C or a crash: running trials become interrupted failures, values re-queued."""
        # Trial threads may still be claiming or recording: wait for the lock, though not for
        # long (a thread may be waiting for another sweeper's budget lock while holding it).
        locked = progress.lock.acquire(timeout=5.0)
        try:
            running = list(progress.running.values())
        finally:
            if locked:
                progress.lock.release()
        for trial in running:
            try:
                compat.storage(study).set_trial_user_attr(compat.trial_id(trial), INTERRUPTED, True)
                study.tell(trial, state=TrialState.FAIL)
                study.enqueue_trial(trial.params, skip_if_exists=False)
            except Exception:  # best effort while going down; the next start re-checks
                _log.debug("could not release trial %d", trial.number, exc_info=True)

    # --- the search space -------------------------------------------------------------------

    def _space(self, arguments: list[str]) -> tuple[list[str], Space]:
        """Split the command line into fixed overrides and searched ones; join ``params``."""
        from_params = parse(_container(self.settings.params) or {}, where="hydra.sweeper.params")
        from_line = parse(arguments, where="command line")
        params = {p.name: p for p in from_params.params}
        params.update({p.name: p for p in from_line.params})  # the command line wins
        overridden = {p.name for p in from_line.params} | {_key(f) for f in from_line.fixed}
        fixed = [f for f in from_params.fixed if _key(f) not in overridden]
        params = {k: p for k, p in params.items() if k not in {_key(f) for f in from_line.fixed}}
        return list(from_line.fixed), Space(tuple(params.values()), tuple(fixed))

    def _check(self, base: list[str], space: Space) -> None:
        """Compose the config with every choice (and each interval's bounds) before any job,
        so a key that is not in the config or an option that does not exist fails now."""
        first = {p.key: p.override(_first(p)) for p in space.params}
        probes = [first]
        for param in space.params:
            for value in _probe_values(param)[1:]:
                probes.append({**first, param.key: param.override(value)})
        # The options' own spaces, as far as the first choices reach them.
        declared = [p for p in self._option_params(base, first) if p.name not in space.names()]
        if declared:
            probes.append({**first, **{p.key: p.override(_first(p)) for p in declared}})
        for probe in probes:
            try:
                self._choices([*base, *space.fixed, *probe.values()])
            except (ConfigCompositionException, MissingConfigException) as error:
                readable = translate(error)
                if readable is None:
                    raise
                raise type(readable)(
                    f"the search space does not fit the config: {readable}\n  (while checking "
                    f"the trial {' '.join(probe.values())})"
                ) from None

    def _finite_space(
        self, base: list[str], space: Space
    ) -> dict[ConfigKey, dict[str, Any]] | None:
        """Every configuration a trial can have, by its key, when the space is finite (all
        ``choice``/``range``, the options' spaces included) and has at most
        :data:`_MAX_LISTED` of them; else ``None``.

        Follows :meth:`_trial_overrides`: the searched keys first, then the keys that the chosen
        options declare, a level of nested options at a time.
        """
        found: dict[ConfigKey, dict[str, Any]] = {}

        def walk(
            chosen: dict[str, str],
            values: dict[str, Any],
            dists: dict[str, optuna.distributions.BaseDistribution],
            pending: list[Param],
            taken: set[str],
            level: int,
        ) -> bool:
            if not pending:
                extra = [] if level >= 8 else self._option_params(base, chosen)
                extra = [p for p in extra if p.name not in taken]
                if extra:
                    names = taken | {p.name for p in extra}
                    return walk(chosen, values, dists, extra, names, level + 1)
                found[config_key(values, dists)] = values
                return len(found) <= _MAX_LISTED
            param, rest = pending[0], pending[1:]
            options = finite_values(param.distribution, _MAX_LISTED)
            if options is None:
                return False
            dists = {**dists, param.name: param.distribution}
            for value in options:
                more = {**chosen, param.key: param.override(value)}
                if not walk(more, {**values, param.name: value}, dists, rest, taken, level):
                    return False
            return True

        listed = walk({}, {}, {}, list(space.params), space.names(), 0)
        return found if listed else None

    def _choices(self, overrides: list[str]) -> dict[str, str]:
        """The config-group choices of a composed trial config (memoised)."""
        key = tuple(overrides)
        if key not in self._choices_cache:
            cfg = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
            choices = OmegaConf.to_container(cfg.hydra.runtime.choices)
            assert isinstance(choices, dict)
            self._choices_cache[key] = {str(k): v for k, v in choices.items() if isinstance(v, str)}
        return self._choices_cache[key]

    def _option_params(self, base: list[str], chosen: dict[str, str]) -> list[Param]:
        """Parameters declared by the options this trial uses (``search_space/<group>/<opt>``)."""
        group_root = self.settings.search_space_group
        if not group_root:
            return []
        group_overrides = [o for k, o in chosen.items() if self._is_group(k)]
        params: list[Param] = []
        for group, option in self._choices([*base, *group_overrides]).items():
            if group.startswith("hydra/"):
                continue
            space = self._option_space(group_root, group, option)
            if space is not None:
                params.extend(space.params)
        return params

    def _is_group(self, key: str) -> bool:
        """Whether an override key chooses a config group option (``model/encoder``, ``model``)
        rather than setting a value (``model.width``)."""
        name = key.lstrip("+~").split("@")[0]
        if name not in self._groups:
            loader = self.hydra_context.config_loader
            self._groups[name] = "." not in name and bool(loader.get_group_options(name))
        return self._groups[name]

    def _option_space(self, root: str, group: str, option: str) -> Space | None:
        cache_key = (group, option)
        if cache_key not in self._option_spaces:
            self._option_spaces[cache_key] = _load_option_space(
                self.hydra_context, f"{root}/{group.split('@')[0]}", option, group
            )
        return self._option_spaces[cache_key]

    # --- helpers ----------------------------------------------------------------------------

    def _workers(self) -> int:
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


#: Sweeper settings with a range: (key, in range?, what is expected, a value that works).
_RANGES: tuple[tuple[str, Callable[[Any], bool], str, str], ...] = (
    ("n_trials", lambda v: isinstance(v, int) and v >= 1, "a whole number >= 1", "20"),
    ("n_jobs", lambda v: isinstance(v, int) and v >= 1, "a whole number >= 1", "1"),
    ("max_failure_rate", lambda v: 0 <= v <= 1, "a fraction from 0 to 1", "0.25"),
    ("heartbeat_interval", lambda v: v is None or v > 0, "seconds > 0, or null", "30"),
    ("grace_period", lambda v: v > 0, "seconds > 0", "300"),
    ("max_redraws", lambda v: isinstance(v, int) and v >= 0, "a whole number >= 0", "10"),
)


def _check_settings(settings: SweeperConfig) -> None:
    """One message for a sweeper setting out of its range (the schema checked its type)."""
    for key, in_range, expected, example in _RANGES:
        value = getattr(settings, key)
        if not in_range(value):
            raise ConfigValueError(
                f"hydra.sweeper.{key}={value!r}: expected {expected}. "
                f"Fix: hydra.sweeper.{key}={example}"
            )


def _load_option_space(
    hydra_context: HydraContext, group: str, option: str, choice_key: str
) -> Space | None:
    """``<root>/<group>/<option>.yaml``, its keys relative to where the option's node goes."""
    loader = hydra_context.config_loader
    if option not in loader.get_group_options(group):
        return None
    path = f"{group}/{option}"
    for source in loader.get_sources():
        if source.is_config(path):
            result = source.load_config(path)
            break
    else:
        return None
    package = result.header.get("package")
    if package in (None, "_group_"):
        # The option's own package: its group path, unless the choice moved it (group@pkg).
        group_path, _, moved = choice_key.partition("@")
        package = moved or group_path.replace("/", ".")
    prefix = "" if package == "_global_" else package
    declared = OmegaConf.to_container(result.config)
    entries = flatten(declared, prefix) if declared else {}  # an empty file declares nothing
    return parse(entries, where=f"{path}.yaml")


def _pin_sweep_dir(config: DictConfig) -> Path:
    """Resolve ``hydra.sweep.dir`` once, as an absolute path, and store it in the config.

    Jobs then inherit the literal path instead of re-resolving an interpolation (which may
    depend on the job's own overrides or the time).
    """
    sweep_dir = Path(str(config.hydra.sweep.dir)).absolute()
    with read_write(config.hydra.sweep), open_dict(config.hydra.sweep):
        config.hydra.sweep.dir = str(sweep_dir)
    return sweep_dir


def _directions(direction: Any) -> list[str]:
    raw = (
        list(direction)
        if isinstance(direction, Sequence | list) and not isinstance(direction, str)
        else [direction]
    )
    out = []
    for item in raw:
        try:
            out.append(Direction(getattr(item, "value", item)).value)
        except ValueError:
            raise SearchSpaceError(
                f"hydra.sweeper.direction={direction!r}: expected minimize or maximize (or a "
                "list of them for a multi-objective study). Fix: "
                "hydra.sweeper.direction=maximize"
            ) from None
    return out


def _sampler(node: Any) -> optuna.samplers.BaseSampler:
    with warnings.catch_warnings():
        # TPE's multivariate/group options are "experimental" in Optuna since 2.2: still useful.
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler = instantiate(node) if isinstance(node, DictConfig) else node
    if not isinstance(sampler, optuna.samplers.BaseSampler):
        raise SearchSpaceError(
            f"hydra.sweeper.sampler made a {type(sampler).__name__}, not an Optuna sampler. "
            "Fix: hydra/sweeper/sampler=tpe (or random, cmaes, nsgaii, qmc)"
        )
    return sampler


def _seed(node: Any) -> int | None:
    """The sampler config's ``seed`` (``None``: unseeded, or a sampler object)."""
    seed = node.get("seed") if isinstance(node, DictConfig) else None
    return None if seed is None else int(seed)


def _container(node: Any) -> Any:
    return OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node


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


def _counts(trial: optuna.trial.FrozenTrial) -> bool:
    """Whether a stored trial counts toward ``n_trials``: finished, and neither an interruption
    nor a skipped duplicate."""
    return (
        trial.state in _FINISHED
        and not trial.user_attrs.get(INTERRUPTED)
        and trial.user_attrs.get(DUPLICATE) is None
    )


def _tally(trials: Sequence[optuna.trial.FrozenTrial]) -> tuple[int, int]:
    """The trials that count toward ``n_trials``, and those running (any sweeper's): together
    what the study has used of its budget."""
    done = sum(1 for t in trials if _counts(t))
    running = sum(
        1
        for t in trials
        if t.state == TrialState.RUNNING
        and not t.user_attrs.get(INTERRUPTED)
        and t.user_attrs.get(DUPLICATE) is None
    )
    return done, running


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


def _first(param: Param) -> Any:
    return _probe_values(param)[0]


def _probe_values(param: Param) -> list[Any]:
    dist = param.distribution
    if isinstance(dist, optuna.distributions.CategoricalDistribution):
        return list(dist.choices)
    low, high = dist.low, dist.high  # type: ignore[attr-defined]
    return [low, high]


def _key(line: str) -> str:
    return line.split("=", 1)[0].lstrip("+~")
