"""A study's results in its sweep directory: ``summary.yaml`` and PNG plots.

The summary holds what a user acts on: the best value and its overrides (ready to paste; in a
k-fold sweep also its folds' mean +- std, and the runner-up's, saying whether the two are within
noise), the counts by state, the failed trials with their errors, and for a multi-objective
study the Pareto front. Interrupted trials (their values ran again) and duplicates (closed
without running: their values repeated an earlier trial's) are counted apart from the states.
``optimization_results.yaml`` repeats the best result in ``hydra-optuna-sweeper``'s form.
"""

from __future__ import annotations

import logging
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import optuna
import yaml
from optuna.trial import FrozenTrial, TrialState

from lightning_args._util.atomic import atomic_write
from lightning_args._util.stats import Spread, noise_verdict
from lightning_args.sweep.attrs import (
    DUPLICATE,
    ERROR,
    INTERRUPTED,
    OVERRIDES,
    STEP_UNIT,
    WARM_START_REPORT,
)

_log = logging.getLogger(__name__)

SUMMARY = "summary.yaml"
PLOTS = "plots"


def summarize(study: optuna.Study) -> dict[str, Any]:
    """The summary of ``study`` as plain data (what :func:`write` saves)."""
    trials = study.get_trials(deepcopy=False)
    directions = [d.name.lower() for d in study.directions]
    interrupted = [t for t in trials if t.user_attrs.get(INTERRUPTED)]
    duplicates = [t for t in trials if t.user_attrs.get(DUPLICATE) is not None]
    apart = {t.number for t in (*interrupted, *duplicates)}
    counts = Counter(t.state.name for t in trials if t.number not in apart)
    summary: dict[str, Any] = {
        "study": study.study_name,
        "direction": directions[0] if len(directions) == 1 else directions,
        "trials": {state.name: counts.get(state.name, 0) for state in TrialState},
        "interrupted": len(interrupted),
        "duplicates": len(duplicates),
    }
    warm = study.user_attrs.get(WARM_START_REPORT)
    if isinstance(warm, dict):
        summary["warm_start"] = warm
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    # Optuna's best trial(s) are the best feasible ones when trials carry constraint values.
    infeasible = [t for t in complete if any(v > 0 for v in t.constraints.values())]
    if infeasible:
        summary["infeasible"] = len(infeasible)
    if len(infeasible) < len(complete) and len(directions) == 1:
        best = study.best_trial
        summary["best"] = _trial(best)
        runner_up = _runner_up(study, best, [t for t in complete if t not in infeasible])
        if "folds" in summary["best"] and runner_up is not None:
            summary["runner_up"] = _trial(runner_up)
    elif len(infeasible) < len(complete):
        summary["pareto_front"] = [_trial(t) for t in study.best_trials]
    summary["failed"] = [
        {"number": t.number, "error": t.user_attrs.get(ERROR, "unknown")}
        for t in trials
        if t.state == TrialState.FAIL and t.number not in apart
    ]
    return summary


def write(study: optuna.Study, sweep_dir: Path, *, plots: bool = True) -> dict[str, Any]:
    """Write ``summary.yaml`` (and ``optimization_results.yaml``, and plots) into ``sweep_dir``."""
    summary = summarize(study)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    _atomic_yaml(sweep_dir / SUMMARY, summary)
    if "best" in summary:
        best = summary["best"]
        _atomic_yaml(
            sweep_dir / "optimization_results.yaml",
            {
                "name": "lightning_args_optuna",
                "best_params": best["params"],
                "best_value": best["value"],
            },
        )
    if plots:
        summary["plots"] = [str(p.relative_to(sweep_dir)) for p in plot(study, sweep_dir / PLOTS)]
        _atomic_yaml(sweep_dir / SUMMARY, summary)
    return summary


def describe(summary: dict[str, Any]) -> str:
    """A few lines for the console."""
    counts = ", ".join(f"{n} {s.lower()}" for s, n in summary["trials"].items() if n)
    lines = [f"Study {summary['study']}: {counts or 'no trials'}"]
    if summary.get("duplicates"):
        lines.append(
            f"  Duplicates: {summary['duplicates']} suggestion(s) repeated an earlier trial's "
            "values and did not run"
        )
    warm = summary.get("warm_start")
    if warm:
        skipped = ", ".join(f"{n} {why}" for why, n in warm["skipped"].items()) or "none"
        lines.append(f"  Warm start: {warm['used']} earlier run(s) used; skipped: {skipped}")
    if summary.get("infeasible"):
        lines.append(
            f"  Infeasible: {summary['infeasible']} completed trial(s) broke "
            "hydra.sweeper.constraints"
            + ("" if "best" in summary or "pareto_front" in summary else "; no trial is feasible")
        )
    if "best" in summary:
        best = summary["best"]
        feasible = ", the best feasible" if "infeasible" in summary else ""
        spread = _spread(best)
        lines.append(f"  Best: trial {best['number']}, value {best['value']:.6g}{spread}{feasible}")
        lines.append(f"  Overrides: {' '.join(best['overrides'])}")
        runner_up = summary.get("runner_up")
        if runner_up:
            lines.append(
                f"  Runner-up: trial {runner_up['number']}, value {runner_up['value']:.6g}"
                f"{_spread(runner_up)}{_noise(best, runner_up)}"
            )
    for trial in summary.get("pareto_front", []):
        lines.append(f"  Pareto: trial {trial['number']}, values {trial['values']}")
    for failed in summary["failed"]:
        lines.append(f"  Failed: trial {failed['number']}: {failed['error'].splitlines()[0]}")
    return "\n".join(lines)


