"""GPUs shared out among processes: slots of a device, each a lock file that a job holds.

A device has ``per_device`` slots, each a lock file (``device-<id>.slot-<s>.lock``) that a job
holds while it runs (:func:`slot`). A process's first job takes the first free slot, trying
slot 0 of every device before slot 1 of any, so that work spreads over all devices before any
takes a second job; the process keeps that device for its life, as CUDA does, and its later
jobs wait for a slot of it. ``flock`` keeps a slot exclusive across processes (other sweeps
sharing the lock directory included) and frees it when its process dies, however it dies.
Nothing here imports torch: CUDA must not start before ``CUDA_VISIBLE_DEVICES`` is set.

``launcher=gpus`` (``hydra_plugins.lightning_args_gpus``) runs each job in a slot.
:class:`OneDevicePerJob`, the Hydra callback that ``launcher=gpus`` used before it packed
several trials per device, stays for configs that name it: its process holds one slot for life.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from lightning_args.errors import ConfigValueError

_log = logging.getLogger(__name__)

VISIBLE = "CUDA_VISIBLE_DEVICES"
WARN_AFTER_S = 10.0  # of waiting for a slot, before saying so
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")  # device ids may be UUIDs (GPU-3f2a...) or MIG names

_claimed: dict[str, str] = {}  # "device": the one this process took with its first slot


@dataclass(frozen=True)
class Slots:
    """``per_device`` slots on each of ``devices``, their locks in ``lock_dir``."""

    devices: tuple[str, ...]
    per_device: int
    lock_dir: str

    def lock_file(self, device: str, slot: int) -> Path:
        return Path(self.lock_dir) / f"device-{_UNSAFE.sub('_', device)}.slot-{slot}.lock"


@contextmanager
def slot(slots: Slots) -> Iterator[str]:
    """Hold a free slot of ``slots`` while inside, waiting for one if all are taken.

    A process takes its device with its first slot, and keeps it: ``CUDA_VISIBLE_DEVICES``
    names that device alone from then on (CUDA reads it once), so its later jobs wait for a
    slot of that same device.
    """
    bound = _claimed.get("device")
    devices = slots.devices if bound is None else (bound,)
    Path(slots.lock_dir).mkdir(parents=True, exist_ok=True)
    waited = time.monotonic()
    warned = False
    while True:
        for index in range(slots.per_device):
            for device in devices:
                handle = _lock(slots.lock_file(device, index))
                if handle is None:
                    continue
                try:
                    if bound is None:
                        os.environ[VISIBLE] = device
                        _claimed["device"] = device
                        _log.info("This worker runs its jobs on device %s", device)
                    yield device
                finally:
                    handle.close()  # the slot is free again
                return
        if not warned and time.monotonic() - waited > WARN_AFTER_S:
            warned = True  # another sweep's jobs, or this one's still running: a job waits
            _log.warning(
                "Waiting for a free slot of device(s) %s (%d per device; locks in %s): other "
                "processes hold them all, perhaps another launcher=gpus sweep",
                ",".join(devices),
                slots.per_device,
                slots.lock_dir,
            )
        time.sleep(0.1)


def _lock(path: Path) -> IO[str] | None:
    handle = path.open("a")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    return handle


class OneDevicePerJob(Callback):
    """Hydra callback: the job's process takes a device (one slot each) before its first job.

    ``devices``: how many devices to share out (normally ``hydra.launcher.n_jobs``). They are the
    entries of the launching process's ``CUDA_VISIBLE_DEVICES`` when it is set, else ``0..n-1``.
    """

    def __init__(self, devices: int, lock_dir: str | None = None) -> None:
        self.devices = int(devices)
        self.visible = os.environ.get(VISIBLE)
        ids = [d.strip() for d in self.visible.split(",") if d.strip()] if self.visible else []
        self.ids = ids or [str(i) for i in range(self.devices)]
        self.slots = Slots(tuple(self.ids[: self.devices]), 1, lock_dir or default_lock_dir())

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        if self.devices > len(self.ids):
            raise ConfigValueError(
                f"hydra.launcher.n_jobs={self.devices} jobs at once, one per device, but "
                f"{VISIBLE}={self.visible!r} lists {len(self.ids)}. Fix: "
                f"hydra.launcher.n_jobs={len(self.ids)}"
            )
        if claimed() is None:  # held until the process exits
            _for_life.enter_context(slot(self.slots))


_for_life = ExitStack()


def default_lock_dir() -> str:
    """Where slots' lock files live unless told: shared by every sweep of this machine."""
    return str(Path(tempfile.gettempdir()) / "lightning_args-devices")


def claimed() -> str | None:
    """The device this process took with its first slot, if it took one."""
    return _claimed.get("device")
