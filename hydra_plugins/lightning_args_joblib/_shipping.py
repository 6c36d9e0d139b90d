"""Launching through joblib with what every job shares sent to each worker once.

Hydra's joblib launcher calls ``execute_job(idx, overrides, hydra_context, config,
task_function, singleton_state)`` in a worker for each job, so each job pickles the sweep's
config, Hydra's context and a fresh ``Singleton.get_state()`` (a deep copy of the ConfigStore:
46 ms here) again, about 150 KB, and its worker unpickles them again. Only ``idx`` and
``overrides`` differ between the jobs of a sweep. Here the four shared arguments are pickled once
per task function into a file of a private folder (mode 0700, removed with the launcher), and a
job carries its overrides and the file's SHA-256 digest: a worker reads the file at its first
job, refuses it if its digest differs (a file on disk is not trusted to unpickle), and keeps
what it unpickled for its later jobs.

A worker's later jobs start from Hydra's singletons as its earlier jobs left them, not from a
fresh copy of the sweeper's: every job sets its own ``HydraConfig`` and job runtime as it
starts, and the rest (the ConfigStore, the plugins) is the same for every job of a sweep. The
composing config loader (``hydra_plugins.lightning_args_optuna._composing``) keeps its cache
across a worker's jobs for the same reason.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import shutil
import tempfile
import threading
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cloudpickle
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, configure_log, filter_overrides, setup_globals
from joblib import Parallel, delayed

from lightning_args._compat.hydra import joblib_execute_job, joblib_parallel_settings
from lightning_args.errors import UntrustedPathError

#: The logger of each launch's lines, as Hydra's launchers log them (``"\t#<index> : ..."``).
LOG_NAME = __name__
_log = logging.getLogger(LOG_NAME)
_received: dict[str, tuple[Any, Any, Any, Any]] = {}  # in a worker: by digest


@dataclass(frozen=True)
class Shipment:
    """Where a launch's shared job arguments are, and their digest."""

    path: str
    digest: str


class Shipments:
    """A launcher's shipments: one per task function it launches with, made at first use."""

    def __init__(self) -> None:
        self._folder: str | None = None
        self._made: dict[int, tuple[object, Shipment]] = {}  # the task kept: its id stays its own
        self._lock = threading.Lock()  # sweepers launch from several threads

    def of(self, launcher: Any, task: Callable[[Any], Any]) -> Shipment:
        with self._lock:
            made = self._made.get(id(task))
            if made is not None:
                return made[1]
            if self._folder is None:
                self._folder = tempfile.mkdtemp(prefix="lightning_args-jobs-")
                weakref.finalize(self, shutil.rmtree, self._folder, ignore_errors=True)
            shared = (launcher.hydra_context, launcher.config, task, Singleton.get_state())
            data = cloudpickle.dumps(shared)
            digest = hashlib.sha256(data).hexdigest()
            path = Path(self._folder) / f"{digest}.pickle"
            with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as f:
                f.write(data)
            shipment = Shipment(str(path), digest)
            self._made[id(task)] = (task, shipment)
            return shipment


def execute(idx: int, overrides: Sequence[str], shipment: Shipment) -> JobReturn:
    """Hydra's ``execute_job`` for one job, in a worker, with the shipment's shared arguments."""
    shared = _received.get(shipment.digest)
    if shared is None:
        data = Path(shipment.path).read_bytes()
        if hashlib.sha256(data).hexdigest() != shipment.digest:
            raise UntrustedPathError(
                f"{shipment.path} is not the file this sweep wrote (its SHA-256 differs): "
                "refused, nothing in it was read. Fix: run the sweep again; nothing but the "
                "sweep should write its temporary folder"
            )
        shared = pickle.loads(data)  # checked: the bytes the sweeper pickled
        _received.clear()  # one sweep's at a time: a worker serves one launcher
        _received[shipment.digest] = shared
    hydra_context, config, task, state = shared
    return joblib_execute_job(idx, overrides, hydra_context, config, task, state)


def launch(
    launcher: Any,
    shipments: Shipments,
    job_overrides: Sequence[Sequence[str]],
    initial_job_idx: int,
    task: Callable[[Any], Any],
    n_jobs: int,
) -> Sequence[JobReturn]:
    """What Hydra's joblib launcher's ``launch`` does (its logging, its sweep directory, its
    ``joblib.Parallel`` settings), with each job's shared arguments shipped once."""
    setup_globals()
    configure_log(launcher.config.hydra.hydra_logging, launcher.config.hydra.verbose)
    sweep_dir = Path(str(launcher.config.hydra.sweep.dir))
    sweep_dir.mkdir(parents=True, exist_ok=True)
    settings = joblib_parallel_settings({**launcher.joblib, "n_jobs": n_jobs})
    _log.info(
        "Joblib.Parallel(%s) is launching %d jobs",
        ",".join(f"{k}={v}" for k, v in settings.items()),
        len(job_overrides),
    )
    _log.info("Launching jobs, sweep output dir : %s", sweep_dir)
    for idx, overrides in enumerate(job_overrides):
        _log.info("\t#%d : %s", idx, " ".join(filter_overrides(overrides)))
    shipment = shipments.of(launcher, task)
    runs = Parallel(**settings)(
        delayed(execute)(initial_job_idx + idx, list(overrides), shipment)
        for idx, overrides in enumerate(job_overrides)
    )
    return list(runs)
