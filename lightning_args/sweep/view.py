"""The console of a sweep while its trials run: on a terminal, a table of the study updated in
place (:class:`LiveView`) above which the sweep's own lines scroll; elsewhere (CI, Slurm logs,
``| tee``) only those lines, one per finished trial, each ending with the study's headline.

The sweeper shows it in the terminal that started the sweep, and ``lightning-args watch`` shows
the same from any other, both from :func:`lightning_args.sweep.status.status_of`.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any

from lightning_args.sweep.status import StudyStatus, duration

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.live import Live


def render(title: str, status: StudyStatus, problem: str | None = None) -> RenderableType:
    """The live view of ``status``: its headline, then a row per running trial (or, when none
    runs, per best trial)."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    parts: list[Any] = [Text(title, style="bold"), Text(status.headline())]
    if status.running:
        table = Table("running", "done", "latest", "time", "values")
        for trial in sorted(status.running, key=lambda r: r.number):
            latest = "" if trial.latest is None else f"{trial.latest:.4g}"
            table.add_row(
                str(trial.number), trial.progress, latest, duration(trial.seconds), trial.params
            )
        parts.append(table)
    elif status.leaders:  # nothing runs: the study as it ended (or paused)
        table = Table("best", "value", "values")
        for leader in status.leaders:
            table.add_row(str(leader.number), f"{leader.value:.6g}", leader.params)
        parts.append(table)
    if problem:
        parts.append(Text(problem, style="yellow"))
    return Group(*parts)


class LiveView:
    """A table of the study, redrawn every ``interval`` seconds on a terminal.

    ``poll`` reads the study (it may raise: the last reading stays, with the error under it).
    Off a terminal, or with ``live=False``, it shows nothing: the sweep's log lines say it all.
    While it is live, log handlers that wrote to the console write above the table, and the
    table goes to a copy of the terminal's file descriptor, so that a trial running in this
    process (Hydra's basic launcher) can send its own output elsewhere without taking the table
    with it.

    Example:
        >>> from lightning_args.sweep.status import StudyStatus
        >>> still = StudyStatus(None, {}, (), (), elapsed=0.0, left=None)
        >>> with LiveView("Study s", lambda: still, live=False) as view:
        ...     view.live
        False
    """

    def __init__(
        self,
        title: str,
        poll: Callable[[], StudyStatus],
        *,
        interval: float = 1.0,
        live: bool | None = None,
        stream: IO[str] | None = None,
    ) -> None:
        self.title = title
        self.poll = poll
        self.interval = interval
        self.stream = stream if stream is not None else sys.stdout
        self.live = _is_terminal(self.stream) if live is None else live
        self._live: Live | None = None
        self._terminal: IO[str] | None = None
        self._status: StudyStatus | None = None
        self._problem: str | None = None
        self._read_at = 0.0
        self._lock = threading.Lock()

    def __enter__(self) -> LiveView:
        if not self.live:
            return self
        from rich.console import Console
        from rich.live import Live

        self._terminal = open(os.dup(self.stream.fileno()), "w", buffering=1)
        console = Console(file=self._terminal)
        self._live = Live(
            console=console,
            get_renderable=self._renderable,
            refresh_per_second=1 / self.interval,
            redirect_stdout=True,
            redirect_stderr=True,
        )
        out, err = {id(sys.stdout), id(sys.__stdout__)}, {id(sys.stderr), id(sys.__stderr__)}
        self._live.start()
        # Console handlers keep the stream they were made with: point them at the live
        # display's stand-ins for stdout and stderr, which print above the table. (Handlers
        # made while it is live, as Hydra's joblib launcher makes at each launch, find them.)
        for handler in _console_handlers():
            if id(handler.stream) in out | err:
                handler.setStream(sys.stdout if id(handler.stream) in out else sys.stderr)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._live is None:
            return
        self._read_at = 0.0  # the last frame shows the study as it ended
        self._live.stop()
        from rich.file_proxy import FileProxy

        for handler in _console_handlers():
            if isinstance(handler.stream, FileProxy):
                handler.setStream(handler.stream.rich_proxied_file)
        if self._terminal is not None:
            self._terminal.close()
        self._live = None

    def update(self, status: StudyStatus) -> None:
        """Show ``status`` (just read by the caller) until the next reading is due."""
        with self._lock:
            self._status, self._problem, self._read_at = status, None, time.monotonic()
        live = self._live
        if live is not None:  # now: lines printed above the table show the frame drawn last
            live.refresh()

    def _renderable(self) -> RenderableType:
        with self._lock:  # the refresh thread and stop() may both render
            now = time.monotonic()
            if self._status is None or now - self._read_at >= self.interval:
                self._read_at = now
                try:
                    self._status = self.poll()
                    self._problem = None
                except Exception as error:  # a busy database: keep the last reading
                    self._problem = f"cannot read the study: {type(error).__name__}: {error}"
            if self._status is None:
                from rich.text import Text

                return Text(f"{self.title}: {self._problem or 'starting'}")
            return render(self.title, self._status, self._problem)


def _is_terminal(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or replaced stream
        return False


def _console_handlers() -> list[logging.StreamHandler[Any]]:
    return [h for h in logging.getLogger().handlers if type(h) is logging.StreamHandler]
