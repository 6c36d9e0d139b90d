"""``lightning-args``: look at run directories from the shell (training stays ``train.py``).

    lightning-args runs [ROOT] [--status S] [--where KEY=VALUE]... [--choice GROUP=OPTION]...
                        [--sort METRIC] [--folds] [--tree] [--format F]
    lightning-args show RUN
    lightning-args diff RUN_A RUN_B
    lightning-args plot RUN... --metric val/acc [--out curves.png]
    lightning-args resume RUN [trainer.max_epochs=N]
    lightning-args fork RUN [optimizer.lr=X ...] [--checkpoint last] [--out DIR]
    lightning-args reproduce RUN [--out DIR]
    lightning-args study SWEEP_DIR [--storage URL] [--name STUDY] [--no-plots] [--format F]
    lightning-args watch SWEEP_DIR [--storage URL] [--name STUDY] [--interval S]

Only ``run.json`` and ``.hydra/*.yaml`` are read: no torch import, so listing hundreds of runs
takes a moment, not the seconds an import of torch costs (``study`` imports optuna).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from lightning_args.cli.continuing import cmd_fork, cmd_reproduce, cmd_resume
from lightning_args.cli.runs import cmd_diff, cmd_plot, cmd_runs, cmd_show
from lightning_args.cli.study import cmd_study
from lightning_args.cli.watch import cmd_watch
from lightning_args.errors import LightningArgsError
from lightning_args.run.record import RunStatus


def parser() -> argparse.ArgumentParser:
    """The command line of ``lightning-args``."""
    top = argparse.ArgumentParser(prog="lightning-args", description=__doc__.splitlines()[0])
    sub = top.add_subparsers(dest="command", required=True)
    runs = sub.add_parser("runs", help="a table of runs")
    runs.add_argument("root", nargs="?", default="outputs", help="folder of runs (outputs)")
    runs.add_argument("--status", choices=[s.value for s in RunStatus])  # requeued included
    runs.add_argument("--where", action="append", default=[], metavar="KEY=VALUE")
    runs.add_argument(
        "--choice", action="append", default=[], metavar="GROUP=OPTION", help="e.g. model=cnn"
    )
    runs.add_argument("--sort", metavar="COLUMN", help="e.g. objective, test/acc")
    runs.add_argument("--desc", action="store_true", help="largest first")
    runs.add_argument("--all", action="store_true", help="every metric, not only val/ test/")
    runs.add_argument("--folds", action="store_true", help="k-fold runs' folds too, a row each")
    runs.add_argument("--tree", action="store_true", help="each forked run under its parent")
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
    forked = sub.add_parser(
        "fork", help="continue a run in a new directory, hyperparameters changed"
    )
    forked.add_argument("run")
    forked.add_argument("overrides", nargs="*", help="e.g. optimizer.lr=0.01 trainer.max_epochs=30")
    forked.add_argument("--checkpoint", default="last", help="best, last or a file of checkpoints/")
    forked.add_argument("--out", help="the new run's directory (default: <run>-fork)")
    forked.set_defaults(func=cmd_fork)
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
    watch = sub.add_parser("watch", help="a sweep's live view, from any terminal (never writes)")
    watch.add_argument("sweep_dir", help="the sweep directory (outputs/sweeps/<study>)")
    watch.add_argument("--storage", help="the study's storage URL (default: its study.journal)")
    watch.add_argument("--name", help="the study's name (default: the only one in the storage)")
    watch.add_argument("--interval", type=_seconds, default=1.0, help="seconds between reads")
    watch.set_defaults(func=cmd_watch)
    debug = "show the traceback of an error (as HYDRA_FULL_ERROR=1 does)"
    top.add_argument("--debug", action="store_true", help=debug)
    for command in sub.choices.values():  # after the command too: lightning-args show X --debug
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=debug)
    return top


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r}: expected seconds > 0, e.g. --interval 1")
    return value


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
