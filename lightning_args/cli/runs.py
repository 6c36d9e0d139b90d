"""``runs``, ``show``, ``diff`` and ``plot``: run directories read from their files only
(``run.json`` and ``.hydra/*.yaml``), never by importing torch."""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lightning_args._util.flat import flatten
from lightning_args._util.stats import Spread, noise_verdict
from lightning_args.cli._table import print_rows
from lightning_args.errors import RecordError, UsageError
from lightning_args.run.kfold import FOLDS, REFIT, fold_dirs
from lightning_args.run.ownership import holder
from lightning_args.run.record import RECORD_NAME, RunRecord, RunStatus

_ABSENT = object()


@dataclass
class Run:
    """A run directory and what its files say."""

    path: Path
    #: What its ``run.json`` says (read by :meth:`RunRecord.read`, the one reader); ``None``
    #: when it cannot be read: the run is listed as ``broken``.
    record: RunRecord | None

    @classmethod
    def read(cls, directory: Path) -> Run:
        """The run in ``directory`` (its ``run.json`` must exist)."""
        return cls(directory, RunRecord.read(directory))

    def config(self) -> dict[str, Any]:
        """The composed config (``.hydra/config.yaml``), interpolations left as written."""
        return _mapping(self.path / ".hydra" / "config.yaml")

    def choices(self) -> dict[str, str]:
        """The config-group options the run used (``model=mlp``, ``model/encoder=cnn``...), as
        Hydra recorded them in ``.hydra/hydra.yaml`` (a fold or refit run: its k-fold run's);
        Hydra's own groups left out."""
        path = self.path / ".hydra" / "hydra.yaml"
        parent = self.kfold_parent
        if not path.is_file() and parent is not None:
            path = parent / ".hydra" / "hydra.yaml"
        hydra = _mapping(path).get("hydra")
        runtime = hydra.get("runtime") if isinstance(hydra, dict) else None
        recorded = runtime.get("choices") if isinstance(runtime, dict) else None
        if not isinstance(recorded, dict):
            return {}
        return {
            str(group): str(option)
            for group, option in sorted(recorded.items(), key=lambda item: str(item[0]))
            if isinstance(option, str | int | float)
            and not isinstance(option, bool)
            and not str(group).startswith("hydra/")
        }

    @property
    def status(self) -> str:
        """The record's status; ``interrupted`` for a ``running`` one whose writer is gone."""
        if self.record is None:
            return RunStatus.BROKEN.value
        status = self.record.status
        if status == RunStatus.RUNNING:
            current = holder(self.path)
            if current is None or not current.alive:
                return RunStatus.INTERRUPTED.value
        return status

    @property
    def metrics(self) -> dict[str, float]:
        return self.record.metrics if self.record is not None else {}

    @property
    def overrides(self) -> str:
        """The command line's overrides; a forked run's: the keys it changed."""
        if self.record is None:
            return ""
        changes = self.record.fork.get("changes")
        if isinstance(changes, dict) and not self.record.overrides:
            return " ".join(f"{key}={json.dumps(value)}" for key, value in changes.items())
        return " ".join(self.record.overrides)

    @property
    def forked_from(self) -> str | None:
        """``<parent run>@<step>`` for a forked run (:func:`lightning_args.fork`)."""
        lineage = self.record.fork if self.record is not None else {}
        parent, step = lineage.get("parent"), lineage.get("step")
        if not isinstance(parent, str):
            return None
        return f"{Path(parent).name}@{step}" if isinstance(step, int) else Path(parent).name

    @property
    def kfold_parent(self) -> Path | None:
        """The k-fold run this one would be a part of, by its place (``folds/<k>``, ``refit``)."""
        if self.path.parent.name == FOLDS:
            return self.path.parent.parent
        return self.path.parent if self.path.name == REFIT else None

    @property
    def is_kfold(self) -> bool:
        """A k-fold run: its record aggregates the fold runs under ``folds/``."""
        return self.record is not None and bool(self.record.cv)

    def row(self, metrics: Sequence[str], choices: dict[str, str]) -> dict[str, Any]:
        record = self.record
        objective = record.objective if record is not None else {}
        return {
            "run": str(self.path),
            "status": self.status,
            "choices": " ".join(f"{group}={option}" for group, option in choices.items()),
            "overrides": self.overrides,
            "objective": objective.get("value"),
            # A k-fold run's objective is the folds' mean: its spread and the folds behind it.
            **({"objective_std": objective.get("std"), "folds": objective.get("folds")}
               if self.is_kfold else {}),
            # A forked run: the run and step it went on from (its overrides: what it changed).
            **({"forked_from": self.forked_from} if self.forked_from else {}),
            **{name: self.metrics.get(name) for name in metrics},
            "duration_s": record.duration_s if record is not None else None,
        }  # fmt: skip


