"""Population-based training against ASHA and random search at equal compute (#16's target:
PBT's best at least as good as ASHA's).

Every sweep runs the example app (``train.py``, ``--model``, constant learning rate:
``scheduler=none`` for all three, so that they search the same space) over ``optimizer.lr`` in
``[1e-4, 3e-2]`` and ``optimizer.weight_decay`` in ``[1e-5, 1e-1]`` (both log), two jobs at a
time through ``hydra/launcher=joblib``, maximising val/acc:

- PBT (``+sweep=pbt``): ``--members`` members x ``--intervals`` intervals of ``--interval``
  epochs: ``members * intervals * interval`` epochs in all;
- random search (``+sweep=optuna``, random sampler, no pruner): ``members`` trials of
  ``intervals * interval`` epochs: the same epochs;
- ASHA (``+sweep=optuna``, random sampler, successive halving: Optuna's asynchronous one, from
  1 epoch, reduction factor 3): as many trials of up to ``intervals * interval`` epochs as fit
  in about the same epochs (``--asha-trials``); the epochs it trained are printed.

Once per seed (``--seeds``); printed per method: the medians of wall time, best val/acc and
epochs trained, then per seed, and PASS/FAIL of PBT's median best against ASHA's. A report: it
exits 0.

    python benchmarks/pbt.py [--model cnn] [--members 8] [--intervals 4] [--interval 2]
                             [--asha-trials 20] [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from collections.abc import Callable
from functools import partial
from pathlib import Path

import yaml
from _sweeps import study_of, timed_sweep

SPACE = {
    "optimizer.lr": "tag(log, interval(1e-4, 3e-2))",
    "optimizer.weight_decay": "tag(log, interval(1e-5, 1e-1))",
}


def _common(args: argparse.Namespace) -> list[str]:
    return [f"model={args.model}", "scheduler=none"]


def _space() -> list[str]:
    """The searched keys as command-line sweeps: both sweepers read them from there."""
    return [f"{key}={value}" for key, value in SPACE.items()]


def pbt(args: argparse.Namespace, seed: int, root: Path) -> dict[str, float]:
    wall = timed_sweep(
        root,
        *_common(args),
        "+sweep=pbt",
        f"hydra.sweeper.population={args.members}",
        f"hydra.sweeper.intervals={args.intervals}",
        f"hydra.sweeper.perturbation_interval={args.interval}",
        f"hydra.sweeper.seed={seed}",
        *_space(),
    )
    lines = [json.loads(line) for line in (root / "sweep" / "pbt.jsonl").read_text().splitlines()]
    best = yaml.safe_load((root / "sweep" / "pbt.yaml").read_text())["best"]["score"]
    return {"wall": wall, "best": float(best), "epochs": float(len(lines) * args.interval)}


def optuna_sweep(
    args: argparse.Namespace, seed: int, root: Path, *, trials: int, asha: bool
) -> dict[str, float]:
    pruner = (
        ["hydra/sweeper/pruner=successive_halving", "hydra.sweeper.pruner.min_resource=1",
         "hydra.sweeper.pruner.reduction_factor=3"]
        if asha else ["hydra/sweeper/pruner=none"]
    )  # fmt: skip
    wall = timed_sweep(
        root,
        *_common(args),
        "+sweep=optuna",
        "hydra/sweeper/sampler=random",
        f"hydra.sweeper.sampler.seed={seed}",
        *pruner,
        f"hydra.sweeper.n_trials={trials}",
        "hydra.sweeper.plots=false",
        f"trainer.max_epochs={args.intervals * args.interval}",
        "hydra.sweeper.search_space_group=null",  # only the two keys below, as PBT's
        *_space(),
    )
    study = study_of(root)
    epochs = sum(len(t.intermediate_values) for t in study.trials)
    return {"wall": wall, "best": float(study.best_value), "epochs": float(epochs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="cnn")
    parser.add_argument("--members", type=int, default=8)
    parser.add_argument("--intervals", type=int, default=4)
    parser.add_argument("--interval", type=int, default=2)
    parser.add_argument("--asha-trials", type=int, default=20)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    methods: dict[str, Callable[[int, Path], dict[str, float]]] = {
        "pbt": partial(pbt, args),
        "asha": partial(optuna_sweep, args, trials=args.asha_trials, asha=True),
        "random": partial(optuna_sweep, args, trials=args.members, asha=False),
    }
    results: dict[str, list[dict[str, float]]] = {name: [] for name in methods}
    for seed in args.seeds:
        for name, method in methods.items():
            with tempfile.TemporaryDirectory(prefix=f"pbt-bench-{name}-") as tmp:
                result = method(seed, Path(tmp))
            results[name].append(result)
            print(f"  seed {seed} {name}: {result['wall']:.0f} s, best {result['best']:.4f}, "
                  f"{result['epochs']:.0f} epochs", flush=True)  # fmt: skip
    print(
        f"\n{args.model}, {args.members} members x {args.intervals} intervals x {args.interval} "
        f"epochs; medians over seeds {args.seeds}"
    )
    print(f"{'method':<8}{'wall s':>8}{'best val/acc':>14}{'epochs':>8}")
    median = {
        name: {key: statistics.median(r[key] for r in rs) for key in ("wall", "best", "epochs")}
        for name, rs in results.items()
    }
    for name, m in median.items():
        print(f"{name:<8}{m['wall']:>8.0f}{m['best']:>14.4f}{m['epochs']:>8.0f}")
    verdict = "PASS" if median["pbt"]["best"] >= median["asha"]["best"] else "FAIL"
    print(
        f"\ntarget: PBT's median best >= ASHA's: {median['pbt']['best']:.4f} vs "
        f"{median['asha']['best']:.4f} ({median['asha']['epochs']:.0f} epochs against "
        f"{median['pbt']['epochs']:.0f}): {verdict}"
    )


if __name__ == "__main__":
    main()
