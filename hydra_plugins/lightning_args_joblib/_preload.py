"""Workers started, and importing what the jobs need, while the sweeper prepares its sweep.

joblib's loky backend starts its workers at the first ``Parallel`` call, so a sweep's first
trials wait for every worker to start and import torch and Lightning (4.3-4.9 s for ``import
torch, lightning.pytorch`` alone on this 2-core machine) after the sweeper has opened its study
and drawn them. :func:`start` makes that first call from a thread as soon as the launcher is set
up: one task per worker, each importing ``hydra.launcher.preload``. It goes through the same
``Parallel`` settings as the launches, so loky keeps that executor and its warm workers for them
(``lightning_args._compat.joblib`` says why); a launch that comes while they still import waits
for the import it would have done itself.
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
from collections.abc import Sequence
from typing import Any

from joblib import Parallel, delayed

from lightning_args._compat.hydra import joblib_parallel_settings

_log = logging.getLogger(__name__)


def imported(modules: Sequence[str]) -> int:
    """Import ``modules`` in this worker; its process id (which worker did it)."""
    for name in modules:
        importlib.import_module(name)
    return os.getpid()


def start(launcher: Any, n_jobs: int, modules: Sequence[str]) -> Preloading:
    """Start the launcher's joblib workers, each importing ``modules``, from a daemon thread."""
    settings = joblib_parallel_settings({**launcher.joblib, "n_jobs": n_jobs})
    workers = int(settings["n_jobs"]) if int(settings["n_jobs"]) > 0 else os.cpu_count() or 1
    thread = Preloading(settings, workers, list(modules))
    thread.start()
    return thread


class Preloading(threading.Thread):
    """The thread that starts the workers; :attr:`pids`: the workers that imported, once it
    is done."""

    def __init__(self, settings: dict[str, Any], workers: int, modules: list[str]) -> None:
        super().__init__(name="lightning_args-preload", daemon=True)
        self.settings, self.workers, self.modules = settings, workers, modules
        self.pids: list[int] = []

    def run(self) -> None:
        try:
            self.pids = list(
                Parallel(**self.settings)(
                    delayed(imported)(self.modules) for _ in range(self.workers)
                )
            )
        except Exception as error:  # a job that needs the module fails with its own message
            _log.warning(
                "hydra.launcher.preload=%s: a joblib worker could not import it (%s: %s); the "
                "jobs import what they need themselves. Fix: list modules this environment has, "
                "or set hydra.launcher.preload=[]",
                self.modules,
                type(error).__name__,
                str(error).splitlines()[0] if str(error) else "",
            )
