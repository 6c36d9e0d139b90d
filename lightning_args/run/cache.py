"""A cache of prepared data sets, shared by runs and by the parallel jobs of a sweep.

An entry is keyed by a hash of what the preparation depends on (the data config's fields that
the DataModule reads, its class, a format version), and lives in ``<cache_dir>/<name>-<hash>/``:

- ``data.pt``: what the preparation returned (tensors, dicts, lists, numbers), saved with
  ``torch.save`` and read back with ``weights_only=True``;
- ``meta.json``: the key, the file's SHA-256 and size, when and by whom it was built. It is
  written last, so an entry without it is incomplete.

Both files are written beside their final name, flushed to disk, then renamed: a crash never
leaves half an entry. Builders take an exclusive file lock first, so when several processes
want the same missing entry one builds it and the others wait and read it. A file whose
SHA-256 does not match (disk trouble, a hand edit) is rebuilt, with a warning.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import logging
import os
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import torch

from lightning_args._util.atomic import atomic_write

T = TypeVar("T")
_log = logging.getLogger(__name__)

FORMAT = 1  # bump when the layout of an entry changes


def cache_key(key: Mapping[str, Any]) -> str:
    """A stable hash of ``key`` (JSON with sorted keys): 16 hex digits.

    >>> a = cache_key({"scale": "unit", "split_seed": 0})
    >>> a == cache_key({"split_seed": 0, "scale": "unit"}), a == cache_key({"scale": "standard"})
    (True, False)
    """
    text = json.dumps({"format": FORMAT, **key}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def cached(
    build: Callable[[], T], *, key: Mapping[str, Any], cache_dir: str | Path, name: str = "data"
) -> T:
    """What ``build()`` returns, from ``cache_dir`` when an intact entry for ``key`` is there.

    Example (in a DataModule's ``setup``)::

        self.splits = cached(
            self._prepare,
            key={"source": "digits", "scale": self.scale, "split_seed": self.split_seed},
            cache_dir=self.cache_dir,
        )
    """
    entry = Path(cache_dir) / f"{name}-{cache_key(key)}"
    value = _read(entry)
    if value is not None:
        return value  # type: ignore[no-any-return]
    entry.parent.mkdir(parents=True, exist_ok=True)
    with _locked(entry.with_suffix(".lock")):
        value = _read(entry)  # another process may have built it while this one waited
        if value is not None:
            return value  # type: ignore[no-any-return]
        started = time.perf_counter()
        built = build()
        _write(entry, built, key, time.perf_counter() - started)
        return built


def _read(entry: Path) -> Any | None:
    meta_path = entry / "meta.json"
    if not meta_path.is_file():
        return None
    try:
        meta = json.loads(meta_path.read_text())
        data = (entry / "data.pt").read_bytes()
    except (OSError, json.JSONDecodeError) as error:
        _log.warning("Data cache entry %s is unreadable (%s): rebuilding it", entry, error)
        return None
    if len(data) != meta.get("size") or hashlib.sha256(data).hexdigest() != meta.get("sha256"):
        _log.warning("Data cache entry %s is corrupted (checksum mismatch): rebuilding it", entry)
        return None
    return torch.load(io.BytesIO(data), weights_only=True)


def _write(entry: Path, value: Any, key: Mapping[str, Any], seconds: float) -> None:
    entry.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save(value, buffer)
    data = buffer.getvalue()
    (entry / "meta.json").unlink(missing_ok=True)  # the entry is incomplete until meta is back
    atomic_write(entry / "data.pt", data)
    meta = {
        "key": dict(key),
        "format": FORMAT,
        "sha256": hashlib.sha256(data).hexdigest(),
        "size": len(data),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "build_seconds": round(seconds, 3),
        "built_by": f"{socket.gethostname()}:{os.getpid()}",
    }
    atomic_write(entry / "meta.json", json.dumps(meta, indent=2, default=str))


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as file:
        fcntl.flock(file.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(file.fileno(), fcntl.LOCK_UN)