def find_runs(root: Path) -> Iterator[Run]:
    """Every run under ``root`` (any depth), oldest first; one whose ``run.json`` is broken is
    listed as ``broken`` (and named on stderr), not skipped."""
    for record in sorted(root.rglob(RECORD_NAME)):
        try:
            yield Run.read(record.parent)
        except (OSError, RecordError) as error:
            print(f"lightning-args: {error}", file=sys.stderr)
            yield Run(record.parent, None)


def _matches(run: Run, where: list[tuple[str, str]]) -> bool:
    if not where:
        return True
    config = flatten(run.config())
    return all(str(config.get(key)) == value for key, value in where)


def _choices(run: Run) -> dict[str, str]:
    """``run``'s choices; none (its file named on stderr) when its ``hydra.yaml`` is broken."""
    import yaml

    try:
        return run.choices()
    except yaml.YAMLError as error:
        from lightning_args.run.explain import explain

        print(f"lightning-args: {explain(error, what='the listing')}", file=sys.stderr)
        return {}


def cmd_runs(args: argparse.Namespace) -> int:
    root = Path(args.root)
    if not root.is_dir():
        raise UsageError(f"no directory {str(root)!r}: expected a folder of runs, e.g. outputs")
    where = [_split(item, "--where", "model.num_classes=10") for item in args.where]
    wanted = [_split(item, "--choice", "model=cnn") for item in args.choice]
    found = list(find_runs(root))
    # A k-fold run is one row (its folds' mean and std); --folds lists its folds' runs and its
    # refit's too.
    parents = {r.path for r in found if r.is_kfold}
    runs = [
        (r, choices)
        for r in found
        if args.folds or r.kfold_parent not in parents
        if (args.status is None or r.status == args.status) and _matches(r, where)
        for choices in [_choices(r)]
        if all(choices.get(group) == option for group, option in wanted)
    ]
    metrics = sorted({m for r, _ in runs for m in r.metrics})
    shown = [m for m in metrics if args.all or m.startswith(("val/", "test/")) or m == args.sort]
    rows = [r.row(shown, choices) for r, choices in runs]
    if args.sort:
        ranked = [row for row in rows if _number(row.get(args.sort))]
        ranked.sort(key=lambda row: row[args.sort], reverse=args.desc)
        rows = ranked + [row for row in rows if not _number(row.get(args.sort))]
    if args.tree:
        rows = _as_tree(rows, [r for r, _ in runs])
    print_rows(rows, args.format)
    return 0


def _as_tree(rows: list[dict[str, Any]], runs: list[Run]) -> list[dict[str, Any]]:
    """``rows`` with each forked run under the run it was forked from, indented (``└``). Every
    row is shown once, also where hand-edited records make a cycle."""
    index = {str(run.path.resolve()): i for i, run in enumerate(runs)}
    children: dict[int, list[int]] = {}
    roots: list[int] = []
    for i, run in enumerate(runs):
        parent = run.record.fork.get("parent") if run.record is not None else None
        above = index.get(parent) if isinstance(parent, str) else None
        if above is None or above == i:
            roots.append(i)
        else:
            children.setdefault(above, []).append(i)
    out: list[dict[str, Any]] = []
    seen: set[int] = set()

    def visit(i: int, depth: int) -> None:
        if i in seen:
            return
        seen.add(i)
        name = rows[i]["run"]
        out.append({**rows[i], "run": "  " * (depth - 1) + "└ " + name if depth else name})
        for child in children.get(i, []):
            visit(child, depth + 1)

    for i in [*roots, *range(len(rows))]:  # then what a cycle kept from every root
        visit(i, 0)
    return out


