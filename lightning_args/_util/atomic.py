"""Writing a file so that a reader, or a crash, never sees half of it.

Both atomic writers (:func:`atomic_write` here and the checkpoint writer,
:class:`lightning_args.run.checkpoint.AtomicCheckpointIO`) write a temporary file beside the target
and rename it into place, inside :func:`replacing`: a write that fails for any reason (a full
disk, Ctrl-C) removes its temporary file and leaves the target as it was, and running out of
space becomes one :class:`~lightning_args.errors.DiskFullError` that names the file, its file
system and what is free there.
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from lightning_args.errors import DiskFullError

DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})


def temporary_beside(path: Path) -> Path:
    """The temporary file to write before renaming it to ``path``: in the same folder (a rename,
    never a copy) and named with the process id, so two processes writing the same file (two
    trainings in one directory, which the claim forbids but a control test makes) never rename
    each other's half-written file away.

    >>> temporary_beside(Path("run/last.ckpt")).name == f".last.ckpt.{os.getpid()}.tmp"
    True
    """
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def atomic_write(path: Path, data: bytes | str) -> None:
    """Write ``data`` to ``path``: a temporary file beside it, flushed to disk, then renamed.

    A reader sees the old file or the new one; a kill mid-write leaves the old one. The
    temporary name carries the process id, so processes writing the same file do not collide.
    A failed write removes the temporary file (see :func:`replacing`).

    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "a.txt"
    >>> atomic_write(target, "one"); atomic_write(target, b"two"); target.read_text()
    'two'
    """
    tmp = temporary_beside(path)
    with replacing(path, tmp):
        with tmp.open("wb") as file:
            file.write(data.encode() if isinstance(data, str) else data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)


@contextmanager
def replacing(path: Path, tmp: Path) -> Iterator[None]:
    """Around writing ``tmp`` and renaming it to ``path``: if anything fails (any exception,
    ``KeyboardInterrupt`` included), ``tmp`` is removed and the error goes on, out of space as a
    :class:`~lightning_args.errors.DiskFullError` about ``path`` (see :func:`write_error`)."""
    try:
        yield
    except BaseException as error:
        with suppress(OSError):
            tmp.unlink(missing_ok=True)
        translated = write_error(error, path)
        if translated is error:
            raise
        raise translated from error


def write_error(error: BaseException, path: Path) -> BaseException:
    """What to raise for ``error``, met while writing ``path``.

    Out of space (``ENOSPC``, ``EDQUOT``) anywhere in the error's chain, as when ``torch.save``
    reports a failed write as a ``RuntimeError``: a :class:`DiskFullError` naming ``path``, its
    file system and what is free there, with the fix. Anything else: ``error`` itself.

    >>> full = OSError(errno.ENOSPC, "No space left on device")
    >>> print(write_error(full, Path("/")).args[0].splitlines()[0])  # doctest: +ELLIPSIS
    No space left on device while writing /: the file system mounted at / has ... free of ...
    >>> other = ValueError("x"); write_error(other, Path("/")) is other
    True
    """
    if isinstance(error, DiskFullError):
        return error
    full = _disk_full(error)
    if full is None:
        return error
    translated = DiskFullError(disk_full_message(path, full.errno or errno.ENOSPC))
    translated.errno = full.errno
    return translated


def disk_full_message(path: Path, code: int = errno.ENOSPC) -> str:
    """The message of a write to ``path`` that failed for lack of space (``code``: ``ENOSPC``
    or ``EDQUOT``)."""
    mount = mount_point(path)
    try:
        usage = shutil.disk_usage(mount)
        space = f"has {_size(usage.free)} free of {_size(usage.total)} without the partial file"
    except OSError:
        space = "reports no free space"
    if code == errno.EDQUOT:
        what = (
            f"Disk quota exceeded while writing {path}: your quota on the file system mounted "
            f"at {mount} is used up (the file system {space})"
        )
        free = "free space within your quota"
    else:
        what = (
            f"No space left on device while writing {path}: the file system mounted at {mount} "
            f"{space}"
        )
        free = f"free space on {mount}"
    return (
        f"{what}.\n  Fix: {free}, or write the outputs on another file system: "
        "paths.output_root=/path/with/space (or hydra.run.dir=... for a run, "
        "hydra.sweep.dir=... for a sweep). What was on disk before the failed write is unchanged."
    )


def mount_point(path: Path) -> Path:
    """The mount point of the file system that holds ``path`` (or would, once created).

    >>> mount_point(Path("/no/such/dir/file.txt")) == mount_point(Path("/"))
    True
    """
    here = Path(os.path.abspath(path))
    while not here.exists() and here != here.parent:
        here = here.parent
    while not os.path.ismount(here) and here != here.parent:
        here = here.parent
    return here


def _disk_full(error: BaseException) -> OSError | None:
    """The out-of-space ``OSError`` in ``error``'s chain (itself, its cause or its context)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in DISK_FULL:
            return current
        current = current.__cause__ or current.__context__
    return None


def _size(n: int) -> str:
    """``n`` bytes, for people.

    >>> _size(512), _size(4096), _size(3 * 2**30)
    ('512 B', '4.0 KiB', '3.0 GiB')
    """
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{n} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")
