"""A k-fold run (``+cv=kfold``): a parent run directory with one ordinary run per fold.

    <run dir>/run.json          the k-fold run: per-fold values, mean, std and standard error
    <run dir>/folds/<k>/        fold k: its own record, config, checkpoints and metrics
    <run dir>/refit/            with cv.refit=true: a run trained on all the folds' samples

Each fold is a run of :func:`lightning_args.train` in its own directory, with ``cv.fold=k``
set: it trains on fold ``k``'s training samples, validates on its validation samples
(:mod:`lightning_args.modules.folds`) and tests on the DataModule's untouched test split. The
folds run one after another in this process, or with ``cv.parallel=true`` each in a process or
a Slurm job of its own (:mod:`lightning_args.run.fold_jobs`). The parent's objective is the
mean of the folds' objectives; its ``metrics`` are the means of every final metric the folds
logged.
"""

from __future__ import annotations

import copy
import logging
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from lightning_args._util.atomic import atomic_write
from lightning_args._util.stats import Spread
from lightning_args.config.cv import CVConfig
from lightning_args.config.objective import Objective, primary
from lightning_args.errors import ConfigValueError
from lightning_args.modules.folds import check_settings
from lightning_args.run.fold_jobs import FoldJob, in_a_multirun, train_in_parallel
from lightning_args.run.record import RECORD_NAME, RunRecord, RunStatus

_log = logging.getLogger(__name__)

FOLDS = "folds"  # the parent's sub-directory of fold runs
REFIT = "refit"  # the parent's sub-directory of its refit run (cv.refit=true)


def fold_dir(run_dir: Path, index: int) -> Path:
    """Where fold ``index`` of the k-fold run in ``run_dir`` runs."""
    return run_dir / FOLDS / str(index)


def fold_dirs(run_dir: Path) -> dict[int, Path]:
    """The fold runs a k-fold run's directory holds, by fold, in order (found by their place:
    never by a path its record names)."""
    found = (p for p in (run_dir / FOLDS).glob("*") if p.name.isdigit())
    return dict(sorted((int(p.name), p) for p in found))


def cv_of(cfg: DictConfig) -> CVConfig | None:
    """``cfg.cv`` as its typed settings, or ``None`` for an ordinary run."""
    node = OmegaConf.select(cfg, "cv", default=None)
    if node is None:
        return None
    settings = OmegaConf.to_container(node, resolve=True)
    if not isinstance(settings, dict):
        raise ConfigValueError(f"cv={settings!r}: expected the cv settings. Fix: +cv=kfold")
    return CVConfig(**{str(k): v for k, v in settings.items()})


def fold_count(cv: CVConfig) -> int:
    return cv.folds * cv.repeats


def run_folds(
    cfg: DictConfig,
    run_dir: Path,
    record: RunRecord | None,
    train: Callable[[DictConfig], Objective],
) -> Objective:
    """Train every fold of the k-fold run in ``run_dir`` (``record`` is its record, ``None`` in
    a process that does not write it), one after another or at once (``cv.parallel``), then its
    refit (``cv.refit``); return the folds' mean objective (a tuple with ``objective.also``)."""
    cv = cv_of(cfg)
    if cv is None:
        raise ConfigValueError("run_folds() needs cfg.cv. Fix: +cv=kfold")
    check_settings(cv)  # before any fold trains

    def update_record() -> None:
        if record is not None:
            record.cv = aggregate(run_dir, cv)
            _summarize(record, record.cv, cfg)
            record.write(run_dir)

    parallel = cv.parallel and not in_a_multirun()
    if cv.parallel and not parallel:
        _log.info("cv.parallel=true: in a sweep's trial, the folds train one after another")
    if parallel:
        values = _in_parallel(cfg, run_dir, cv, train, update_record)
    else:
        values = []
        reporter = _FoldReporter.in_a_sweep(cfg)
        for index in range(fold_count(cv)):
            here = fold_dir(run_dir, index)
            kept = _finished(here)
            values.append(kept if kept is not None else train(_part_config(cfg, here, index)))
            update_record()
            if reporter is not None:
                reporter.report(index, values)
        if cv.refit and _completed(run_dir / REFIT) is None:
            train(_part_config(cfg, run_dir / REFIT, None))
            update_record()
    mean = _mean_objective(values)
    spread = record.objective.get("std") if record is not None else None
    _log.info(
        "K-fold run completed: %s=%.4f +- %.4f (mean and std over %d folds). Everything is in %s",
        cfg.objective.metric,
        primary(mean),
        spread if isinstance(spread, float) else float("nan"),
        len(values),
        run_dir,
    )
    return mean


