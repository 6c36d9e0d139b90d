"""The directory a run gets: ``${lightning_args.unique_dir:<path>}``, the resolver of
``hydra.run.dir`` (registered by :func:`lightning_args.config.store.register`), which creates
the first of ``<path>``, ``<path>-1``, ... that no other run has."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_unique_dirs: dict[str, str] = {}


class _Dry(threading.local):
    active = False


_dry = _Dry()


@contextmanager
def dry_run_dirs() -> Iterator[None]:
    """While active, :func:`unique_dir` names the directory a run would get and creates none:
    for showing a config (``--cfg``, ``--help``), which is no run."""
    _dry.active = True
    try:
        yield
    finally:
        _dry.active = False


def unique_dir(path: str) -> str:
    """Return ``path``, or ``path-1``, ``path-2``...: the first directory this call could create.

    Creation is an atomic ``mkdir``, so two runs that start in the same second (even on two
    machines sharing the file system) get two directories. Hydra resolves ``hydra.run.dir`` more
    than once per run; the answer is memoised per process so that every resolution agrees.
    """
    if path in _unique_dirs:
        return _unique_dirs[path]
    base = Path(path)
    if _dry.active:
        # Showing a config (--cfg, --help): the directory a run would get, left uncreated.
        return next(
            str(c)
            for i in itertools.count()
            if not (c := base if i == 0 else base.with_name(f"{base.name}-{i}")).exists()
        )
    base.parent.mkdir(parents=True, exist_ok=True)
    for i in itertools.count():
        candidate = base if i == 0 else base.with_name(f"{base.name}-{i}")
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        _unique_dirs[path] = str(candidate)
        return str(candidate)
    raise AssertionError("unreachable")
