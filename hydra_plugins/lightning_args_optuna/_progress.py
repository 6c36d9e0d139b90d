"""What a sweep's threads share while trials run: the trial loops, the heartbeat thread and an
interruption all read and change it, so it is one object with one lock, in a module of its own.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import optuna
    from hydra.core.utils import JobReturn


@dataclass
class Progress:
    """What the trial threads share (under ``lock``)."""

    allowed_failures: float
    failed: int = 0
    stop: bool = False
    returns: list[tuple[int, JobReturn]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    running: dict[int, optuna.trial.Trial] = field(default_factory=dict)
    ended: str | None = None  # why no new trial starts (the space is exhausted), said once


def in_threads(
    loop: Callable[[], None], workers: int, on_error: Callable[[], None] = lambda: None
) -> None:
    """``loop`` in ``workers`` threads at once (in this one when ``workers`` is 1), until each
    returns. A thread's error calls ``on_error`` (to tell the others to stop) and is raised
    here once all have ended."""
    if workers == 1:
        loop()
        return
    errors: list[BaseException] = []

    def guarded() -> None:
        try:
            loop()
        except BaseException as error:  # surfaced in the calling thread below
            errors.append(error)
            on_error()

    threads = [threading.Thread(target=guarded, daemon=True) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        while thread.is_alive():
            thread.join(timeout=0.5)  # a bare join() would not let Ctrl-C through
    if errors:
        raise errors[0]