def _in_parallel(
    cfg: DictConfig,
    run_dir: Path,
    cv: CVConfig,
    train: Callable[[DictConfig], Objective],
    update_record: Callable[[], None],
) -> list[Objective]:
    """Every fold's objective, the finished ones kept and the others trained at once
    (:mod:`lightning_args.run.fold_jobs`), the refit with them: it needs nothing from them."""
    values: dict[int, Objective] = {}
    jobs: list[FoldJob] = []
    for index in range(fold_count(cv)):
        here = fold_dir(run_dir, index)
        kept = _finished(here)
        if kept is not None:
            values[index] = kept
        else:
            jobs.append(FoldJob(_part_config(cfg, here, index), train, _log_name()))
    if cv.refit and _completed(run_dir / REFIT) is None:
        jobs.append(FoldJob(_part_config(cfg, run_dir / REFIT, None), train, _log_name()))
    if jobs:
        for result in train_in_parallel(jobs, run_dir, lambda _: update_record()):
            if result.fold is not None and result.value is not None:
                values[result.fold] = result.value
    return [values[index] for index in sorted(values)]


def _log_name() -> str:
    """The file a job's log records go to, as Hydra names it (``<job name>.log``)."""
    from hydra.core.hydra_config import HydraConfig

    return f"{HydraConfig.get().job.name}.log" if HydraConfig.initialized() else "train.log"


class _FoldReporter:
    """In a sweep's trial, each fold's objective goes to the trial (step = fold) and the
    study's pruner may stop the k-fold run there: the pruner judges folds, not epochs."""

    def __init__(self, trial: Any, metric: str) -> None:
        self.trial = trial
        self.metric = metric

    @classmethod
    def in_a_sweep(cls, cfg: DictConfig) -> _FoldReporter | None:
        from lightning_args.sweep.attrs import STEP_UNIT
        from lightning_args.sweep.trial import TrialLink

        link = TrialLink.from_env()
        if link is None or link.n_objectives > 1:  # Optuna prunes single objectives only
            return None
        trial = link.open()
        trial.set_user_attr(STEP_UNIT, "fold")
        return cls(trial, str(cfg.objective.metric))

    def report(self, index: int, values: Sequence[Objective]) -> None:
        import optuna

        self.trial.report(primary(values[-1]), step=index)
        if self.trial.should_prune():
            mean = statistics.fmean(primary(v) for v in values)
            raise optuna.TrialPruned(
                f"pruned after fold {index}: {self.metric}={mean:.4g} (mean of {len(values)})"
            )


def _completed(run_dir: Path) -> RunRecord | None:
    """The record of the fold or refit run in ``run_dir`` if it completed (a resumed k-fold run
    keeps it, untouched); ``None`` for one still to train or to continue."""
    if not (run_dir / RECORD_NAME).is_file():
        return None
    record = RunRecord.read(run_dir)
    return record if record.status == RunStatus.COMPLETED else None


def _finished(fold_dir: Path) -> Objective | None:
    """The objective of the fold in ``fold_dir`` if it completed; ``None`` otherwise."""
    record = _completed(fold_dir)
    value = record.objective.get("value") if record is not None else None
    if record is None or not isinstance(value, int | float):
        return None
    also = record.objective.get("also")
    if isinstance(also, dict) and also:
        return (float(value), *(float(v) for v in also.values()))
    return float(value)


