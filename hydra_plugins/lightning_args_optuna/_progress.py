"""What a sweep's threads share while trials run: the trial loops, the heartbeat thread and an
interruption all read and change it, so it is one object with one lock, in a module of its own.
"""

from __future__ import annotations

import threading
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
