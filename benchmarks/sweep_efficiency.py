"""Wall time and best objective of two sweeps of the same space: sync batches against async+pruning.

Every sweep runs the example app (``train.py +sweep=optuna``: the digits MLP, 20 epochs, val/acc
maximised) over its default search space (``conf/search_space``: the encoder's hidden width and
depth, its dropout, AdamW's learning rate and weight decay), with the same TPE sampler and seed,
``--trials`` trials and ``--workers`` parallel jobs through ``hydra/launcher=joblib``:

  sync batches     ``hydra.sweeper.batched=true hydra/sweeper/pruner=none``: ``n_jobs`` trials per
                   launch, each batch waiting for its slowest trial, every trial trained to the
                   end (what ``hydra-optuna-sweeper`` does)
  async+pruning    ``hydra.sweeper.batched=false hydra/sweeper/pruner=<--pruner>``: a trial starts
                   as soon as a slot frees; the pruner stops unpromising trials after an epoch.
                   Default: successive halving (ASHA), ``min_resource=1 reduction_factor=3``
  floor            reference, not a target (``--no-floor`` skips it): async, no pruner,
                   ``trainer.max_epochs=1``: the least any pruner could cost, every trial stopped
                   after its first epoch (start-up and per-trial costs stay)

Each sweep is one subprocess (``train.py -m``, run from the repository root with this
interpreter) in a fresh temporary output root; the modes alternate seed by seed, so load changes
hit each. Per seed: wall time of the subprocess, best val/acc (``summary.yaml``), trials
complete/pruned/failed, and the epochs trained in all (from the study's journal). Then the
median over seeds per mode and the ratio of median wall times.

Target (from the issue): async+pruning at most half the wall time of sync batches, for an equal or
better best objective (median over seeds). The script prints PASS/FAIL and always exits 0.

    python benchmarks/sweep_efficiency.py [--trials 24] [--workers 2] [--seeds 3] [--epochs 20]
        [--pruner successive_halving] [--pruner-setting reduction_factor=3 ...] [--no-floor]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
TARGET_RATIO = 0.5
# Both modes: the app's sweep config, quiet trainers (parallel jobs share one console).
COMMON = [
    "+sweep=optuna",
    "hydra/launcher=joblib",
    "hydra.sweeper.plots=false",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
]
SYNC = ["hydra.sweeper.batched=true", "hydra/sweeper/pruner=none"]
# Reference, not a target: asynchronous trials of one epoch each, what a pruner that stopped every
# trial after its first epoch would at best cost (start-up and per-trial costs stay).
FLOOR = ["hydra.sweeper.batched=false", "hydra/sweeper/pruner=none", "trainer.max_epochs=1"]
FLOOR_NAME = "floor: 1 epoch/trial"
# The pruner chosen for this space (benchmarks/README.md says why): asynchronous successive
# halving with rungs after epochs 2, 4 and 10 (steps 1, 3, 9), a third promoted at each.
DEFAULT_PRUNER = "successive_halving"
DEFAULT_PRUNER_SETTINGS = ["min_resource=1", "reduction_factor=3"]


@dataclass
class Sweep:
    seconds: float
    best: float | None
    complete: int
    pruned: int
    failed: int
    epochs: int


def async_overrides(pruner: str, settings: list[str]) -> list[str]:
    return [
        "hydra.sweeper.batched=false",
        f"hydra/sweeper/pruner={pruner}",
        *(f"hydra.sweeper.pruner.{setting}" for setting in settings),
    ]


def sweep_overrides(mode: list[str], args: argparse.Namespace, seed: int, tmp: str) -> list[str]:
    epochs = [] if any(o.startswith("trainer.max_epochs=") for o in mode) else [args.epochs]
    return [
        *COMMON,
        f"paths.output_root={tmp}",
        f"hydra.sweep.dir={tmp}/sweep",
        f"hydra.launcher.n_jobs={args.workers}",
        f"hydra.sweeper.n_jobs={args.workers}",
        f"hydra.sweeper.n_trials={args.trials}",
        f"hydra.sweeper.sampler.seed={seed}",
        f"hydra.sweeper.study_name=bench_seed{seed}",
        *(f"trainer.max_epochs={e}" for e in epochs),
        *mode,
    ]


def epochs_trained(journal: Path) -> int:
    """Epochs validated over all trials: each trial reports one value per epoch to the study."""
    import optuna

    from lightning_args.sweep.storage import open_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=None, storage=open_storage(str(journal)))
    return sum(len(t.intermediate_values) for t in study.get_trials(deepcopy=False))


def run_sweep(mode: list[str], args: argparse.Namespace, seed: int) -> Sweep:
    with tempfile.TemporaryDirectory(prefix="sweep-efficiency-") as tmp:
        argv = [sys.executable, "train.py", "-m", *sweep_overrides(mode, args, seed, tmp)]
        log = Path(tmp) / "sweep.log"
        start = time.perf_counter()
        with log.open("w") as out:
            code = subprocess.run(argv, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT).returncode
        seconds = time.perf_counter() - start
        summary_path = Path(tmp) / "sweep" / "summary.yaml"
        if code != 0 or not summary_path.exists():
            tail = "".join(log.read_text().splitlines(keepends=True)[-40:])
            sys.exit(f"{' '.join(argv)}\nexited {code}:\n{tail}")
        summary: dict[str, Any] = yaml.safe_load(summary_path.read_text())
        counts = summary["trials"]
        best = summary.get("best", {}).get("value")
        return Sweep(
            seconds=seconds,
            best=None if best is None else float(best),
            complete=counts.get("COMPLETE", 0),
            pruned=counts.get("PRUNED", 0),
            failed=counts.get("FAIL", 0),
            epochs=epochs_trained(Path(tmp) / "sweep" / "study.journal"),
        )


def row(*cells: str) -> str:
    widths = (8, 32, 8, 13, 10, 8, 8, 8)
    return (
        cells[0].ljust(widths[0])
        + cells[1].ljust(widths[1])
        + "".join(cell.rjust(width) for cell, width in zip(cells[2:], widths[2:], strict=True))
    )


def fmt_best(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=24, help="trials per sweep (default 24)")
    parser.add_argument("--workers", type=int, default=2, help="parallel jobs (default 2)")
    parser.add_argument("--seeds", type=int, default=3, help="sampler seeds 0..N-1 (default 3)")
    parser.add_argument(
        "--epochs", type=int, default=20, help="trainer.max_epochs (default 20, the app's)"
    )
    parser.add_argument(
        "--pruner",
        default=DEFAULT_PRUNER,
        help=f"the async mode's hydra/sweeper/pruner option (default {DEFAULT_PRUNER})",
    )
    parser.add_argument(
        "--pruner-setting",
        action="append",
        metavar="KEY=VALUE",
        help="a hydra.sweeper.pruner.KEY=VALUE override for the async mode, repeatable "
        f"(default: {' '.join(DEFAULT_PRUNER_SETTINGS)} with --pruner {DEFAULT_PRUNER}, "
        "none otherwise)",
    )
    parser.add_argument(
        "--no-floor", action="store_true", help=f"skip the reference sweep '{FLOOR_NAME}'"
    )
    args = parser.parse_args()
    settings = args.pruner_setting
    if settings is None:
        settings = DEFAULT_PRUNER_SETTINGS if args.pruner == DEFAULT_PRUNER else []

    sync_name, async_name = "sync batches, no pruner", f"async+{args.pruner}"
    modes = {sync_name: SYNC, async_name: async_overrides(args.pruner, settings)}
    if not args.no_floor:
        modes[FLOOR_NAME] = FLOOR
    results: dict[str, list[Sweep]] = {name: [] for name in modes}
    for seed in range(args.seeds):  # interleaved, so that load changes hit every mode
        for name, mode in modes.items():
            results[name].append(run_sweep(mode, args, seed))

    print(
        f"digits MLP, {args.epochs} epochs/trial, {args.trials} trials, {args.workers} workers, "
        f"TPE seeds 0..{args.seeds - 1}, objective val/acc (max); seconds of wall time"
    )
    for name, mode in modes.items():
        shown = sweep_overrides(mode, args, 0, "<tmp>")
        shown = [o.replace("seed=0", "seed=<seed>").replace("seed0", "<seed>") for o in shown]
        print(f"{name}: python train.py -m {' '.join(shown)}")
    print()
    print(row("seed", "mode", "wall s", "best val/acc", "complete", "pruned", "failed", "epochs"))
    for seed in range(args.seeds):
        for name in modes:
            r = results[name][seed]
            counts = (r.complete, r.pruned, r.failed, r.epochs)
            print(row(str(seed), name, f"{r.seconds:.1f}", fmt_best(r.best), *map(str, counts)))
    wall: dict[str, float] = {}
    best: dict[str, float | None] = {}
    for name in modes:
        sweeps = results[name]
        bests = [r.best for r in sweeps if r.best is not None]
        wall[name] = statistics.median(r.seconds for r in sweeps)
        best[name] = statistics.median(bests) if bests else None
        medians = [
            statistics.median(getattr(r, key) for r in sweeps)
            for key in ("complete", "pruned", "failed", "epochs")
        ]
        figures = (f"{wall[name]:.1f}", fmt_best(best[name]), *(f"{m:g}" for m in medians))
        print(row("median", name, *figures))

    print()
    for name in modes:
        if name != sync_name:
            print(f"wall time {name} / {sync_name}: {wall[name] / wall[sync_name]:.2f}x")
    ratio = wall[async_name] / wall[sync_name]
    print(
        f"{'PASS' if ratio <= TARGET_RATIO else 'FAIL'}: {async_name} at most {TARGET_RATIO:.1f}x "
        f"the wall time of sync batches ({wall[async_name]:.1f} s / {wall[sync_name]:.1f} s = "
        f"{ratio:.2f}x)"
    )
    ours, theirs = best[async_name], best[sync_name]
    best_ok = ours is not None and theirs is not None and ours >= theirs
    print(
        f"{'PASS' if best_ok else 'FAIL'}: {async_name} median best val/acc equal or better "
        f"({fmt_best(ours)} against {fmt_best(theirs)})"
    )


if __name__ == "__main__":
    main()
