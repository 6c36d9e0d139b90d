"""Opening an Optuna storage from the sweeper's ``storage`` setting, in any process.

A path ending in ``.journal`` (or ``journal:<path>``) is a journal file: safe for many processes
on one machine or on a shared file system, and the fastest here (8 writers x 25 trials: 3 s,
against 23 s for sqlite). Anything else is an RDB URL (``sqlite:///``, ``postgresql://``).
"""

from __future__ import annotations

from pathlib import Path

import optuna
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

from lightning_args.errors import StorageError

JOURNAL_PREFIX = "journal:"


def is_journal(url: str) -> bool:
    return url.startswith(JOURNAL_PREFIX) or url.endswith(".journal")


def open_storage(url: str) -> BaseStorage:
    """The storage behind ``url``; a :class:`StorageError` naming it if it cannot be opened."""
    try:
        if is_journal(url):
            path = Path(url.removeprefix(JOURNAL_PREFIX)).expanduser()
            path.parent.mkdir(parents=True, exist_ok=True)
            backend = JournalFileBackend(str(path), lock_obj=JournalFileOpenLock(str(path)))
            return JournalStorage(backend)
        return RDBStorage(url, heartbeat_interval=None)
    except Exception as error:  # sqlalchemy and drivers raise many types; all mean "unusable"
        raise StorageError(
            f"hydra.sweeper.storage={url!r} cannot be opened: {type(error).__name__}: "
            f"{str(error).splitlines()[0] if str(error) else ''}\n"
            "  Expected a journal file path (*.journal), sqlite:///<path> or a reachable "
            "database URL such as postgresql://user@host/db. Fix: correct the URL, start the "
            "server, or leave storage unset (a journal file in the sweep directory)."
        ) from None


def load_study(url: str, study_name: str, pruner: optuna.pruners.BasePruner) -> optuna.Study:
    """The existing study ``study_name`` in ``url``, with ``pruner`` (Optuna does not store it)."""
    return optuna.load_study(study_name=study_name, storage=open_storage(url), pruner=pruner)