def _part_config(cfg: DictConfig, fold_dir: Path, index: int | None) -> DictConfig:
    """Fold ``index``'s config (``None``: the refit's): the parent's, in ``fold_dir``, with
    ``cv.fold`` set (for the refit ``cv.all_samples``); written to
    ``fold_dir/.hydra/config.yaml`` as Hydra writes a run's, so the fold loads and resumes as
    any run does. A fold that a killed k-fold run left unfinished continues from its
    ``last.ckpt`` (its ``metrics.csv`` trimmed to that point, as ``resume`` does)."""
    fold = copy.deepcopy(cfg)  # interpolations kept: ${paths.run_dir} follows the fold
    last = fold_dir / "checkpoints" / "last.ckpt"
    continuing = (fold_dir / RECORD_NAME).is_file() and last.is_file()
    with open_dict(fold):
        fold.paths.run_dir = str(fold_dir)
        fold.cv.fold = index
        fold.cv.all_samples = index is None
        fold.ckpt_path = str(last) if continuing else None
    if continuing:
        from lightning_args.loggers import trim_metrics
        from lightning_args.run.checkpoint import read_checkpoint

        trim_metrics(fold_dir / "metrics.csv", int(read_checkpoint(last, "cpu")["global_step"]))
    config = fold_dir / ".hydra" / "config.yaml"
    if not config.is_file():
        config.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(config, OmegaConf.to_yaml(fold))
    return fold


def aggregate(run_dir: Path, cv: CVConfig) -> dict[str, Any]:
    """The folds' values as the parent's record keeps them: one entry per fold (its run, status,
    objective, final metrics), then mean, std and standard error of every metric all finished
    folds logged."""
    folds: list[dict[str, Any]] = []
    for index in range(fold_count(cv)):
        here = fold_dir(run_dir, index)
        entry: dict[str, Any] = {"fold": index, "run": f"{FOLDS}/{index}", "status": None}
        if (here / RECORD_NAME).is_file():
            fold = RunRecord.read(here)
            entry.update(
                status=str(fold.status),
                objective=fold.objective.get("value"),
                metrics=dict(fold.metrics),
            )
        folds.append(entry)
    done = [f for f in folds if f["status"] == RunStatus.COMPLETED]
    names = sorted(set.intersection(*(set(f["metrics"]) for f in done))) if done else []
    columns = {name: [float(f["metrics"][name]) for f in done] for name in names}
    objectives = [f["objective"] for f in done if isinstance(f.get("objective"), int | float)]
    if objectives:
        columns["objective"] = [float(v) for v in objectives]
    spreads = {name: Spread.of(v) for name, v in columns.items()}
    refit: dict[str, Any] = {}
    if cv.refit:
        refit = {"run": REFIT, "status": None}
        if (run_dir / REFIT / RECORD_NAME).is_file():
            own = RunRecord.read(run_dir / REFIT)
            refit.update(status=str(own.status), metrics=dict(own.metrics))
    return {
        **({"refit": refit} if refit else {}),
        "folds": folds,
        "completed": len(done),
        "mean": {name: s.mean for name, s in spreads.items()},
        "std": {name: s.std for name, s in spreads.items()},
        "sem": {name: s.sem for name, s in spreads.items()},
    }


def _summarize(record: RunRecord, folds: dict[str, Any], cfg: DictConfig) -> None:
    """The parent's own ``objective`` and ``metrics``: the folds' means."""
    mean, std, sem = folds["mean"], folds["std"], folds["sem"]
    record.metrics = {name: value for name, value in mean.items() if name != "objective"}
    if "objective" in mean:
        record.objective = {
            "metric": cfg.objective.metric,
            "mode": str(getattr(cfg.objective.mode, "value", cfg.objective.mode)),
            "value": mean["objective"],
            "std": std["objective"],
            "sem": sem["objective"],
            "folds": folds["completed"],
        }


def _mean_objective(values: Sequence[Objective]) -> Objective:
    if values and isinstance(values[0], tuple):
        columns = zip(*(v for v in values if isinstance(v, tuple)), strict=True)
        return tuple(statistics.fmean(c) for c in columns)
    return statistics.fmean(float(v) for v in values if not isinstance(v, tuple))
