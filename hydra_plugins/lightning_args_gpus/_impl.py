"""The GPU launcher's logic: which devices, how many jobs on each, and launching through joblib.

Jobs run as Hydra's joblib launcher runs them (the same ``joblib.Parallel`` over the same job
function), with the task function wrapped in :class:`~._slots.OnDevice` so that each worker
holds a slot of one device while it runs. With ``trials_per_device=auto`` the first job runs alone,
measured, and the rest follow ``k`` to a device (:mod:`._auto`); meanwhile the launcher's gate
(:class:`~lightning_args.sweep.pacing.Gate`) keeps a paced sweeper from asking trials it could
not start.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hydra_plugins.lightning_args_gpus import _auto
from hydra_plugins.lightning_args_gpus._slots import OnDevice
from hydra_plugins.lightning_args_gpus.config import AUTO
from lightning_args.callbacks.devices import VISIBLE, Slots, default_lock_dir
from lightning_args.errors import ConfigValueError
from lightning_args.sweep.pacing import Gate

if TYPE_CHECKING:
    from hydra.core.utils import JobReturn

    from hydra_plugins.lightning_args_gpus.lightning_args_gpus_launcher import (
        LightningArgsGpusLauncher,
    )

_log = logging.getLogger(__name__)
_KEY = "hydra.launcher"


@dataclass(frozen=True)
class Packing:
    """The launcher's packing keys, checked."""

    per_device: int | None  # None: auto, until the first trial has been measured
    ceiling: int
    devices: tuple[str, ...]
    n_jobs: int | None
    memory_fraction: float | None
    lock_dir: str


def packing(keys: dict[str, Any], n_jobs: Any) -> Packing:
    """:class:`Packing` from the launcher's settings, one message for the first bad one."""
    per_device, ceiling = keys["trials_per_device"], keys["max_trials_per_device"]
    if per_device != AUTO and not _count(per_device):
        _bad("trials_per_device", per_device, "an integer of at least 1, or auto", "2")
    if ceiling is None:
        ceiling = 8
    if not _count(ceiling):
        _bad("max_trials_per_device", ceiling, "an integer of at least 1", "8")
    fraction = keys["memory_fraction"]
    if fraction is not None and (
        isinstance(fraction, bool) or not isinstance(fraction, int | float) or not 0 < fraction <= 1
    ):
        _bad("memory_fraction", fraction, "a number in (0, 1], or null", "0.25")
    if n_jobs is not None and not _count(n_jobs):
        _bad("n_jobs", n_jobs, "an integer of at least 1, or null (one job per slot)", "null")
    devices = _devices(keys["devices"])
    slots = len(devices) * (ceiling if per_device == AUTO else per_device)
    if n_jobs is not None and n_jobs > slots:
        _bad(
            "n_jobs",
            n_jobs,
            f"at most the {slots} slots of {len(devices)} device(s) x trials_per_device",
            "null",
        )
    lock_dir = keys["lock_dir"] or default_lock_dir()
    return Packing(
        per_device=None if per_device == AUTO else per_device,
        ceiling=ceiling,
        devices=devices,
        n_jobs=n_jobs,
        memory_fraction=None if fraction is None else float(fraction),
        lock_dir=str(lock_dir),
    )


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _bad(key: str, value: Any, expected: str, fix: str) -> None:
    raise ConfigValueError(f"{_KEY}.{key}={value!r}: expected {expected}. Fix: {_KEY}.{key}={fix}")


def _devices(given: Any) -> tuple[str, ...]:
    """The devices to use: ``given``, else ``CUDA_VISIBLE_DEVICES``'s entries, else every GPU
    torch counts (torch loads only in that last case)."""
    if given is not None:
        listed = isinstance(given, Sequence) and not isinstance(given, str)
        ids = [str(d).strip() for d in given] if listed else []
        if not ids or any(not d or "," in d for d in ids) or len(set(ids)) < len(ids):
            _bad("devices", given, "a list of distinct device ids, or null", "[0,1]")
        return tuple(ids)
    visible = os.environ.get(VISIBLE)
    if visible is not None:
        ids = [d.strip() for d in visible.split(",") if d.strip()]
    else:
        import torch

        ids = [str(i) for i in range(torch.cuda.device_count())]
    if not ids:
        raise ConfigValueError(
            f"launcher=gpus found no GPU ({VISIBLE}={visible!r}, torch counts none). Fix: run "
            "it on a machine with GPUs, name them with hydra.launcher.devices=[0,1], or use "
            "launcher=joblib"
        )
    return tuple(ids)


class PackedLaunches:
    """Launches for :class:`~..lightning_args_gpus_launcher.LightningArgsGpusLauncher`."""

    def __init__(self, launcher: LightningArgsGpusLauncher, keys: dict[str, Any]) -> None:
        self.launcher = launcher
        self.packing = packing(keys, launcher.joblib.pop("n_jobs", None))
        self.per_device = self.packing.per_device
        self.gate = Gate(self.jobs_at_once() if self.per_device is not None else 1)
        self._probing = threading.Lock()
        self._tasks: dict[tuple[int, str | None], OnDevice] = {}

    def jobs_at_once(self) -> int:
        """Worker processes: one per slot (``n_jobs`` where it is smaller); before ``auto`` has
        measured its first trial, as many as its ceiling allows."""
        slots = len(self.packing.devices) * (self.per_device or self.packing.ceiling)
        return min(slots, self.packing.n_jobs or slots)

    def launch(self, jobs: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        if self.per_device is None:
            with self._probing:  # one probe: other threads wait here for its outcome
                if self.per_device is None:
                    return self._probe(jobs, initial_job_idx)
        return self._run(jobs, initial_job_idx)

    def _probe(self, jobs: Sequence[Sequence[str]], initial_job_idx: int) -> list[JobReturn]:
        """The first job alone on one slot, measured; then ``k`` per device for the rest."""
        with tempfile.TemporaryDirectory(prefix="lightning_args-probe-") as folder:
            probe = Path(folder) / "use.json"
            first = self._run(jobs[:1], initial_job_idx, per_device=1, probe=str(probe))
            k, why = _auto.per_device(_auto.read(probe), self.packing.ceiling)
        self.per_device = k
        self.gate.resize(self.jobs_at_once())
        _log.info(
            "trials_per_device=auto: %s, so %d trial(s) per device, %d at once",
            why,
            k,
            self.jobs_at_once(),
        )
        rest = self._run(jobs[1:], initial_job_idx + 1) if len(jobs) > 1 else []
        return [*first, *rest]

    def _run(
        self,
        jobs: Sequence[Sequence[str]],
        initial_job_idx: int,
        per_device: int | None = None,
        probe: str | None = None,
    ) -> Sequence[JobReturn]:
        per_device = per_device or self.per_device or 1
        slots = Slots(self.packing.devices, per_device, self.packing.lock_dir)
        task = self.launcher.task_function
        if task is None:
            raise RuntimeError("LightningArgsGpusLauncher.launch() called before setup()")
        key = (per_device, probe)
        if key not in self._tasks:  # one each: the launcher ships a task's arguments once
            self._tasks[key] = OnDevice(task, slots, self.packing.memory_fraction, probe)
        # Two workers at least: joblib runs n_jobs=1 in the calling process, where the job would
        # bind the sweeper itself to a device. A worker beyond the slots waits for one.
        workers = max(2, self.jobs_at_once())
        return self.launcher.launch_with(jobs, initial_job_idx, self._tasks[key], workers)
