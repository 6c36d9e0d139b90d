"""Writing a file so that a reader, or a crash, never sees half of it."""

from __future__ import annotations

import os
from pathlib import Path


def atomic_write(path: Path, data: bytes | str) -> None:
    """Write ``data`` to ``path``: a temporary file beside it, flushed to disk, then renamed.

    A reader sees the old file or the new one; a kill mid-write leaves the old one. The
    temporary name carries the process id, so processes writing the same file do not collide.

    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "a.txt"
    >>> atomic_write(target, "one"); atomic_write(target, b"two"); target.read_text()
    'two'
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("wb") as file:
        file.write(data.encode() if isinstance(data, str) else data)
        file.flush()
        os.fsync(file.fileno())
    os.replace(tmp, path)
