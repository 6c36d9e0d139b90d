"""What a sweep prints: each trial's own output goes to its run directory, and Hydra's launch
lines name the trial and its values.

- :class:`QuietTask` wraps the task function: a trial's output (Lightning's banners and tables,
  its progress bar, warnings, anything written to stdout or stderr, C libraries' too) goes to
  the job's log file (``<job dir>/<job name>.log``, where Hydra's file handler writes its log
  records), not to the sweep's console. ``hydra.sweeper.verbose=true`` turns it off.
- :class:`ShortLaunchLines` filters the launchers' loggers in the sweeper process: one launch
  per trial repeats Hydra's launch header for every trial, and each job's line holds every
  override, the trial link's JSON included. Each distinct header is shown once, and a job's
  line becomes ``#<trial number> : <its sampled values>``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.types import TaskFunction
from omegaconf import DictConfig

from lightning_args._compat.hydra import JOB_LINE, LAUNCHER_LOGGERS
from lightning_args._util.output import output_into

_log = logging.getLogger(__name__)


def job_log(hydra: Any) -> Path:
    """The log file of a job, from its ``hydra`` node (``HydraConfig.get()``, or a job return's
    ``hydra_cfg.hydra``): where Hydra's default ``job_logging`` writes."""
    return Path(str(hydra.runtime.output_dir)) / f"{hydra.job.name}.log"


@dataclass(frozen=True)
class QuietTask:
    """``task_function`` with its output in the job's log file (picklable: launchers ship it)."""

    task_function: TaskFunction

    def __call__(self, cfg: DictConfig) -> Any:
        from hydra.core.hydra_config import HydraConfig

        with output_into(job_log(HydraConfig.get())):
            return self.task_function(cfg)


class ShortLaunchLines(logging.Filter):
    """Shortens what Hydra's launchers log at each launch (see the module's docstring).

    Example:
        >>> short = ShortLaunchLines()
        >>> line = ("\\t#%d : %s", (0, "a=1 ++hydra.job.env_set.X='{...}'"))
        >>> record = logging.LogRecord("l", logging.INFO, "", 0, *line, None)
        >>> with short.launching([(7, "optimizer.lr=0.01")]):
        ...     short.filter(record), record.getMessage()
        (True, '\\t#7 : optimizer.lr=0.01')
    """

    def __init__(self) -> None:
        super().__init__()
        self._seen: set[str] = set()
        self._jobs = threading.local()  # each trial loop launches from its own thread
        self._lock = threading.Lock()

    @contextmanager
    def launching(self, jobs: list[tuple[int, str]]) -> Iterator[None]:
        """While this thread launches ``jobs`` (trial number, values), in their order."""
        self._jobs.queue = list(jobs)
        try:
            yield
        finally:
            self._jobs.queue = []

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if JOB_LINE.match(message):
            queue: list[tuple[int, str]] = getattr(self._jobs, "queue", [])
            if queue:
                number, values = queue.pop(0)
                record.msg, record.args = "\t#%d : %s", (number, values or "(no values)")
            return True
        with self._lock:
            if message in self._seen:
                return False
            self._seen.add(message)
        return True

    @contextmanager
    def installed(self) -> Iterator[None]:
        """On the launchers' loggers, for the sweep's duration."""
        from hydra_plugins.lightning_args_joblib._shipping import LOG_NAME

        loggers = [logging.getLogger(name) for name in (*LAUNCHER_LOGGERS, LOG_NAME)]
        for logger in loggers:
            logger.addFilter(self)
        try:
            yield
        finally:
            for logger in loggers:
                logger.removeFilter(self)
