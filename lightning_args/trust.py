"""Which ``_target_``s may be built from a config read back from a file.

A checkpoint or run directory may come from someone else, and instantiating its config would
run whatever its ``_target_``s name (``os.system`` included). Configs read back by
:func:`~lightning_args.load_from_checkpoint` and :func:`~lightning_args.load_run` are checked
first: every ``_target_`` must start with an allowed prefix (lightning_args, torch, lightning
and torchmetrics, plus what :func:`allow_targets` or ``LIGHTNING_ARGS_ALLOW_TARGETS`` adds).
Checkpoints themselves are read with ``weights_only=True``. A config composed by your own app
is yours and is not checked.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from lightning_args.errors import UntrustedTargetError
from lightning_args.targets import iter_targets

ENV = "LIGHTNING_ARGS_ALLOW_TARGETS"
DEFAULT_PREFIXES = (
    "lightning_args.",
    "torch.",
    "lightning.",
    "pytorch_lightning.",
    "torchmetrics.",
)
_extra: list[str] = []


def allow_targets(*prefixes: str) -> None:
    """Also build ``_target_``s under ``prefixes`` (e.g. your package) when loading runs.

    >>> allow_targets("my_project.")
    >>> "my_project." in allowed_prefixes()
    True
    """
    _extra.extend(_normalised(prefixes))


def allowed_prefixes() -> tuple[str, ...]:
    """Every allowed prefix: the defaults, :func:`allow_targets`' and the environment's."""
    from_env = [p for p in os.environ.get(ENV, "").split(",") if p.strip()]
    return (*DEFAULT_PREFIXES, *_extra, *_normalised(from_env))


def check_trusted(config: Any, source: str) -> None:
    """Raise :class:`UntrustedTargetError` for the first ``_target_`` not allowed."""
    prefixes = allowed_prefixes()
    for key, target in iter_targets(config):
        if not target.startswith(prefixes):
            raise UntrustedTargetError(
                f"{source} asks to build {key}={target!r}, which is not allowed: a config read "
                "back from a file may come from someone else, so only targets under "
                f"{', '.join(prefixes)} are built. Fix: if you trust this file and {target!r}, "
                f"call lightning_args.allow_targets({_package(target)!r}) or set "
                f"{ENV}={_package(target)}"
            )


def _normalised(prefixes: Iterable[str]) -> list[str]:
    return [p.strip() if p.strip().endswith(".") else f"{p.strip()}." for p in prefixes]


def _package(target: str) -> str:
    return target.split(".")[0] + "."
