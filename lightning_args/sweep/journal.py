"""A study journal whose last record a crash cut short: repaired on open; anything worse refused.

A journal (Optuna's ``JournalFileBackend``) is one JSON record a line, appended under the
journal's lock file. A crash, a kill or a full disk during an append leaves a torn last line.
Optuna's reader skips a torn last line, but the next append lands after it (that record is
lost) and the one after that turns it into a corrupt line in the middle, which no later read
gets past (``JSONDecodeError``); see
``lightning_args/_compat/optuna.py``. So :func:`repair_journal` drops a torn last line
before the journal is used, keeping a copy of the file as it was beside it, and refuses a
journal with a corrupt line anywhere else with one message and the fix.

The repair runs under the journal's own lock, the one Optuna's writers hold while they append:
a record that another sweeper or trial is writing at that moment is waited for, not mistaken
for a torn one. A lock left by a process that died is overridden after Optuna's grace period
(30 s), as for any of Optuna's writers.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

from lightning_args._util.atomic import atomic_write
from lightning_args.errors import StorageError

_log = logging.getLogger(__name__)

TORN_SUFFIX = ".torn-"  # the copy of a repaired ``x.journal`` is ``x.journal.torn-<time>``
_TAIL_CHUNK = 64 * 1024


def repair_journal(path: Path) -> Path | None:
    """Drop a torn last record of the journal at ``path``; return the copy kept of it, if any.

    Torn: the last line has no line end, or does not parse as a JSON object. A line that does
    not parse anywhere else is damage that a crash does not leave: a :class:`StorageError`
    naming the file, the line and the fix. A journal that ends with a complete record is only
    read at its end (no lock is taken).
    """
    if not path.is_file() or _complete(_last_line(path)):
        return None
    from optuna.storages.journal import JournalFileOpenLock

    lock = JournalFileOpenLock(str(path))
    lock.acquire()
    try:
        return _repair(path)
    finally:
        try:
            lock.release()
        except RuntimeError:  # another process broke it after the grace period
            _log.warning("the lock of %s was taken over by another process", path)


def check_journal(path: Path) -> None:
    """Raise the :class:`StorageError` of a journal with a corrupt line before its last one."""
    records = list(_lines(path.read_bytes()))
    _refuse_damage(path, records)


def _repair(path: Path) -> Path | None:
    data = path.read_bytes()
    records = list(_lines(data))
    _refuse_damage(path, records)
    if not records or _complete(records[-1][1]):
        return None  # a writer finished its record while this process waited for the lock
    start, torn = records[-1]
    backup = _backup_name(path)
    atomic_write(backup, data)
    with path.open("r+b") as file:
        file.truncate(start)
        file.flush()
        os.fsync(file.fileno())
    _log.warning(
        "Repaired the study journal %s: its last record was torn (what a crash or a full disk "
        "during a write leaves); dropped 1 record (%d bytes) and kept %d. The journal as it "
        "was is in %s",
        path,
        len(torn),
        len(records) - 1,
        backup,
    )
    return backup


def _refuse_damage(path: Path, records: list[tuple[int, bytes]]) -> None:
    for number, (_, line) in enumerate(records[:-1], start=1):
        if not _complete(line):
            copies = sorted(p.name for p in path.parent.glob(f"{path.name}{TORN_SUFFIX}*"))
            kept = f" (copies kept beside it: {', '.join(copies)})" if copies else ""
            raise StorageError(
                f"The study journal {path} is damaged: line {number} of {len(records)} is not "
                f"a complete record ({line[:60]!r}). Only a torn last line is repaired "
                "automatically; this is damage in the middle of the file.\n"
                f"  Fix: restore the journal from a copy{kept}, or start a new study: "
                "hydra.sweeper.study_name=<new name> (or another hydra.sweeper.storage)."
            )


def _lines(data: bytes) -> Iterator[tuple[int, bytes]]:
    """``(offset, line)`` for each line of ``data`` as Optuna's reader splits it: after each
    ``\\n``, the last one possibly without it.

    >>> list(_lines(b'{"a":1}\\n{"b"'))
    [(0, b'{"a":1}\\n'), (8, b'{"b"')]
    """
    start = 0
    while start < len(data):
        end = data.find(b"\n", start)
        stop = len(data) if end < 0 else end + 1
        yield start, data[start:stop]
        start = stop


def _complete(line: bytes | None) -> bool:
    """Whether ``line`` is a whole journal record (``None``: an empty journal is whole).

    >>> _complete(b'{"op_code":0}\\n'), _complete(b'{"op_code":0}'), _complete(b'{"op_\\n')
    (True, False, False)
    """
    if line is None:
        return True
    if not line.endswith(b"\n"):
        return False
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:  # JSONDecodeError, UnicodeDecodeError
        return False


def _last_line(path: Path) -> bytes | None:
    """The journal's last line, read from its end; ``None`` for an empty file."""
    with path.open("rb") as file:
        size = file.seek(0, os.SEEK_END)
        if size == 0:
            return None
        tail = b""
        position = size
        while position > 0:
            step = min(_TAIL_CHUNK, position)
            position -= step
            file.seek(position)
            tail = file.read(step) + tail
            cut = tail.rfind(b"\n", 0, len(tail) - 1)
            if cut >= 0:
                return tail[cut + 1 :]
        return tail


def _backup_name(path: Path) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    backup = path.with_name(f"{path.name}{TORN_SUFFIX}{stamp}")
    n = 1
    while backup.exists():
        n += 1
        backup = path.with_name(f"{path.name}{TORN_SUFFIX}{stamp}-{n}")
    return backup
