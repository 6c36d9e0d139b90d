"""Best val/acc against trials for each sampler, on the digits space at a small budget.

Every sweep runs the example app (``train.py +sweep=optuna``: the digits MLP, ``--epochs``
epochs, val/acc maximised) over its default search space (the MLP encoder's width and depth and
dropout, AdamW's learning rate and weight decay), ``--trials`` trials, two at a time through
``hydra/launcher=joblib``, no pruner, for each sampler and seed; the samplers alternate seed by
seed, so that load changes hit each. Printed: for each sampler, the median over seeds (with
min-max) of the best val/acc after 4, 8 and all trials (trials in the order they were asked),
and the median wall time.
GP's, BoTorch's and TPE's start-up trials are ``--startup`` (random) before they model the
results; BoTorch needs the ``botorch`` extra (the dev environment has it). A report: it exits 0.

    python benchmarks/samplers.py [--trials 16] [--seeds 3] [--epochs 3] [--startup 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import optuna
from _sweeps import study_of, timed_sweep

SAMPLERS = ("tpe", "gp", "botorch", "random")
CHECKPOINTS = (4, 8)


def sweep(
    sampler: str, seed: int, args: argparse.Namespace, root: Path
) -> tuple[list[float], float]:
    """Best-so-far val/acc after each trial (by number), and the wall time."""
    startup = (
        [f"hydra.sweeper.sampler.n_startup_trials={args.startup}"] if sampler != "random" else []
    )
    wall = timed_sweep(
        root,
        "+sweep=optuna",
        f"hydra/sweeper/sampler={sampler}",
        f"hydra.sweeper.sampler.seed={seed}",
        *startup,
        f"hydra.sweeper.n_trials={args.trials}",
        "hydra/sweeper/pruner=none",
        "hydra.sweeper.plots=false",
        f"trainer.max_epochs={args.epochs}",
    )
    trials = sorted(study_of(root).trials, key=lambda t: t.number)
    best, curve = float("-inf"), []
    for trial in trials:
        if trial.value is not None:
            best = max(best, trial.value)
        curve.append(best)
    return curve, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--startup", type=int, default=5)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    results: dict[str, list[tuple[list[float], float]]] = {s: [] for s in SAMPLERS}
    for seed in range(args.seeds):
        for sampler in SAMPLERS:
            with tempfile.TemporaryDirectory() as root:
                results[sampler].append(sweep(sampler, seed, args, Path(root)))
                curve, wall = results[sampler][-1]
                print(f"  {sampler} seed {seed}: best {curve[-1]:.4f} in {wall:.0f} s", flush=True)
    marks = [n for n in CHECKPOINTS if n < args.trials] + [args.trials]
    print(
        f"\n{args.trials} trials, {args.epochs} epochs each, 2 at a time, {args.seeds} seeds; "
        "best val/acc, median (min-max)"
    )
    print(f"{'sampler':<9}" + "".join(f"{f'after {n}':>22}" for n in marks) + f"{'wall s':>9}")
    for sampler, rows in results.items():
        cells = []
        for n in marks:
            values = [curve[min(n, len(curve)) - 1] for curve, _ in rows]
            cells.append(f"{statistics.median(values):.4f} ({min(values):.3f}-{max(values):.3f})")
        wall = statistics.median(w for _, w in rows)
        print(f"{sampler:<9}" + "".join(f"{c:>22}" for c in cells) + f"{wall:>9.0f}")


if __name__ == "__main__":
    main()
