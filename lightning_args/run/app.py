"""The app entry: ``@lightning_args.main`` around ``hydra.main``, and :func:`train`, the lifecycle.

:func:`train` reads like the run it performs::

    check the config -> open the run record -> seed -> build -> fit -> test -> close the record

and returns the objective value, so any Hydra sweeper can optimise it.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import random
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from omegaconf import DictConfig, OmegaConf

from lightning_args._compat.hydra import (
    fast_help,
    flags_first,
    friendly_errors,
    full_error,
    shown_configs,
)
from lightning_args.config.objective import Objective, primary
from lightning_args.config.store import register
from lightning_args.errors import (
    ConfigValueError,
)
from lightning_args.run.confine import is_inside
from lightning_args.run.explain import explain
from lightning_args.run.kfold import cv_of, run_folds
from lightning_args.run.ownership import check_reuse, claimed
from lightning_args.run.preflight import preflight
from lightning_args.run.record import RECORD_NAME, Phase, RunRecord, RunStatus

R = TypeVar("R")
_log = logging.getLogger(__name__)


def main(
    config_path: str | None = "conf",
    config_name: str | None = "config",
    version_base: str | None = "1.3",
) -> Callable[[Callable[[DictConfig], R]], Callable[[], R | None]]:
    """``hydra.main`` with lightning_args' config groups registered and readable errors.

    Every failure prints one message of a few lines naming the key and value (or the file),
    what was expected and the fix, and exits with status 1: errors in the command line or the
    config (unknown key, wrong type, unknown option, missing value, unknown ``_target_``), a
    pre-flight refusal (see :class:`~lightning_args.run.preflight.PreFlight`) and an exception
    of the job itself, from torch, Lightning, Hydra's instantiate, OmegaConf, Optuna, the file
    system or the task's own code (:func:`lightning_args.run.explain.explain`).
    ``HYDRA_FULL_ERROR=1`` shows the traceback.

    Example (``train.py``)::

        import lightning_args

        @lightning_args.main(config_path="conf", config_name="config")
        def main(cfg):
            return lightning_args.train(cfg)

        if __name__ == "__main__":
            main()
    """
    import hydra

    def decorator(task: Callable[[DictConfig], R]) -> Callable[[], R | None]:
        register()
        hydra_main = hydra.main(
            config_path=config_path, config_name=config_name, version_base=version_base
        )(task)

        @functools.wraps(task)
        def entry() -> R | None:
            sys.argv[:] = flags_first(sys.argv)
            with friendly_errors(), fast_help(), shown_configs():
                result: R | None = hydra_main()
            return result

        return entry

    return decorator


def train(cfg: DictConfig) -> Objective:
    """Run one training job from a composed config and return its objective value.

    Seeds everything, builds the module, DataModule and Trainer (:func:`lightning_args.build`),
    fits, tests the best checkpoint (unless ``test=false``) and keeps ``run.json`` in the run
    directory up to date. The objective is ``objective.metric`` at the best checkpoint; with
    ``objective.also`` (a multi-objective sweep) a tuple of it and those metrics' last values.

    Example (in a notebook, outside ``hydra.main``)::

        from hydra import compose, initialize
        with initialize(config_path="conf", version_base="1.3"):
            cfg = compose("config", overrides=["trainer=debug", "paths.run_dir=/tmp/run"])
        value = lightning_args.train(cfg)
    """
    preflight(cfg)
    from lightning.fabric.utilities.rank_zero import rank_zero_only

    run_dir = Path(cfg.paths.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    # One writer per run directory: rank 0 of a multi-process job writes for all ranks.
    if getattr(rank_zero_only, "rank", 0) != 0:
        return _run(cfg, run_dir, writer=False)
    check_reuse(
        run_dir,
        continuing=_continues(cfg, run_dir),
        # Absent from configs stored before the setting existed (a resumed old run).
        overwrite=bool(OmegaConf.select(cfg, "overwrite", default=False)),
    )
    with claimed(run_dir):
        return _run(cfg, run_dir, writer=True)


def _run(cfg: DictConfig, run_dir: Path, *, writer: bool) -> Objective:
    """The run in ``run_dir``: an ordinary one, or a k-fold run (``+cv=kfold``), whose folds
    are runs of their own (:mod:`lightning_args.run.kfold`)."""
    from lightning_args.callbacks.interrupt import interrupted_by
    from lightning_args.callbacks.requeue import JobRequeued

    previous = RunRecord.read(run_dir) if (run_dir / RECORD_NAME).is_file() else None
    ckpt_path = _continue_from(cfg, run_dir, previous)
    lineage = None
    if ckpt_path is None and OmegaConf.select(cfg, "fork.parent", default=None):
        if not writer:
            raise ConfigValueError(
                "fork.parent: a fork trains in one process (its checkpoint is written by the "
                "process that writes the run). Fix: fork on one device, then resume on several"
            )
        from lightning_args.run.fork import start_fork

        ckpt_path, lineage = start_fork(cfg, run_dir)
    seed = cfg.seed if cfg.seed is not None else random.SystemRandom().randrange(2**31)
    if previous is not None and previous.seed is not None and ckpt_path is not None:
        seed = previous.seed  # the run goes on: its random streams come from the checkpoint
    record, resumed = None, None
    if writer:
        record, resumed = _open_record(run_dir, seed, previous, ckpt_path)
        if lineage is not None:  # a forked run's first start
            record.fork = lineage
            record.write(run_dir)
    cv = cv_of(cfg)
    try:
        if cv is not None and cv.is_kfold_run:
            if resumed is not None:  # one process: no ranks to wait for (the folds have theirs)
                resumed()
            value = run_folds(cfg, run_dir, record, train)
        else:
            value = _fit_and_test(cfg, seed, record, ckpt_path, resumed)
    except JobRequeued as requeued:
        if record is not None:
            record.finish(run_dir, RunStatus.REQUEUED, requeued)
        try:
            requeued.hand_over()  # submitit's handler: requeue this job, exit
        except Exception as refused:  # e.g. no requeue left (max_num_timeout): it ends here
            if record is not None:
                record.finish(run_dir, RunStatus.FAILED, refused)
            raise
        raise
    except BaseException as error:
        interrupted = interrupted_by(error, run_dir)
        if interrupted is not None:  # Ctrl-C, SIGTERM: a status, with the way to go on
            if record is not None:
                record.finish(run_dir, RunStatus.INTERRUPTED, interrupted)
            _log.warning("Run interrupted: %s", interrupted)
            if interrupted is error:
                raise
            raise interrupted from None
        if type(error).__name__ == "TrialPruned":  # optuna's; not imported for this
            if record is not None:
                record.finish(run_dir, RunStatus.PRUNED, error)
            raise
        if not isinstance(error, Exception):
            raise
        # The record holds the message the user sees (under HYDRA_FULL_ERROR=1, the traceback
        # ends with it too).
        friendly = explain(error, cfg)
        if record is not None:
            record.finish(run_dir, RunStatus.FAILED, friendly)
        if friendly is error:
            raise
        raise friendly from (error if full_error() else None)
    if record is not None:
        record.finish(run_dir, RunStatus.COMPLETED)
    if record is not None and cv is not None and cv.all_samples:
        metrics = record.metrics.items()
        tested = ", ".join(f"{k}={v:.4f}" for k, v in metrics if k.startswith("test"))
        _log.info("Refit completed: %s. Everything is in %s", tested or "not tested", run_dir)
    elif record is not None and (cv is None or not cv.is_kfold_run):
        _log.info(
            "Run completed: %s=%.4f (objective). Everything is in %s",
            cfg.objective.metric,
            primary(value),
            run_dir,
        )
    return value


def _continues(cfg: DictConfig, run_dir: Path) -> bool:
    """Whether this run continues the one in ``run_dir`` on purpose: from a checkpoint inside
    it (``ckpt_path``, ``lightning-args resume``), or as its requeued job."""
    if cfg.ckpt_path:
        return is_inside(Path(cfg.ckpt_path), run_dir)
    record = run_dir / RECORD_NAME
    return record.is_file() and RunRecord.read(run_dir).status == RunStatus.REQUEUED


def _continue_from(cfg: DictConfig, run_dir: Path, previous: RunRecord | None) -> str | None:
    """``ckpt_path``, or the checkpoint a requeued job left in its run directory."""
    from lightning_args.callbacks.requeue import requeue_checkpoint

    if cfg.ckpt_path:
        return str(cfg.ckpt_path)
    checkpoint = requeue_checkpoint(run_dir, previous.status if previous else None)
    if checkpoint is None:
        return None
    _log.info("Requeued run: continuing from %s", checkpoint)
    return str(checkpoint)


def _open_record(
    run_dir: Path, seed: int, previous: RunRecord | None, ckpt_path: str | None
) -> tuple[RunRecord, Callable[[], None] | None]:
    """A new run's record (written now); or the record of a run continued in its directory,
    with the call that marks it resumed.

    That call must wait until every rank of a multi-process job has read the record: each rank
    decides from it whether to continue from a requeue checkpoint, and one that read the record
    after rank 0 had marked it ``running`` would start over while the others continue.
    """
    if previous is not None and ckpt_path:
        checkpoint = _relative(ckpt_path, str(run_dir)) or ckpt_path
        overrides = _hydra_overrides()
        return previous, lambda: previous.resume(
            run_dir, checkpoint=checkpoint, overrides=overrides
        )
    start = RunRecord.start(run_dir, seed=seed, overrides=_hydra_overrides(), code_dir=_code_dir())
    return start, None


def _fit_and_test(
    cfg: DictConfig,
    seed: int,
    record: RunRecord | None,
    ckpt_path: str | None,
    resumed: Callable[[], None] | None,
) -> Objective:
    import lightning.pytorch as pl
    from lightning.pytorch.callbacks import ModelCheckpoint

    from lightning_args._compat.lightning import quiet_lightning
    from lightning_args.callbacks.finite_loss import FiniteLoss
    from lightning_args.callbacks.interrupt import StopOnInterrupt, signals_given_back
    from lightning_args.callbacks.logged import LoggedMetrics, scalars
    from lightning_args.callbacks.requeue import OnceRanksMeet, RequeueOnSignal
    from lightning_args.config.compile import compile_config
    from lightning_args.instantiate.builder import build
    from lightning_args.modules.compiled import for_training
    from lightning_args.modules.folds import apply_fold

    cv = cv_of(cfg)
    refit = cv is not None and cv.all_samples
    # A run continued in its own directory: its checkpoints are already there.
    quiet_lightning(continuing=bool(ckpt_path), validating=not refit)
    pl.seed_everything(seed, workers=True, verbose=False)
    reporter = _trial_reporter(cfg)
    requeue, stop = RequeueOnSignal(cfg.paths.run_dir), StopOnInterrupt(cfg.paths.run_dir)
    lr = OmegaConf.select(cfg, "optimizer.lr", default=None)
    logged = LoggedMetrics()
    callbacks: list[pl.Callback] = [requeue, stop, FiniteLoss(lr), logged]
    callbacks += [reporter] if reporter else []
    callbacks += [OnceRanksMeet(resumed)] if resumed else []
    timings = _Timings(record)
    with timings.phase(Phase.BUILD):
        built = build(cfg, callbacks=callbacks)
        if cv is not None:  # a fold run of a k-fold run, or its refit
            apply_fold(built.datamodule, cv)
    trainer = built.trainer
    trained = for_training(built.module, compile_config(cfg))
    # Checkpoints hold plain data only: never unpickle objects, whoever wrote the file.
    with signals_given_back(requeue, stop), timings.phase(Phase.FIT, trainer):
        trainer.fit(trained, datamodule=built.datamodule, ckpt_path=ckpt_path, weights_only=True)

    fit_metrics = logged.metrics(trainer)
    if reporter is not None and reporter.pruned_at is not None:
        import optuna

        if record is not None:
            record.metrics = fit_metrics
        raise optuna.TrialPruned(
            f"pruned after epoch {reporter.pruned_at}: "
            f"{cfg.objective.metric}={reporter.last_value:.4g}"
        )
    checkpoint = trainer.checkpoint_callback
    if not isinstance(checkpoint, ModelCheckpoint):
        checkpoint = None
    if refit:  # a refit validates on nothing: its objective is not measured, its model the last
        value, best = math.nan, checkpoint.last_model_path if checkpoint is not None else ""
    else:
        value = _objective(cfg, fit_metrics, checkpoint)
        best = checkpoint.best_model_path if checkpoint is not None else ""

    test_metrics: dict[str, float] = {}
    if cfg.test:
        with timings.phase(Phase.TEST):
            trainer.test(
                built.module, datamodule=built.datamodule, ckpt_path=best or None, weights_only=True
            )
        test_metrics = scalars(trainer.callback_metrics)

    wanted = [] if refit else cfg.objective.get("also") or []
    also = {name: _logged(name, fit_metrics) for name in wanted}
    if record is not None:
        record.objective = {
            "metric": cfg.objective.metric,
            "mode": str(getattr(cfg.objective.mode, "value", cfg.objective.mode)),
            "value": None if refit else value,
            **({"also": also} if also else {}),
        }
        record.metrics = {**fit_metrics, **test_metrics}
        record.checkpoints = {
            "best": _relative(best, cfg.paths.run_dir),
            "last": _relative(checkpoint.last_model_path if checkpoint else "", cfg.paths.run_dir),
        }
    return (value, *also.values()) if also else value


class _Timings:
    """Seconds per :class:`Phase` into ``record.timings`` (the last attempt's), kept also when
    the phase ends in an exception (a pruned or failed fit)."""

    def __init__(self, record: RunRecord | None) -> None:
        self.timings: dict[str, float] = {}
        if record is not None:
            record.timings = self.timings

    @contextmanager
    def phase(self, phase: Phase, trainer: Any = None) -> Iterator[None]:
        from lightning_args.run.checkpoint import AtomicCheckpointIO

        began = time.perf_counter()
        try:
            yield
        finally:
            self.timings[phase.value] = round(time.perf_counter() - began, 3)
            writer = getattr(getattr(trainer, "strategy", None), "checkpoint_io", None)
            if isinstance(writer, AtomicCheckpointIO):
                self.timings[Phase.CHECKPOINTS.value] = round(writer.seconds, 3)


def _trial_reporter(cfg: DictConfig) -> Any:
    """In an Optuna sweep's job, the callback that reports to its trial; else ``None``."""
    from lightning_args.sweep.trial import TrialLink

    link = TrialLink.from_env()
    if link is None:
        return None
    if cv_of(cfg) is not None:
        return None  # the folds of a k-fold trial train with no epoch reports (see run.kfold)
    from lightning_args.callbacks.pruning import TrialReporter

    return TrialReporter(link, cfg.objective.metric)


def _objective(cfg: DictConfig, metrics: dict[str, float], checkpoint: Any) -> float:
    metric: str = cfg.objective.metric
    score = getattr(checkpoint, "best_model_score", None)
    if checkpoint is not None and checkpoint.monitor == metric and score is not None:
        return float(score)
    return _logged(metric, metrics, key="objective.metric")


def _logged(metric: str, metrics: dict[str, float], key: str = "objective.also") -> float:
    if metric in metrics:
        return metrics[metric]
    raise ConfigValueError(
        f"{key}: {metric!r} was never logged. Logged metrics: "
        f"{', '.join(sorted(metrics)) or 'none'}. Fix: {key}=<one of them>"
    )


def _relative(path: str, root: str) -> str | None:
    if not path:
        return None
    return os.path.relpath(path, root)


def _hydra_overrides() -> list[str]:
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return []
    # As typed: an override holding "${...}" is text here, not an interpolation to resolve.
    overrides = OmegaConf.to_container(HydraConfig.get().overrides.task, resolve=False)
    return [str(o) for o in overrides] if isinstance(overrides, list) else []


def _code_dir() -> Path:
    """The directory of the script being run: its git commit is the code version."""
    script = Path(sys.argv[0])
    return script.resolve().parent if script.is_file() else Path.cwd()
