"""A process's output sent into a log file: a sweep's trials (the sweeper's ``QuietTask``) and
the worker processes of a k-fold run's parallel folds write their output into their run's log."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

_log = logging.getLogger(__name__)

# Hydra's default job_logging format: a fold's log reads as a run's.
LOG_FORMAT = "[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"


@contextmanager
def output_into(path: Path) -> Iterator[None]:
    """Send this process's stdout and stderr (its file descriptors 1 and 2, and Python's
    streams) into ``path``, appending, and restore them after.

    Log records reach ``path`` once: console handlers of the root logger are detached when a
    file handler already writes there, and write into ``path`` otherwise. If ``path`` cannot be
    opened, the output stays where it was (said once in the log).
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        log = path.open("a", buffering=1, encoding="utf-8", errors="replace")
    except OSError as error:
        _log.warning("a trial's output stays on the console: %s cannot be opened: %s", path, error)
        yield
        return
    root = logging.getLogger()
    consoles = [h for h in root.handlers if type(h) is logging.StreamHandler]
    filed = any(
        isinstance(h, logging.FileHandler) and h.baseFilename == os.path.abspath(path)
        for h in root.handlers
    )
    streams = sys.stdout, sys.stderr
    for stream in streams:
        stream.flush()
    saved = os.dup(1), os.dup(2)
    moved: list[tuple[logging.StreamHandler[Any], Any]] = []
    try:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        sys.stdout = sys.stderr = log
        for handler in consoles:
            if filed:
                root.removeHandler(handler)
            else:
                moved.append((handler, handler.setStream(log)))
        yield
    finally:
        log.flush()
        for handler, stream in moved:
            handler.setStream(stream)
        if filed:
            for handler in consoles:
                root.addHandler(handler)
        sys.stdout, sys.stderr = streams
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)
        log.close()


@contextmanager
def logged_into(path: Path) -> Iterator[None]:
    """This process's log records (INFO and up) and its output in ``path``, as a Hydra job's
    are in its log file: for a worker process that Hydra did not start (no logging set up)."""
    root = logging.getLogger()
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    level = root.level
    root.addHandler(handler)
    root.setLevel(min(level, logging.INFO) if level else logging.INFO)
    try:
        with output_into(path):
            yield
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        handler.close()