def cmd_show(args: argparse.Namespace) -> int:
    run = run_at(args.run)
    config = (run.path / ".hydra" / "config.yaml").read_text()  # missing: one message, first
    print(json.dumps(run.record.to_dict() if run.record is not None else {}, indent=2))
    choices = _choices(run)
    if choices:
        print("\n# choices (.hydra/hydra.yaml)")
        print(" ".join(f"{group}={option}" for group, option in choices.items()))
    current = holder(run.path)
    if current is not None and current.alive:
        print(f"\n# being written by {current.describe()}")
    elif run.status == RunStatus.INTERRUPTED:
        print(f"\n# interrupted: its writer is gone. Continue it: lightning-args resume {run.path}")
    print("\n# config (.hydra/config.yaml)")
    print(config.rstrip())
    if run.record is not None and run.is_kfold:
        _show_folds(run.record.cv, run.record.objective)
        return 0  # its checkpoints are its folds'
    checkpoints = sorted((run.path / "checkpoints").glob("*.ckpt"))
    print("\n# checkpoints")
    for path in checkpoints:
        print(f"{path.name}  {path.stat().st_size / 1e6:.1f} MB")
    return 0


def _show_folds(cv: dict[str, Any], objective: dict[str, Any]) -> None:
    """A k-fold run's folds, a line each, and its mean objective with its spread."""
    print("\n# folds (a k-fold run: each fold is a run of its own, with its checkpoints)")
    folds = cv.get("folds")
    for fold in folds if isinstance(folds, list) else []:
        if isinstance(fold, dict):
            value = fold.get("objective")
            shown = f"{value:.6g}" if isinstance(value, int | float) else "-"
            print(f"{fold.get('run')}  {fold.get('status') or 'not started'}  {shown}")
    refit = cv.get("refit")
    if isinstance(refit, dict):
        metrics = refit.get("metrics")
        metrics = metrics if isinstance(metrics, dict) else {}
        tested = "  ".join(
            f"{k}={v:.6g}"
            for k, v in sorted(metrics.items())
            if str(k).startswith("test") and isinstance(v, int | float)
        )
        print(
            f"{refit.get('run')}  {refit.get('status') or 'not started'}  {tested or '-'}"
            "  (trained on all the folds' samples, validated on none)"
        )
    value, std = objective.get("value"), objective.get("std")
    if isinstance(value, int | float) and isinstance(std, int | float):
        print(
            f"{objective.get('metric')}: {value:.6g} +- {std:.4g} "
            f"(mean and std over {objective.get('folds')} folds)"
        )


def cmd_diff(args: argparse.Namespace) -> int:
    a, b = run_at(args.run_a), run_at(args.run_b)
    changed = 0
    chosen_a, chosen_b = _choices(a), _choices(b)
    for group in sorted(chosen_a.keys() | chosen_b.keys()):
        old, new = chosen_a.get(group, _ABSENT), chosen_b.get(group, _ABSENT)
        if old != new:
            changed += 1
            print(f"choice {group}: {_shown(old)} -> {_shown(new)}")
    left, right = flatten(a.config()), flatten(b.config())
    for key in sorted(left.keys() | right.keys()):
        old, new = left.get(key, _ABSENT), right.get(key, _ABSENT)
        if old != new:
            changed += 1
            print(f"{key}: {_shown(old)} -> {_shown(new)}")
    if not changed:
        print("same config")
    old_spread, new_spread = _objective_spread(a), _objective_spread(b)
    if old_spread is not None and new_spread is not None:  # two k-fold runs: are they apart?
        metric = a.record.objective.get("metric") if a.record is not None else "objective"
        shown = [f"{s.mean:.6g} +- {s.std:.4g} ({s.n} folds)" for s in (old_spread, new_spread)]
        print(f"{metric}: {shown[0]} -> {shown[1]}: {noise_verdict(old_spread, new_spread)}")
    return 0


