"""One GPU per job on a machine with several: ``launcher=gpus``.

``launcher=gpus`` runs jobs in ``hydra.launcher.n_jobs`` worker processes (joblib), and this
Hydra callback gives each worker one device for its whole life: before the first job of a worker
starts, it takes the first free device's lock file and sets ``CUDA_VISIBLE_DEVICES`` to that
device alone, so torch in that job sees one GPU (``cuda:0``) and k workers use k GPUs at once. The
lock is held until the worker exits, so two workers never share a device, whatever order trials
start and finish in. Nothing here imports torch: CUDA must not start before the variable is set.
"""

from __future__ import annotations

import fcntl
import logging
import os
import tempfile
from pathlib import Path
from typing import IO, Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from lightning_args.errors import ConfigValueError

ENV = "LIGHTNING_ARGS_DEVICE"  # the device this process holds, once claimed
_held: list[IO[str]] = []  # open lock files: closing one would release its device
_log = logging.getLogger(__name__)


class OneDevicePerJob(Callback):
    """Hydra callback: claim a device for the job's process before the job runs.

    ``devices``: how many devices to share out (normally ``hydra.launcher.n_jobs``). They are the
    entries of the launching process's ``CUDA_VISIBLE_DEVICES`` when it is set, else ``0..n-1``.
    """

    def __init__(self, devices: int, lock_dir: str | None = None) -> None:
        self.devices = int(devices)
        self.lock_dir = Path(lock_dir or tempfile.gettempdir()) / "lightning_args-devices"

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        device = claim_device(self.devices, self.lock_dir)
        _log.info("This job runs on device %s (CUDA_VISIBLE_DEVICES)", device)


def claim_device(devices: int, lock_dir: Path) -> str:
    """The device this process holds, claiming the first free one of ``devices`` if needed."""
    if ENV in os.environ:
        return os.environ[ENV]
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    ids = [d.strip() for d in visible.split(",") if d.strip()] if visible else []
    ids = ids or [str(i) for i in range(devices)]
    if devices > len(ids):
        raise ConfigValueError(
            f"hydra.launcher.n_jobs={devices} jobs at once, one per device, but "
            f"CUDA_VISIBLE_DEVICES={visible!r} lists {len(ids)}. Fix: hydra.launcher.n_jobs="
            f"{len(ids)}"
        )
    lock_dir.mkdir(parents=True, exist_ok=True)
    for device in ids[:devices]:
        lock = (lock_dir / f"device-{device}.lock").open("a")
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            continue
        _held.append(lock)
        os.environ["CUDA_VISIBLE_DEVICES"] = device
        os.environ[ENV] = device
        return device
    raise ConfigValueError(
        f"every one of the {devices} devices is held by another process (locks in {lock_dir}): "
        "another launcher=gpus sweep may be running. Fix: wait for it, or give this one other "
        "devices through CUDA_VISIBLE_DEVICES"
    )
