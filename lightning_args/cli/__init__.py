"""``lightning-args``: look at run directories from the shell (training stays ``train.py``).

    lightning-args runs [ROOT] [--status S] [--where KEY=VALUE]... [--sort METRIC] [--format F]
    lightning-args show RUN
    lightning-args diff RUN_A RUN_B
    lightning-args plot RUN... --metric val/acc [--out curves.png]
    lightning-args resume RUN [trainer.max_epochs=N]
    lightning-args reproduce RUN [--out DIR]
    lightning-args study SWEEP_DIR [--storage URL] [--name STUDY] [--no-plots] [--format F]

Only ``run.json`` and ``.hydra/*.yaml`` are read: no torch import, so listing hundreds of runs
takes a moment, not the seconds an import of torch costs (``study`` imports optuna).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lightning_args._util.flat import flatten
from lightning_args.errors import LightningArgsError, RecordError, UsageError
from lightning_args.run.ownership import holder
from lightning_args.run.record import RECORD_NAME, RunRecord, RunStatus


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
        import yaml

        path = self.path / ".hydra" / "config.yaml"
        # libyaml's loader when PyYAML has it: ~10x faster, felt by --where over hundreds of runs.
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        if not path.is_file():
            return {}
        with path.open() as stream:  # from the file, so that a YAML error names it
            loaded = yaml.load(stream, Loader=loader)
        return loaded if isinstance(loaded, dict) else {}

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
        return " ".join(self.record.overrides) if self.record is not None else ""

    def row(self, metrics: Sequence[str]) -> dict[str, Any]:
        record = self.record
        return {
            "run": str(self.path),
            "status": self.status,
            "overrides": self.overrides,
            "objective": record.objective.get("value") if record is not None else None,
            **{name: self.metrics.get(name) for name in metrics},
            "duration_s": record.duration_s if record is not None else None,
        }


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


def cmd_runs(args: argparse.Namespace) -> int:
    root = Path(args.root)
    if not root.is_dir():
        raise UsageError(f"no directory {str(root)!r}: expected a folder of runs, e.g. outputs")
    where = [_split(item) for item in args.where]
    runs = [
        r
        for r in find_runs(root)
        if (args.status is None or r.status == args.status) and _matches(r, where)
    ]
    metrics = sorted({m for r in runs for m in r.metrics})
    shown = [m for m in metrics if args.all or m.startswith(("val/", "test/")) or m == args.sort]
    rows = [r.row(shown) for r in runs]
    if args.sort:
        ranked = [row for row in rows if _number(row.get(args.sort))]
        ranked.sort(key=lambda row: row[args.sort], reverse=args.desc)
        rows = ranked + [row for row in rows if not _number(row.get(args.sort))]
    _print(rows, args.format)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    run = _run(args.run)
    config = (run.path / ".hydra" / "config.yaml").read_text()  # missing: one message, first
    print(json.dumps(run.record.to_dict() if run.record is not None else {}, indent=2))
    current = holder(run.path)
    if current is not None and current.alive:
        print(f"\n# being written by {current.describe()}")
    elif run.status == RunStatus.INTERRUPTED:
        print(f"\n# interrupted: its writer is gone. Continue it: lightning-args resume {run.path}")
    print("\n# config (.hydra/config.yaml)")
    print(config.rstrip())
    checkpoints = sorted((run.path / "checkpoints").glob("*.ckpt"))
    print("\n# checkpoints")
    for path in checkpoints:
        print(f"{path.name}  {path.stat().st_size / 1e6:.1f} MB")
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    a, b = _run(args.run_a), _run(args.run_b)
    left, right = flatten(a.config()), flatten(b.config())
    changed = 0
    for key in sorted(left.keys() | right.keys()):
        old, new = left.get(key, _ABSENT), right.get(key, _ABSENT)
        if old != new:
            changed += 1
            print(f"{key}: {_shown(old)} -> {_shown(new)}")
    if not changed:
        print("same config")
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.5))
    for path in args.runs:
        run = _run(path)
        points = _curve(run.path / "metrics.csv", args.metric)
        if not points:
            logged = ", ".join(_logged(run.path / "metrics.csv")[:6]) or "none (no metrics.csv)"
            raise UsageError(
                f"{path!r} logged no {args.metric!r} in metrics.csv: expected a metric it logs, "
                f"e.g. {logged}. Fix: --metric <one of them>"
            )
        label = f"{run.path.name} {run.overrides}".strip()
        axes.plot(*zip(*points, strict=True), marker="o", markersize=3, label=label)
    axes.set_xlabel("step")
    axes.set_ylabel(args.metric)
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(args.out, dpi=120)
    print(args.out)
    return 0


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


_ABSENT = object()


def cmd_study(args: argparse.Namespace) -> int:
    from lightning_args.sweep import report
    from lightning_args.sweep.storage import open_storage

    directory = Path(args.sweep_dir)
    storage_url = args.storage or str(directory / "study.journal")
    if args.storage is None and not (directory / "study.journal").is_file():
        raise UsageError(
            f"{args.sweep_dir!r} holds no study.journal: expected the directory of a sweep "
            "(outputs/sweeps/<study>), or --storage URL for a study stored elsewhere"
        )
    import optuna

    storage = open_storage(storage_url)
    names = optuna.get_all_study_names(storage)
    name = args.name or (names[0] if len(names) == 1 else None)
    if name not in names:
        raise UsageError(
            f"--name {name!r}: {storage_url} holds the studies {', '.join(names) or '(none)'}. "
            "Fix: --name <one of them>"
        )
    study = optuna.load_study(study_name=name, storage=storage)
    # --no-plots only reads: the sweep directory stays as its sweepers left it.
    summary = report.summarize(study) if args.no_plots else report.write(study, directory)
    rows = [
        {
            "trial": t.number,
            "state": t.state.name,
            "value": (t.values[0] if len(t.values) == 1 else t.values) if t.values else None,
            "duration_s": t.duration.total_seconds() if t.duration else None,
            **t.params,
            "run": str(directory / str(t.number)),
        }
        for t in study.get_trials(deepcopy=False)
    ]
    if args.format == "table":
        print(report.describe(summary))
        for plot in summary.get("plots", []):
            print(f"  Plot: {directory / plot}")
    _print(rows, args.format)
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    from lightning_args.run.resume import resume

    value = resume(_run(args.run).path, args.overrides)
    print(f"objective: {value}")
    return 0


def cmd_reproduce(args: argparse.Namespace) -> int:
    from lightning_args.run.reproduce import reproduce

    result = reproduce(_run(args.run).path, args.out)
    for warning in result.warnings:
        print(f"warning: {warning}")
    if result.identical:
        print(f"reproduced: every final metric is equal. New run: {result.run_dir}")
        return 0
    print(f"NOT reproduced ({len(result.differences)} metrics differ). New run: {result.run_dir}")
    for key, (old, new) in result.differences.items():
        print(f"  {key}: {old} -> {new}")
    return 1


def _shown(value: Any) -> str:
    return "(absent)" if value is _ABSENT else json.dumps(value)


def _run(path: str) -> Run:
    root = Path(path)
    if not (root / RECORD_NAME).is_file():
        raise UsageError(
            f"{path!r} is not a run directory: it has no {RECORD_NAME}. Expected a folder such "
            "as outputs/runs/<date>_<time>. Fix: `lightning-args runs` lists them"
        )
    return Run.read(root)


def _split(item: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise UsageError(f"--where {item!r}: expected KEY=VALUE, e.g. --where model.num_classes=10")
    return key, value


def _number(value: Any) -> bool:
    return isinstance(value, int | float)


def _print(rows: list[dict[str, Any]], fmt: str) -> None:
    if fmt == "json":
        print(json.dumps(rows, indent=2))
        return
    columns = list(dict.fromkeys(key for row in rows for key in row)) or ["run"]
    if fmt == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(*columns)
    for row in rows:
        table.add_row(*(_cell(row.get(c)) for c in columns))
    # Piped, the table keeps its natural width rather than being cut to 80 columns.
    Console(width=None if sys.stdout.isatty() else 10_000).print(table)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


def parser() -> argparse.ArgumentParser:
    """The command line of ``lightning-args``."""
    top = argparse.ArgumentParser(prog="lightning-args", description=__doc__.splitlines()[0])
    sub = top.add_subparsers(dest="command", required=True)
    runs = sub.add_parser("runs", help="a table of runs")
    runs.add_argument("root", nargs="?", default="outputs", help="folder of runs (outputs)")
    runs.add_argument("--status", choices=[s.value for s in RunStatus])  # requeued included
    runs.add_argument("--where", action="append", default=[], metavar="KEY=VALUE")
    runs.add_argument("--sort", metavar="COLUMN", help="e.g. objective, test/acc")
    runs.add_argument("--desc", action="store_true", help="largest first")
    runs.add_argument("--all", action="store_true", help="every metric, not only val/ test/")
    runs.add_argument("--format", choices=["table", "json", "csv"], default="table")
    runs.set_defaults(func=cmd_runs)
    show = sub.add_parser("show", help="record, config and checkpoints of a run")
    show.add_argument("run")
    show.set_defaults(func=cmd_show)
    diff = sub.add_parser("diff", help="config differences between two runs")
    diff.add_argument("run_a")
    diff.add_argument("run_b")
    diff.set_defaults(func=cmd_diff)
    plot = sub.add_parser("plot", help="learning curves of runs as a PNG")
    plot.add_argument("runs", nargs="+")
    plot.add_argument("--metric", default="val/acc")
    plot.add_argument("--out", default="curves.png")
    plot.set_defaults(func=cmd_plot)
    resume = sub.add_parser("resume", help="continue a run in its directory from last.ckpt")
    resume.add_argument("run")
    resume.add_argument("overrides", nargs="*", help="e.g. trainer.max_epochs=40")
    resume.set_defaults(func=cmd_resume)
    again = sub.add_parser("reproduce", help="train again from a run's config; compare metrics")
    again.add_argument("run")
    again.add_argument("--out", help="the new run's directory (default: <run>-reproduced)")
    again.set_defaults(func=cmd_reproduce)
    study = sub.add_parser("study", help="a sweep's summary, trials and plots")
    study.add_argument("sweep_dir", help="the sweep directory (outputs/sweeps/<study>)")
    study.add_argument("--storage", help="the study's storage URL (default: its study.journal)")
    study.add_argument("--name", help="the study's name (default: the only one in the storage)")
    study.add_argument(
        "--no-plots", action="store_true", help="print only: rewrite neither summary nor plots"
    )
    study.add_argument("--format", choices=["table", "json", "csv"], default="table")
    study.set_defaults(func=cmd_study)
    debug = "show the traceback of an error (as HYDRA_FULL_ERROR=1 does)"
    top.add_argument("--debug", action="store_true", help=debug)
    for command in sub.choices.values():  # after the command too: lightning-args show X --debug
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=debug)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``lightning-args`` console script.

    Every failure is one message on stderr: exit status 2 for one of lightning_args' own
    (bad arguments, a broken run directory, a refused config), 1 for anything else (torch,
    Optuna, the file system), explained by :func:`lightning_args.run.explain.explain`.
    ``--debug`` or ``HYDRA_FULL_ERROR=1`` shows the traceback instead.
    """
    args = parser().parse_args(argv)
    debug = args.debug or os.environ.get("HYDRA_FULL_ERROR") == "1"
    try:
        status: int = args.func(args)
    except LightningArgsError as error:
        if debug:
            raise
        print(f"lightning-args: {error}", file=sys.stderr)
        return 2
    except Exception as error:
        if debug:
            raise
        from lightning_args.run.explain import explain

        print(f"lightning-args: {explain(error, what=args.command)}", file=sys.stderr)
        return 1
    return status
