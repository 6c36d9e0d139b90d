"""Launchers that pace a sweep: they say how many jobs they run at once, and admit each new one.

A sweeper asks a trial of its study, then launches it. A launcher whose capacity is only known
once it has run a job (``launcher=gpus hydra.launcher.trials_per_device=auto`` measures its first
trial) would otherwise receive trials it cannot start yet, and each would sit asked but idle while
the sampler learns nothing from it. So a :class:`PacedLauncher` hands out admissions: the
sweeper's trial loops take one before they ask a trial and give it back once the trial is
recorded. Launchers that do not pace (all of Hydra's) admit everything.

Nothing here imports optuna or torch: the launcher plugin imports this at every start-up.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Protocol, runtime_checkable


@runtime_checkable
class PacedLauncher(Protocol):
    """A launcher that says how many jobs it runs at once and admits each new one."""

    def jobs_at_once(self) -> int:
        """The most jobs it may run at once: how many trial loops a sweeper should start."""
        ...

    def admitted(self) -> AbstractContextManager[None]:
        """Held while one job is asked, launched and recorded; blocks while the launcher is full."""
        ...


def admission(launcher: object) -> AbstractContextManager[None]:
    """``launcher.admitted()`` for a :class:`PacedLauncher`, else a context that admits at once."""
    if isinstance(launcher, PacedLauncher):
        return launcher.admitted()
    return nullcontext()


class Gate:
    """A semaphore whose size can change while threads wait on it.

    Example:
        >>> gate = Gate(1)
        >>> with gate.admitted():
        ...     gate.resize(3)
        >>> gate.size, gate.inside
        (3, 0)
    """

    def __init__(self, size: int) -> None:
        self.size = max(1, size)
        self.inside = 0
        self._changed = threading.Condition()

    def resize(self, size: int) -> None:
        with self._changed:
            self.size = max(1, size)
            self._changed.notify_all()

    @contextmanager
    def admitted(self) -> Iterator[None]:
        with self._changed:
            # A timed wait, so that Ctrl-C reaches a thread that waits here.
            while self.inside >= self.size:
                self._changed.wait(timeout=0.5)
            self.inside += 1
        try:
            yield
        finally:
            with self._changed:
                self.inside -= 1
                self._changed.notify_all()
