"""Paths in a config read back from a run directory: a loaded, resumed or reproduced run writes
inside its own directory, and nowhere a stranger's file points it.

    the stored config -> paths under the run's old directory moved to where it is now
    -> the shared stores (data cache, MLflow store) set to this machine's
    -> every other place it writes checked to be inside the run directory, symlinks resolved

Checked keys are those a run writes under: :data:`RUN_PATH_KEYS` (checkpoint ``dirpath``,
logger ``save_dir``, ...) and file names joined to them (:data:`FILE_NAME_KEYS`). A path outside
is refused with :class:`~lightning_args.UntrustedPathError`, never followed.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from lightning_args.config.root import CACHE_ENV, MLFLOW_STORE, OUTPUT_ROOT
from lightning_args.errors import UntrustedPathError

#: Keys whose value is a directory a run writes into: it must lie inside the run directory.
RUN_PATH_KEYS = frozenset(
    {"default_root_dir", "dirpath", "log_dir", "output_dir", "root_dir", "run_dir", "save_dir"}
)
#: Keys whose value is a file name joined to such a directory: relative, without ``..``.
FILE_NAME_KEYS = frozenset({"filename"})

_log = logging.getLogger(__name__)


def shared_stores() -> dict[str, str]:
    """This machine's stores that runs share, by the key that names them in a config."""
    return {
        "cache_dir": os.environ.get(CACHE_ENV) or f"{OUTPUT_ROOT}/cache",
        "tracking_uri": MLFLOW_STORE,
    }


def confine(config: dict[str, Any], root: Path, source: str) -> dict[str, Any]:
    """``config`` (stored by the run now in ``root``) with its paths moved into ``root`` and its
    shared stores set to this machine's; :class:`~lightning_args.UntrustedPathError` when a
    place it writes to lies outside ``root``.

    >>> confine({"paths": {"run_dir": "/old/r"}, "ckpt": {"dirpath": "/old/r/c"}}, Path("/n"), "f")
    {'paths': {'run_dir': '/n'}, 'ckpt': {'dirpath': '/n/c'}}
    >>> confine({"paths": {"run_dir": "/r"}, "log": {"save_dir": "/etc"}}, Path("/n"), "f")
    Traceback (most recent call last):
    ...
    lightning_args.errors.UntrustedPathError: f sets log.save_dir='/etc', outside ...
    """
    old = config.get("paths", {}).get("run_dir") if isinstance(config.get("paths"), dict) else None
    moved = _relocated(config, str(old), str(root)) if isinstance(old, str) and old else config
    confined: dict[str, Any] = _checked(moved, root, source, shared_stores(), "")
    return confined


def inside(path: Path, root: Path, what: str) -> Path:
    """``path``, once it (symlinks resolved) is ``root`` or lies under it.

    >>> inside(Path("/n/checkpoints/../../etc/passwd"), Path("/n"), "run.json's checkpoint")
    Traceback (most recent call last):
    ...
    lightning_args.errors.UntrustedPathError: run.json's checkpoint '/n/checkpoints/../../etc/...
    """
    resolved, top = path.resolve(), root.resolve()
    if _within(resolved, top):
        return path
    raise UntrustedPathError(
        f"{what} {str(path)!r} resolves to {str(resolved)!r}, outside the run directory "
        f"{str(top)!r}: a run directory may come from someone else, so nothing outside it is "
        "read or written. Fix: if you made this run, put the file back inside its directory"
    )


def _checked(node: Any, root: Path, source: str, stores: dict[str, str], prefix: str) -> Any:
    if isinstance(node, list):
        return [_checked(v, root, source, stores, f"{prefix}{i}.") for i, v in enumerate(node)]
    if not isinstance(node, dict):
        return node
    result = {}
    for key, value in node.items():
        where = f"{prefix}{key}"
        if isinstance(value, str) and key in stores and value != stores[key]:
            _log.warning(
                "%s: %s=%r is not used: a loaded run uses this machine's store, %r",
                source,
                where,
                value,
                stores[key],
            )
            value = stores[key]
        elif isinstance(value, str) and key in RUN_PATH_KEYS:
            _check_dir(where, value, root, source)
        elif isinstance(value, str) and key in FILE_NAME_KEYS:
            _check_name(where, value, source)
        result[key] = _checked(value, root, source, stores, f"{where}.")
    return result


def _check_dir(key: str, value: str, root: Path, source: str) -> None:
    top = root.resolve()
    if _within(Path(value).resolve(), top):
        return
    raise UntrustedPathError(
        f"{source} sets {key}={value!r}, outside the run directory {str(top)!r}: a loaded, "
        "resumed or reproduced run writes only inside its own directory, and this file may come "
        "from someone else. Fix: if you made this run, train a new one from its checkpoint "
        f"(python train.py ckpt_path={top / 'checkpoints' / 'last.ckpt'})"
    )


def _check_name(key: str, value: str, source: str) -> None:
    if not os.path.isabs(value) and ".." not in Path(value).parts:
        return
    raise UntrustedPathError(
        f"{source} sets {key}={value!r}: a file name must stay in its directory (relative, "
        "without '..'). Fix: if you made this run, train a new one from its checkpoint"
    )


def is_inside(path: Path, root: Path) -> bool:
    """Whether ``path`` (symlinks resolved) is ``root`` or lies under it.

    >>> is_inside(Path("/r/checkpoints/last.ckpt"), Path("/r"))
    True
    >>> is_inside(Path("/r/../x"), Path("/r"))
    False
    """
    return _within(path.resolve(), root.resolve())


def _within(resolved: Path, top: Path) -> bool:
    return resolved == top or top in resolved.parents


def _relocated(node: Any, old: str, new: str) -> Any:
    """``node`` with every string under ``old`` (a directory) moved under ``new``.

    >>> _relocated({"a": ["/x/run/ckpt", "/x/runner"], "b": 1}, "/x/run", "/y/r")
    {'a': ['/y/r/ckpt', '/x/runner'], 'b': 1}
    """
    if isinstance(node, dict):
        return {k: _relocated(v, old, new) for k, v in node.items()}
    if isinstance(node, list):
        return [_relocated(v, old, new) for v in node]
    if isinstance(node, str) and (node == old or node.startswith(old + os.sep)):
        return new + node[len(old) :]
    return node
