"""The default name of a study: the same command gives the same study (and sweep directory)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from typing import Any

_UNSAFE = re.compile(r"[^A-Za-z0-9=,._-]+")


def study_name(job_name: str, task_overrides: Iterable[str]) -> str:
    """``<job>_<overrides>_<hash>``: readable, and unique to the command's task overrides.

    Hydra's own overrides (``hydra.sweeper.n_trials=...``, ``hydra/launcher=...``) are not task
    overrides, so raising the budget or changing the launcher continues the same study.
    ``+sweep=...`` is left out of the readable part (every sweep has it), not of the hash.

    >>> study_name("train", ["+sweep=optuna", "model=gan"])
    'train_model=gan_978ddd72'
    >>> study_name("train", ["model=gan", "+sweep=optuna"])
    'train_model=gan_978ddd72'
    """
    overrides = sorted(task_overrides)
    digest = hashlib.sha256("\n".join(overrides).encode()).hexdigest()[:8]
    shown = [o for o in overrides if not o.lstrip("+~").startswith("sweep=")]
    slug = _UNSAFE.sub("_", ",".join(shown))[:60].strip("_")
    return "_".join(part for part in (job_name, slug, digest) if part)


def study_name_resolver(*, _root_: Any) -> str:
    """``${lightning_args.study:}``: :func:`study_name` of the running command."""
    hydra = _root_.hydra
    return study_name(str(hydra.job.name), [str(o) for o in hydra.overrides.task])