def _objective_spread(run: Run) -> Spread | None:
    """A k-fold run's objective as the folds' spread; ``None`` for any other run."""
    objective = run.record.objective if run.record is not None and run.is_kfold else {}
    values = [objective.get(key) for key in ("folds", "value", "std", "sem")]
    numbers = [float(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    if len(numbers) != len(values):  # a record from elsewhere: no verdict rather than a wrong one
        return None
    n, mean, std, sem = numbers
    return Spread(int(n), mean, std, sem)


def cmd_plot(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.5))
    for path in args.runs:
        run = run_at(path)
        label = f"{run.path.name} {run.overrides}".strip()
        if not run.is_kfold:
            points = _points(run.path, args.metric, path)
            axes.plot(*zip(*points, strict=True), marker="o", markersize=3, label=label)
            continue
        # A k-fold run: its folds' mean at each epoch they all reached (at their mean step),
        # thick, and each fold's own curve, thin, in the same colour.
        folds = list(fold_dirs(run.path).values())
        curves = [_points(fold, args.metric, path) for fold in folds]
        by_epoch = [_per_epoch(fold, args.metric) for fold in folds]
        epochs = sorted(set.intersection(*(set(e) for e in by_epoch))) if by_epoch else []
        steps = [statistics.fmean(e[epoch][0] for e in by_epoch) for epoch in epochs]
        mean = [statistics.fmean(e[epoch][1] for e in by_epoch) for epoch in epochs]
        (line,) = axes.plot(
            steps, mean, linewidth=2.2, marker="o", markersize=3,
            label=f"{label} (mean of {len(folds)} folds; thin: each fold)",
        )  # fmt: skip
        for curve in curves:
            axes.plot(*zip(*curve, strict=True), color=line.get_color(), linewidth=0.8, alpha=0.4)
    axes.set_xlabel("step")
    axes.set_ylabel(args.metric)
    axes.grid(alpha=0.3)
    # Below the axes: labels carry a run's overrides and can be wider than the plot.
    axes.legend(fontsize="small", loc="upper left", bbox_to_anchor=(0, -0.15))
    figure.savefig(args.out, dpi=120, bbox_inches="tight")
    print(args.out)
    return 0


def _per_epoch(run: Path, metric: str) -> dict[int, tuple[float, float]]:
    """``metric``'s last (step, value) of each epoch in ``run``'s metrics.csv."""
    path = run / "metrics.csv"
    if not path.is_file():
        return {}
    with path.open() as f:
        rows = [r for r in csv.DictReader(f) if r.get(metric) and r.get("epoch")]
    return {int(float(r["epoch"])): (float(r["step"]), float(r[metric])) for r in rows}


def _points(run: Path, metric: str, named: str) -> list[tuple[float, float]]:
    """``metric``'s (step, value) points in ``run``'s metrics.csv; one message if it has none."""
    points = _curve(run / "metrics.csv", metric)
    if not points:
        logged = ", ".join(_logged(run / "metrics.csv")[:6]) or "none (no metrics.csv)"
        raise UsageError(
            f"{named!r} logged no {metric!r} in {run / 'metrics.csv'}: expected a metric it "
            f"logs, e.g. {logged}. Fix: --metric <one of them>"
        )
    return points


def _curve(path: Path, metric: str) -> list[tuple[float, float]]:
    if not path.is_file():
        return []
    with path.open() as f:
        rows = list(csv.DictReader(f))
    return [(float(r["step"]), float(r[metric])) for r in rows if r.get(metric)]


def _logged(path: Path) -> list[str]:
    if not path.is_file():
        return []
    with path.open() as f:
        header = next(csv.reader(f), [])
    return [name for name in header if name not in ("epoch", "step")]


def _shown(value: Any) -> str:
    return "(absent)" if value is _ABSENT else json.dumps(value)


def run_at(path: str) -> Run:
    """The run directory ``path`` names; :class:`UsageError` when it is none."""
    root = Path(path)
    if not (root / RECORD_NAME).is_file():
        raise UsageError(
            f"{path!r} is not a run directory: it has no {RECORD_NAME}. Expected a folder such "
            "as outputs/runs/<date>_<time>. Fix: `lightning-args runs` lists them"
        )
    return Run.read(root)


def _split(item: str, flag: str, example: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key:
        name = "GROUP=OPTION" if flag == "--choice" else "KEY=VALUE"
        raise UsageError(f"{flag} {item!r}: expected {name}, e.g. {flag} {example}")
    return key, value


def _mapping(path: Path) -> dict[str, Any]:
    """The YAML mapping in ``path`` (``{}`` when it is missing or holds no mapping), loaded
    safely: the file may come from anyone. A file that is not YAML raises yaml's error, which
    names the file and line (:func:`lightning_args.run.explain.explain` says it in one line)."""
    import yaml

    if not path.is_file():
        return {}
    # libyaml's loader when PyYAML has it: ~10x faster, felt by --where over hundreds of runs.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with path.open() as stream:  # from the file, so that a YAML error names it
        loaded = yaml.load(stream, Loader=loader)
    return loaded if isinstance(loaded, dict) else {}


def _number(value: Any) -> bool:
    return isinstance(value, int | float)
