"""The sweeper's settings as the sweep reads them, once, before anything is opened: each
range checked with one message, the directions read through the one enum, the sweep directory
pinned.

Apart from the schema (``config.py``), which Hydra imports at every start-up: this runs for
``-m`` only.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from hydra_plugins.lightning_args_optuna.config import Direction, SweeperConfig
from lightning_args.errors import ConfigValueError, SearchSpaceError
from lightning_args.sweep.pacing import PacedLauncher

_N_JOBS = "a whole number >= 1, or null (as many as the launcher runs at once)"

#: Sweeper settings with a range: (key, in range?, what is expected, a value that works).
_RANGES: tuple[tuple[str, Callable[[Any], bool], str, str], ...] = (
    ("n_trials", lambda v: isinstance(v, int) and v >= 1, "a whole number >= 1", "20"),
    ("n_jobs", lambda v: v is None or (isinstance(v, int) and v >= 1), _N_JOBS, "1"),
    ("max_failure_rate", lambda v: 0 <= v <= 1, "a fraction from 0 to 1", "0.25"),
    ("heartbeat_interval", lambda v: v is None or v > 0, "seconds > 0, or null", "30"),
    ("grace_period", lambda v: v > 0, "seconds > 0", "300"),
    ("max_redraws", lambda v: isinstance(v, int) and v >= 0, "a whole number >= 0", "10"),
    ("refresh", lambda v: v > 0, "seconds > 0", "1"),
)


def check_settings(settings: SweeperConfig) -> None:
    """One message for a sweeper setting out of its range (the schema checked its type)."""
    for key, in_range, expected, example in _RANGES:
        value = getattr(settings, key)
        if not in_range(value):
            raise ConfigValueError(
                f"hydra.sweeper.{key}={value!r}: expected {expected}. "
                f"Fix: hydra.sweeper.{key}={example}"
            )


def pin_sweep_dir(config: DictConfig) -> Path:
    """Resolve ``hydra.sweep.dir`` once, as an absolute path, and store it in the config.

    Jobs then inherit the literal path instead of re-resolving an interpolation (which may
    depend on the job's own overrides or the time).
    """
    sweep_dir = Path(str(config.hydra.sweep.dir)).absolute()
    with read_write(config.hydra.sweep), open_dict(config.hydra.sweep):
        config.hydra.sweep.dir = str(sweep_dir)
    return sweep_dir


def container(node: Any) -> Any:
    """A config node as plain values, resolved (anything else as it is)."""
    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node


def parse_directions(direction: Any) -> list[str]:
    """``hydra.sweeper.direction`` (one, or a list for a multi-objective study) as names."""
    raw = (
        list(direction)
        if isinstance(direction, Sequence | list) and not isinstance(direction, str)
        else [direction]
    )
    out = []
    for item in raw:
        try:
            out.append(Direction(getattr(item, "value", item)).value)
        except ValueError:
            raise SearchSpaceError(
                f"hydra.sweeper.direction={direction!r}: expected minimize or maximize (or a "
                "list of them for a multi-objective study). Fix: "
                "hydra.sweeper.direction=maximize"
            ) from None
    return out


def launcher_parallelism(
    launcher: DictConfig, *, in_process: bool, plugin: object | None = None
) -> int:
    """How many jobs ``hydra.launcher`` runs at once: what ``hydra.sweeper.n_jobs: null``
    follows, so that a user sets parallelism once, on the launcher.

    A :class:`~lightning_args.sweep.pacing.PacedLauncher` ``plugin`` (the launcher made from
    ``launcher``; the GPU launcher is one) says it itself. Otherwise:

    joblib's ``n_jobs`` (negative counts from the cores, as joblib does: -1 is every core);
    submitit's ``array_parallelism``, on this machine (``submitit_local``) at most as many jobs
    as its cores hold jobs of ``cpus_per_task``; Hydra's basic launcher (in this process) and
    any other one, 1.

    >>> from omegaconf import OmegaConf
    >>> launcher_parallelism(OmegaConf.create({"n_jobs": 3}), in_process=False)
    3
    >>> launcher_parallelism(OmegaConf.create({"array_parallelism": 8}), in_process=False)
    8
    """
    if isinstance(plugin, PacedLauncher):
        return max(1, plugin.jobs_at_once())
    cores = os.cpu_count() or 1
    n_jobs = OmegaConf.select(launcher, "n_jobs", default=None)
    if in_process or n_jobs == 0:
        return 1
    if isinstance(n_jobs, int):
        return max(1, n_jobs if n_jobs > 0 else cores + 1 + n_jobs)
    parallel = OmegaConf.select(launcher, "array_parallelism", default=None)
    if not isinstance(parallel, int):
        return 1
    if "Local" in str(OmegaConf.select(launcher, "_target_", default="")):
        cpus = OmegaConf.select(launcher, "cpus_per_task", default=None)
        parallel = min(parallel, max(1, cores // (cpus if isinstance(cpus, int) and cpus else 1)))
    return max(1, parallel)
