"""Opening an Optuna storage from the sweeper's ``storage`` setting, in any process.

A path ending in ``.journal`` (or ``journal:<path>``) is a journal file: safe for many processes
on one machine or on a shared file system, and the fastest here (8 writers x 25 trials: 3 s,
against 23 s for sqlite). A journal whose last record a crash cut short is repaired when it is
opened (:mod:`lightning_args.sweep.journal`). Anything else is an RDB URL (``sqlite:///``,
``postgresql+psycopg2://``).

Several sweepers (on several machines) may share one study; :func:`budget_lock` keeps them
within the study's ``n_trials`` together.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

import optuna
import sqlalchemy
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

from lightning_args.errors import LightningArgsError, StorageError
from lightning_args.sweep.journal import check_journal, repair_journal

_log = logging.getLogger(__name__)

JOURNAL_PREFIX = "journal:"
BUDGET_SUFFIX = ".budget"  # the budget lock of ``x.journal`` is the file ``x.journal.budget.lock``
LockKind = Literal["journal file", "postgres advisory", "none"]


def is_journal(url: str) -> bool:
    return url.startswith(JOURNAL_PREFIX) or url.endswith(".journal")


def journal_path(url: str) -> Path:
    return Path(url.removeprefix(JOURNAL_PREFIX)).expanduser()


def is_postgres(url: str) -> bool:
    """Whether an RDB URL names PostgreSQL, whatever its driver.

    >>> is_postgres("postgresql+psycopg2://u@h/db"), is_postgres("sqlite:///x.db")
    (True, False)
    """
    try:
        return sqlalchemy.engine.make_url(url).get_backend_name() == "postgresql"
    except sqlalchemy.exc.ArgumentError:
        return False


def open_storage(url: str, *, read_only: bool = False) -> BaseStorage:
    """The storage behind ``url``; a :class:`StorageError` naming it if it cannot be opened.

    A journal with a torn last record is repaired first (a copy of it kept beside it); one
    damaged elsewhere is refused (:func:`lightning_args.sweep.journal.repair_journal`).
    ``read_only``: for a reader beside the sweepers (``lightning-args watch``), which must
    change nothing: the journal must exist and is read as it is (a last record being written is
    skipped by Optuna's reader); a database's tables are not created.
    """
    try:
        if is_journal(url) and read_only:
            path = journal_path(url)
            if not path.is_file():
                raise StorageError(
                    f"{url!r} does not exist: expected the journal file of a study. Fix: the "
                    "sweep directory of a started sweep, or --storage URL"
                )
            check_journal(path)  # damage before the last record: the message naming the line
            return JournalStorage(JournalFileBackend(str(path)))
        if read_only:
            return RDBStorage(url, heartbeat_interval=None, skip_table_creation=True)
        if is_journal(url):
            path = journal_path(url)
            path.parent.mkdir(parents=True, exist_ok=True)
            repair_journal(path)
            backend = JournalFileBackend(str(path), lock_obj=JournalFileOpenLock(str(path)))
            try:
                return JournalStorage(backend)
            except ValueError:  # json's JSONDecodeError: a line that does not parse
                check_journal(path)  # the message that names the line and the fix
                raise
        if is_postgres(url):
            # RDBStorage creates Optuna's tables when they are missing; several processes doing
            # that at once on a fresh database collide (duplicate key in pg_type), so they
            # take turns.
            engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
            try:
                with _advisory_lock(engine, _key("lightning_args schema")):
                    return RDBStorage(url, heartbeat_interval=None)
            finally:
                engine.dispose()
        return RDBStorage(url, heartbeat_interval=None)
    except LightningArgsError:  # a damaged journal, a full disk: their own messages
        raise
    except Exception as error:  # sqlalchemy and drivers raise many types; all mean "unusable"
        raise StorageError(
            f"hydra.sweeper.storage={url!r} cannot be opened: {type(error).__name__}: "
            f"{str(error).splitlines()[0] if str(error) else ''}\n"
            "  Expected a journal file path (*.journal), sqlite:///<path> or a reachable "
            "database URL such as postgresql+psycopg2://user@host/db. Fix: correct the URL, "
            "start the server, or leave storage unset (a journal file in the sweep directory)."
        ) from None


def load_study(url: str, study_name: str, pruner: optuna.pruners.BasePruner) -> optuna.Study:
    """The existing study ``study_name`` in ``url``, with ``pruner`` (Optuna does not store it)."""
    return optuna.load_study(study_name=study_name, storage=open_storage(url), pruner=pruner)


def lock_kind(url: str) -> LockKind:
    """Which cross-process lock :func:`budget_lock` takes for a storage URL.

    >>> lock_kind("/shared/sweep/study.journal"), lock_kind("sqlite:///x.db")
    ('journal file', 'none')
    """
    if is_journal(url):
        return "journal file"
    return "postgres advisory" if is_postgres(url) else "none"


@contextmanager
def budget_lock(storage: BaseStorage, url: str, study_name: str) -> Iterator[None]:
    """Hold the study's cross-process lock while a sweeper counts its trials and asks for one.

    Why: ``n_trials`` is one budget shared by every sweeper of a study (several machines, one
    storage). A sweeper counts the trials that finished or run, then asks Optuna for a new one;
    two sweepers doing that at the same moment would both see room for the last trial and the
    study would overshoot. Under this lock, "count, ask, mark the trial as ours" is atomic:

    - journal file: Optuna's own NFS-safe lock (a file created with ``O_EXCL``) next to the
      journal, ``<journal>.budget.lock``. A holder that died is overridden after 30 s.
    - PostgreSQL: a session-level advisory lock keyed by the study name, on a connection of its
      own from ``storage``'s engine; the server releases it if the holder dies.
    - other databases (sqlite, MySQL): no lock; sweepers that share the study at the same time
      may run up to (sweepers - 1) trials more than ``n_trials``.

    ``storage`` is what :func:`open_storage` returned for ``url``. The lock is not re-entrant
    and is meant for a few milliseconds; threads of one process take turns before taking it.
    """
    kind = lock_kind(url)
    if kind == "journal file":
        lock = JournalFileOpenLock(str(journal_path(url)) + BUDGET_SUFFIX)
        lock.acquire()
        try:
            yield
        finally:
            try:
                lock.release()
            except RuntimeError:  # another sweeper broke it after the grace period
                _log.warning("the budget lock of %s was taken over by another sweeper", url)
    elif kind == "postgres advisory" and isinstance(storage, RDBStorage):
        with _advisory_lock(storage.engine, _key(f"lightning_args budget {study_name}")):
            yield
    else:
        yield


@contextmanager
def _advisory_lock(engine: sqlalchemy.engine.Engine, key: int) -> Iterator[None]:
    """PostgreSQL's session-level advisory lock ``key``, on one connection of ``engine``."""
    with engine.connect() as connection:
        connection.execute(sqlalchemy.text("SELECT pg_advisory_lock(:key)"), {"key": key})
        connection.commit()
        try:
            yield
        finally:
            connection.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:key)"), {"key": key})
            connection.commit()


def _key(name: str) -> int:
    """A stable signed 64-bit advisory-lock key for ``name`` (PostgreSQL's ``bigint``).

    >>> _key("lightning_args budget s") == _key("lightning_args budget s") != _key("x")
    True
    """
    digest = hashlib.blake2b(name.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)