def prepare_plots() -> None:
    """Import what :func:`plot` draws with: matplotlib, Optuna's plots and its importances
    (which import scikit-learn), 2-3 s on 2 cores. A sweeper calls it from a worker slot that
    has no trial left, so the imports use that idle core while the last trials run.

    Example:
        >>> prepare_plots()
        >>> import sys; "optuna.importance" in sys.modules
        True
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot
    import optuna.importance
    import optuna.visualization.matplotlib  # noqa: F401


def plot(study: optuna.Study, out_dir: Path) -> list[Path]:
    """PNG plots: history, parameter importances, parallel coordinates, intermediate values.

    A plot that does not apply (no completed trial, a single parameter, no intermediate values)
    is skipped with a log line saying why.
    """
    prepare_plots()  # the backend, and the imports (done already when a sweeper prepared them)
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as ovm

    out_dir.mkdir(parents=True, exist_ok=True)
    multi = len(study.directions) > 1
    target: Callable[[FrozenTrial], float] | None = (lambda t: t.values[0]) if multi else None
    name = "objective 0" if multi else "objective"
    makers: dict[str, Callable[[], Any]] = {
        "history": lambda: ovm.plot_optimization_history(study, target=target, target_name=name),
        "importances": lambda: ovm.plot_param_importances(study, target=target, target_name=name),
        "parallel_coordinate": lambda: ovm.plot_parallel_coordinate(
            study, target=target, target_name=name
        ),
        "intermediate_values": lambda: ovm.plot_intermediate_values(study),
    }
    if multi:
        makers["pareto_front"] = lambda: ovm.plot_pareto_front(study)
    written = []
    for plot_name, make in makers.items():
        path = out_dir / f"{plot_name}.png"
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # optuna marks its matplotlib backend experimental
                axes = make()
            figure = getattr(axes, "figure", None) or axes.flat[0].figure
            figure.set_size_inches(8, 5)
            # Laid out once, then drawn once: bbox_inches="tight" draws every figure twice
            # (0.78 s against 0.38 s a plot on 2 cores, most of a sweep's plotting time).
            figure.tight_layout()
            figure.savefig(path, dpi=100)
            plt.close(figure)
            written.append(path)
        except Exception as error:  # not enough data for this plot: say so, keep the others
            _log.info("Plot %s skipped: %s", plot_name, error)
            plt.close("all")
    return written


def _trial(trial: FrozenTrial) -> dict[str, Any]:
    out: dict[str, Any] = {
        "number": trial.number,
        "params": {k: _plain(v) for k, v in trial.params.items()},
        "overrides": list(trial.user_attrs.get(OVERRIDES, [])),
    }
    if len(trial.values or []) == 1:
        out["value"] = float(trial.values[0])
    else:
        out["values"] = [float(v) for v in trial.values]
    if trial.constraints:
        out["constraints"] = {k: float(v) for k, v in trial.constraints.items()}
    scores = [float(v) for v in trial.intermediate_values.values()]
    if trial.user_attrs.get(STEP_UNIT) == "fold" and scores:  # a k-fold trial: its spread
        out["folds"] = asdict(Spread.of(scores))
    return out


def _runner_up(
    study: optuna.Study, best: FrozenTrial, feasible: list[FrozenTrial]
) -> FrozenTrial | None:
    """The second best feasible completed trial of a single-objective study."""
    others = [t for t in feasible if t.number != best.number and t.value is not None]
    if not others:
        return None
    pick = min if study.direction == optuna.study.StudyDirection.MINIMIZE else max
    return pick(others, key=lambda t: float(t.value or 0.0))


def _noise(best: dict[str, Any], runner_up: dict[str, Any]) -> str:
    """Whether the runner-up is within noise of the best: their fold means differ by less
    than their combined standard error."""
    a, b = best["folds"], runner_up.get("folds")
    if not b:
        return ""
    return f": {noise_verdict(Spread(**a), Spread(**b), of='the best')}"


def _spread(trial: dict[str, Any]) -> str:
    folds = trial.get("folds")
    return f" +- {folds['std']:.4g} (std over {folds['n']} folds)" if folds else ""


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _atomic_yaml(path: Path, data: Any) -> None:
    atomic_write(path, yaml.safe_dump(data, sort_keys=False))
