"""A k-fold run (``+cv=kfold``): a parent run directory with one ordinary run per fold.

    <run dir>/run.json          the k-fold run: per-fold values, mean, std and standard error
    <run dir>/folds/<k>/        fold k: its own record, config, checkpoints and metrics

Each fold is a run of :func:`lightning_args.train` in its own directory, with ``cv.fold=k``
set: it trains on fold ``k``'s training samples, validates on its validation samples
(:mod:`lightning_args.modules.folds`) and tests on the DataModule's untouched test split. The
folds run one after another in this process. The parent's objective is the mean of the folds'
objectives; its ``metrics`` are the means of every final metric the folds logged.
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
from lightning_args.errors import ConfigValueError
from lightning_args.modules.folds import check_settings
from lightning_args.run.record import RECORD_NAME, RunRecord, RunStatus

_log = logging.getLogger(__name__)

FOLDS = "folds"  # the parent's sub-directory of fold runs

Objective = float | tuple[float, ...]


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
    a process that does not write it), one after another, and return the mean objective (a
    tuple with ``objective.also``)."""
    cv = cv_of(cfg)
    if cv is None:
        raise ConfigValueError("run_folds() needs cfg.cv. Fix: +cv=kfold")
    check_settings(cv)  # before any fold trains
    for setting in ("parallel", "refit"):
        if getattr(cv, setting):  # in the schema already; refused rather than ignored
            raise ConfigValueError(
                f"cv.{setting}=true is not built yet: a k-fold run trains its folds one after "
                f"another and nothing more. Fix: cv.{setting}=false"
            )
    values: list[Objective] = []
    reporter = _FoldReporter.in_a_sweep(cfg)
    for index in range(fold_count(cv)):
        fold_dir = run_dir / FOLDS / str(index)
        kept = _finished(fold_dir)
        values.append(kept if kept is not None else train(_fold_config(cfg, fold_dir, index)))
        if record is not None:
            record.cv = aggregate(run_dir, cv)
            _summarize(record, record.cv, cfg)
            record.write(run_dir)
        if reporter is not None:
            reporter.report(index, values)
    mean = _mean_objective(values)
    first = mean[0] if isinstance(mean, tuple) else mean
    spread = record.objective.get("std") if record is not None else None
    _log.info(
        "K-fold run completed: %s=%.4f +- %.4f (mean and std over %d folds). Everything is in %s",
        cfg.objective.metric,
        first,
        spread if isinstance(spread, float) else float("nan"),
        len(values),
        run_dir,
    )
    return mean


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

        value = values[-1]
        self.trial.report(float(value[0] if isinstance(value, tuple) else value), step=index)
        if self.trial.should_prune():
            mean = statistics.fmean(float(v[0] if isinstance(v, tuple) else v) for v in values)
            raise optuna.TrialPruned(
                f"pruned after fold {index}: {self.metric}={mean:.4g} (mean of {len(values)})"
            )


def _finished(fold_dir: Path) -> Objective | None:
    """The objective of the fold in ``fold_dir`` if it completed (a resumed k-fold run keeps it,
    untouched); ``None`` for a fold still to train or to continue."""
    if not (fold_dir / RECORD_NAME).is_file():
        return None
    record = RunRecord.read(fold_dir)
    value = record.objective.get("value")
    if record.status != RunStatus.COMPLETED or not isinstance(value, int | float):
        return None
    also = record.objective.get("also")
    if isinstance(also, dict) and also:
        return (float(value), *(float(v) for v in also.values()))
    return float(value)


def _fold_config(cfg: DictConfig, fold_dir: Path, index: int) -> DictConfig:
    """Fold ``index``'s config: the parent's, in ``fold_dir``, with ``cv.fold`` set; written to
    ``fold_dir/.hydra/config.yaml`` as Hydra writes a run's, so the fold loads and resumes as
    any run does. A fold that a killed k-fold run left unfinished continues from its
    ``last.ckpt`` (its ``metrics.csv`` trimmed to that point, as ``resume`` does)."""
    fold = copy.deepcopy(cfg)  # interpolations kept: ${paths.run_dir} follows the fold
    last = fold_dir / "checkpoints" / "last.ckpt"
    continuing = (fold_dir / RECORD_NAME).is_file() and last.is_file()
    with open_dict(fold):
        fold.paths.run_dir = str(fold_dir)
        fold.cv.fold = index
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
        fold_dir = run_dir / FOLDS / str(index)
        entry: dict[str, Any] = {"fold": index, "run": f"{FOLDS}/{index}", "status": None}
        if (fold_dir / "run.json").is_file():
            fold = RunRecord.read(fold_dir)
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
    return {
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
