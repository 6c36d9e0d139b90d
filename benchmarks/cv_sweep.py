"""A k-fold sweep with fold pruning against the same sweep without it (#14's target: at most
0.6x the wall time for an equal best mean, within one standard error).

Every sweep runs the example app (``train.py +cv=kfold +sweep=optuna``: the digits MLP,
``--folds`` stratified folds of ``--epochs`` epochs per trial, val/acc maximised) over its
default search space, ``--trials`` trials two at a time through ``hydra/launcher=joblib``, TPE
with the same seed, once per pruner: ``none``, ``median`` (a fold's score below the median of
earlier trials' at that fold stops the trial, from the first fold on) and ``wilcoxon``
(``p_threshold`` 0.3: stopped after two worse folds at the earliest). Printed per pruner: wall
time and its ratio to ``none``, the best trial's mean +- std over its folds, the folds trained,
and PASS/FAIL against the target. A report: it exits 0.

    python benchmarks/cv_sweep.py [--trials 24] [--folds 5] [--epochs 3] [--seed 0]
"""

from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path

import optuna
import yaml
from _sweeps import study_of, timed_sweep

PRUNERS = {
    "none": ["hydra/sweeper/pruner=none"],
    "median": [
        "hydra/sweeper/pruner=median",
        "hydra.sweeper.pruner.n_warmup_steps=0",
        "hydra.sweeper.pruner.n_startup_trials=5",
    ],
    "wilcoxon": ["hydra/sweeper/pruner=wilcoxon", "hydra.sweeper.pruner.p_threshold=0.3"],
}


def sweep(pruner: str, args: argparse.Namespace, root: Path) -> dict[str, float]:
    """One sweep's wall time, best mean and its standard error, and folds trained."""
    wall = timed_sweep(
        root,
        "+cv=kfold",
        f"cv.folds={args.folds}",
        "cv.stratify=label",
        "+sweep=optuna",
        *PRUNERS[pruner],
        f"hydra.sweeper.sampler.seed={args.seed}",
        f"hydra.sweeper.n_trials={args.trials}",
        "hydra.sweeper.plots=false",
        f"trainer.max_epochs={args.epochs}",
    )
    summary = yaml.safe_load((root / "sweep" / "summary.yaml").read_text())
    trials = study_of(root).trials
    folds = summary["best"]["folds"]
    return {
        "wall": wall,
        "mean": float(folds["mean"]),
        "std": float(folds["std"]),
        "sem": float(folds["sem"]),
        "folds": float(sum(len(t.intermediate_values) for t in trials)),
        "pruned": float(sum(t.state == optuna.trial.TrialState.PRUNED for t in trials)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    results: dict[str, dict[str, float]] = {}
    for pruner in PRUNERS:
        with tempfile.TemporaryDirectory() as root:
            results[pruner] = sweep(pruner, args, Path(root))
        r = results[pruner]
        print(f"  {pruner}: {r['wall']:.0f} s, best {r['mean']:.4f}", flush=True)
    base = results["none"]
    print(
        f"\n{args.trials} trials x {args.folds} folds x {args.epochs} epochs, 2 at a time, "
        f"TPE seed {args.seed}; best = the best trial's mean +- std over its folds"
    )
    print(f"{'pruner':<10}{'wall s':>8}{'ratio':>7}{'best':>20}{'folds':>7}{'pruned':>8}  target")
    for pruner, r in results.items():
        ratio = r["wall"] / base["wall"]
        # Equal within one standard error: the gap under the two bests' combined error.
        equal = base["mean"] - r["mean"] <= math.hypot(base["sem"], r["sem"])
        verdict = "-" if pruner == "none" else ("PASS" if ratio <= 0.6 and equal else "FAIL")
        best = f"{r['mean']:.4f} +- {r['std']:.4f}"
        print(
            f"{pruner:<10}{r['wall']:>8.0f}{ratio:>7.2f}{best:>20}{r['folds']:>7.0f}"
            f"{r['pruned']:>8.0f}  {verdict}"
        )


if __name__ == "__main__":
    main()
