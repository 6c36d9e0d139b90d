"""``watch``: the live view of a sweep from any terminal, read from its study's storage.

It follows a sweep running elsewhere (another process, a Slurm job, several sweepers on one
study), exits once the study has ended or on Ctrl-C, and never writes: the storage is opened
read-only and nothing in the sweep directory is touched.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import TYPE_CHECKING

from lightning_args.cli.study import open_study_at

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial

    from lightning_args.sweep.status import StudyStatus

#: Ctrl-C's exit status, as a shell reports a process stopped by SIGINT.
INTERRUPTED = 130


def cmd_watch(args: argparse.Namespace) -> int:
    from lightning_args.sweep.view import LiveView

    directory = Path(args.sweep_dir)
    study = open_study_at(directory, storage=args.storage, name=args.name, read_only=True)
    watch = _Watch(study, directory)
    status = watch.read()
    view = LiveView(f"Study {study.study_name}", lambda: status, interval=args.interval)
    if watch.ended(status):  # nothing to follow: the study as it ended, once
        _print_once(view.title, watch.read(ended=True))
        return 0
    try:
        with view:
            if not view.live:
                print(f"Study {study.study_name}: {status.headline()}", flush=True)
            while True:
                time.sleep(args.interval)
                status = watch.read()
                if not view.live:
                    for trial in watch.newly_ended():
                        print(watch.line(trial, status), flush=True)
                if watch.ended(status):
                    break
    except KeyboardInterrupt:
        return INTERRUPTED
    if not view.live:
        print(f"Study {study.study_name} ended: {status.headline()}", flush=True)
    return 0


class _Watch:
    """What the watcher has read of the study so far."""

    def __init__(self, study: optuna.Study, directory: Path) -> None:
        self.study = study
        self.directory = directory
        self.started = time.time()
        self.trials: list[FrozenTrial] = []
        self.last_end = 0.0  # when the last trial read so far ended (unix time)
        self._said: set[int] | None = None  # trials already ended when the watch began

    def read(self, *, ended: bool = False) -> StudyStatus:
        """The study now; ``ended``: as it was when its last trial ended."""
        from lightning_args.sweep.attrs import N_TRIALS
        from lightning_args.sweep.status import minimizing, status_of

        self.trials = self.study.get_trials(deepcopy=False)
        if self._said is None:
            self._said = {t.number for t in self.trials if t.state.is_finished()}
            starts = [t.datetime_start.timestamp() for t in self.trials if t.datetime_start]
            self.started = min(starts, default=self.started)
        total = self.study.user_attrs.get(N_TRIALS)
        ends = [t.datetime_complete.timestamp() for t in self.trials if t.datetime_complete]
        self.last_end = max(ends, default=0.0)
        return status_of(
            self.trials,
            total=total if isinstance(total, int) and total >= 1 else None,
            minimize=minimizing(self.study),
            started=self.started,
            now=max(self.last_end, self.started) if ended else time.time(),
        )

    def newly_ended(self) -> list[FrozenTrial]:
        """Trials that ended since the last call, in the order they ended."""
        from lightning_args.sweep.status import apart

        said = self._said if self._said is not None else set()
        ended = [t for t in self.trials if t.state.is_finished() and t.number not in said]
        ended = [t for t in ended if not apart(t)]
        said.update(t.number for t in ended)
        return sorted(ended, key=lambda t: (t.datetime_complete or t.datetime_start, t.number))

    def ended(self, status: StudyStatus) -> bool:
        """Every planned trial ended; or, planned or not, none runs and a sweeper has written
        the summary since the last trial ended (a sweep that stopped early)."""
        from lightning_args.sweep.report import SUMMARY

        if status.finished:
            return True
        if status.running:
            return False
        summary = self.directory / SUMMARY
        return summary.is_file() and summary.stat().st_mtime >= self.last_end

    def line(self, trial: FrozenTrial, status: StudyStatus) -> str:
        from lightning_args.sweep.status import ended_line

        logs = sorted((self.directory / str(trial.number)).glob("*.log"))
        return ended_line(trial, status, logs[0] if logs else None)


def _print_once(title: str, status: StudyStatus) -> None:
    from rich.console import Console

    from lightning_args.sweep.view import render

    Console(width=None if Console().is_terminal else 10_000).print(render(title, status))
