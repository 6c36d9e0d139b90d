"""The GPU launcher's config (``hydra/launcher=lightning_args_gpus``, or ``launcher=gpus`` in the
example app): a documented dataclass over Hydra's joblib launcher's, stored in Hydra's
ConfigStore at import.

Importing this module is cheap (dataclasses): Hydra imports it at every start-up.
"""

# No `from __future__ import annotations`: Hydra execs plugin modules before registering them
# in sys.modules, and dataclasses then cannot resolve string annotations.

from dataclasses import dataclass
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra_plugins.hydra_joblib_launcher.config import JobLibLauncherConf

PROVIDER = "lightning_args_gpus"
LAUNCHER = "lightning_args_gpus"
AUTO = "auto"  # trials_per_device chosen from the first trial's measured peak memory and load


@dataclass
class GpusLauncherConfig(JobLibLauncherConf):  # type: ignore[misc]  # hydra_joblib_launcher is untyped
    """Jobs in joblib worker processes, ``trials_per_device`` of them on each GPU.

    Every job holds one of its device's ``trials_per_device`` slots while it runs (a lock file
    each), so never more than that many jobs share a device; a worker process takes a device
    with its first job and keeps it, setting ``CUDA_VISIBLE_DEVICES`` to it before torch
    starts: a job sees only its own GPU, as ``cuda:0``. The keys of
    Hydra's joblib launcher (``backend``, ``timeout``, ...) keep their meaning.

    Attributes:
        trials_per_device: jobs sharing one GPU at once, an integer of at least 1, or ``auto``:
            the first trial runs alone and its peak memory and GPU utilisation choose it (see
            ``docs/clusters.md``), at most ``max_trials_per_device``.
        max_trials_per_device: the ceiling of ``auto``.
        devices: the GPUs to use (ids as ``CUDA_VISIBLE_DEVICES`` takes them); ``null``: the
            entries of ``CUDA_VISIBLE_DEVICES`` where it is set, else every GPU torch counts.
        n_jobs: worker processes; ``null`` (the default): ``len(devices) * trials_per_device``.
            Fewer leave slots unused; more are refused.
        memory_fraction: a cap on each job's share of its GPU's memory
            (``torch.cuda.set_per_process_memory_fraction``), so one trial's spike fails that
            trial (out of memory, with a message) instead of its neighbours; ``null``: no cap.
        lock_dir: where the slots' lock files live; ``null``: the system's temporary directory.
            Sweeps on one machine that share it never put more than ``trials_per_device`` jobs
            on one device between them.
    """

    _target_: str = (
        "hydra_plugins.lightning_args_gpus.lightning_args_gpus_launcher.LightningArgsGpusLauncher"
    )
    n_jobs: int | None = None  # joblib's is an int; null: one worker per slot
    trials_per_device: Any = 1
    max_trials_per_device: int = 8
    devices: list[str] | None = None
    memory_fraction: float | None = None
    lock_dir: str | None = None


#: The keys this plugin adds to joblib's: they configure the packing, not ``joblib.Parallel``.
PACKING_KEYS = (
    "trials_per_device",
    "max_trials_per_device",
    "devices",
    "memory_fraction",
    "lock_dir",
)

ConfigStore.instance().store(
    group="hydra/launcher", name=LAUNCHER, node=GpusLauncherConfig, provider=PROVIDER
)
