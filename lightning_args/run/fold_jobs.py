"""Where the folds of a k-fold run train with ``cv.parallel=true``: each in a process of its own.

A k-fold run started on its own (``python train.py +cv=kfold cv.parallel=true``) trains every
fold it has left at once:

- on this machine, as joblib's worker processes (loky): ``hydra.launcher.n_jobs`` at a time
  with ``launcher=joblib`` (counted as joblib does: -1 is every core), otherwise one per core,
  never more than there are folds;
- as Slurm jobs with ``launcher=slurm`` (local submitit jobs with ``launcher=submitit_local``),
  each asking for what ``hydra.launcher`` says (partition, time, CPUs, GPUs, memory, ...), with
  submitit's files in ``<run dir>/.submitit/``. A fold's job that Slurm preempts or times out is
  requeued and continues from its checkpoint, as a sweep's jobs do
  (:mod:`lightning_args.callbacks.requeue`).

A sweep's trial (any job of a multirun) is already a launcher's job: its folds train one after
another in it, whatever ``cv.parallel`` says. ``lightning-args resume`` of a parallel k-fold run
trains its unfinished folds as worker processes on the machine it runs on.

Each fold writes its log records and its output to ``folds/<k>/<job name>.log``; the k-fold
run's own log says where each fold runs, and its record is brought up to date as each fold
ends. A fold that fails leaves its message in its record; the others train to their end, and
the k-fold run then fails naming every failed fold.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from lightning_args._compat.hydra import SUBMITIT_LAUNCHERS, submitit_executor
from lightning_args._util.output import logged_into
from lightning_args.config.objective import Objective
from lightning_args.errors import JobError
from lightning_args.run.explain import headline

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FoldResult:
    """How one fold's job (``fold`` ``None``: the refit's) ended: its objective, or the first
    line of its error."""

    fold: int | None
    value: Objective | None
    error: str | None = None

    @property
    def label(self) -> str:
        return "refit" if self.fold is None else f"fold {self.fold}"


@dataclass(frozen=True)
class FoldJob:
    """One fold's training, shipped (pickled) to a worker process or a Slurm job."""

    cfg: DictConfig  # the fold's config: cv.fold (the refit: cv.all_samples) and paths.run_dir
    train: Callable[[DictConfig], Objective]
    log_name: str

    @property
    def fold(self) -> int | None:
        return None if self.cfg.cv.fold is None else int(self.cfg.cv.fold)

    @property
    def log(self) -> Path:
        return Path(str(self.cfg.paths.run_dir)) / self.log_name

    def __call__(self) -> FoldResult:
        with logged_into(self.log):
            try:
                return FoldResult(self.fold, self.train(self.cfg))
            except Exception as error:  # its record holds the whole message; the parent names it
                return FoldResult(self.fold, None, headline(error))

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        """submitit, at a preemption or a time limit: requeue this fold's job as it was."""
        import submitit

        return submitit.helpers.DelayedSubmission(self, *args, **kwargs)


def in_a_multirun() -> bool:
    """Whether this process is a job of a multirun (a sweep's trial): already placed by a
    launcher, so its folds train in it, one after another."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def train_in_parallel(
    jobs: Sequence[FoldJob], run_dir: Path, done: Callable[[FoldResult], None]
) -> list[FoldResult]:
    """Train ``jobs`` at once where the app's launcher says (see the module's docstring), call
    ``done`` as each ends, and return their results in fold order. Raises :class:`JobError`
    naming every fold that failed, once all have ended."""
    launcher = _launcher()
    target = str(launcher.get("_target_", ""))
    if target in SUBMITIT_LAUNCHERS:
        ended = _as_submitit_jobs(jobs, launcher, run_dir)
    else:
        n_jobs = launcher.get("n_jobs")  # a joblib launcher's, ours (launcher=joblib) included
        ended = _as_worker_processes(jobs, n_jobs if isinstance(n_jobs, int) and n_jobs else -1)
    results: list[FoldResult] = []
    for result in ended:
        results.append(result)
        done(result)
    failed = sorted((r for r in results if r.error is not None), key=_order)
    if failed:
        where = {job.fold: job.log for job in jobs}
        lines = "; ".join(
            f"{r.label}: {r.error} (its log: {where[r.fold].relative_to(run_dir)})" for r in failed
        )
        raise JobError(
            f"{len(failed)} of {len(jobs)} jobs failed: {lines}. The others are kept. Fix: see "
            f"the failed job's log and record, then lightning-args resume {run_dir}"
        )
    return sorted(results, key=_order)


def _order(result: FoldResult) -> int:
    return -1 if result.fold is None else result.fold


def _launcher() -> dict[str, Any]:
    """The app's resolved ``hydra.launcher`` node; empty outside a Hydra app."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return {}
    node = OmegaConf.to_container(HydraConfig.get().launcher, resolve=True)
    if not isinstance(node, dict):
        return {}
    node.pop("submitit_folder", None)  # the fold jobs' files go in the run directory
    return {str(k): v for k, v in node.items()}


def _folds(jobs: Sequence[FoldJob]) -> str:
    return ", ".join("the refit" if job.fold is None else str(job.fold) for job in jobs)


def _as_worker_processes(jobs: Sequence[FoldJob], n_jobs: int) -> Iterator[FoldResult]:
    """``jobs`` in joblib's worker processes: ``n_jobs`` as joblib counts them (-1: one per
    core), never more than there are jobs."""
    from joblib import Parallel, delayed, effective_n_jobs

    from lightning_args._compat.joblib import release_workers

    workers = min(effective_n_jobs(n_jobs), len(jobs))

    _log.info(
        "Training folds %s at once, in %d worker processes on this machine (each one's log: "
        "folds/<k>/%s)",
        _folds(jobs),
        workers,
        jobs[0].log_name,
    )
    parallel = Parallel(n_jobs=workers, backend="loky", return_as="generator_unordered")
    try:
        yield from parallel(delayed(job)() for job in jobs)
    finally:
        release_workers()  # torch and Lightning in each: let them exit while the run goes on


def _as_submitit_jobs(
    jobs: Sequence[FoldJob], launcher: dict[str, Any], run_dir: Path
) -> Iterator[FoldResult]:
    import submitit

    executor = submitit_executor(launcher, str(run_dir / ".submitit" / "%j"))
    with executor.batch():  # one job array, as the launcher submits a sweep's jobs
        submitted = [executor.submit(job) for job in jobs]
    _log.info(
        "Training folds %s at once, as %s jobs %s (each one's log: folds/<k>/%s)",
        _folds(jobs),
        SUBMITIT_LAUNCHERS[str(launcher["_target_"])],
        ", ".join(str(j.job_id) for j in submitted),
        jobs[0].log_name,
    )
    by_job = {str(j.job_id): job for j, job in zip(submitted, jobs, strict=True)}
    for ended in submitit.helpers.as_completed(submitted, poll_frequency=1):
        try:
            yield ended.result()
        except Exception as error:  # the job itself died (killed, out of memory, cancelled)
            yield FoldResult(by_job[str(ended.job_id)].fold, None, headline(error))
