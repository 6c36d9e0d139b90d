"""``study``: a sweep's summary, trials and plots, from its study's storage."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from lightning_args.cli._table import print_rows
from lightning_args.errors import UsageError

if TYPE_CHECKING:
    import optuna


def cmd_study(args: argparse.Namespace) -> int:
    from lightning_args.sweep import report

    directory = Path(args.sweep_dir)
    study = open_study_at(directory, storage=args.storage, name=args.name)
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
    print_rows(rows, args.format)
    return 0


def open_study_at(
    directory: Path, *, storage: str | None, name: str | None, read_only: bool = False
) -> optuna.Study:
    """The study of the sweep in ``directory`` (its ``study.journal``, or ``storage``), by
    ``name`` or the only one there; one :class:`UsageError` naming what is wrong."""
    import optuna

    from lightning_args.sweep.storage import open_storage

    url = storage or str(directory / "study.journal")
    if storage is None and not (directory / "study.journal").is_file():
        raise UsageError(
            f"{str(directory)!r} holds no study.journal: expected the directory of a sweep "
            "(outputs/sweeps/<study>), or --storage URL for a study stored elsewhere"
        )
    backend = open_storage(url, read_only=read_only)
    names = optuna.get_all_study_names(backend)
    name = name or (names[0] if len(names) == 1 else None)
    if name not in names:
        raise UsageError(
            f"--name {name!r}: {url} holds the studies {', '.join(names) or '(none)'}. "
            "Fix: --name <one of them>"
        )
    return optuna.load_study(study_name=name, storage=backend)
