"""A run directory has one writer at a time, and an existing run is continued on purpose or not
at all.

    peek at the holder (a live one: refused) -> a run already there? (continued on purpose,
    moved aside with ``overwrite=true``, or refused) -> claim the directory for this process

The claim is ``owner.lock`` in the run directory: an exclusive ``flock`` held for the writer's
life (the operating system drops it when the process dies, however it dies), and inside it the
holder's host, pid, start time and Slurm job, with the file's modification time as a heartbeat
renewed every :data:`HEARTBEAT_S`. Where the file system has no working ``flock`` (some shared
file systems), or the holder is on another machine, the heartbeat decides: a claim with none
for :data:`GRACE_S` is stale and taken over with a warning. A requeued Slurm job takes over its
own claim at once: the same job cannot run twice.

The same liveness tells readers (``lightning-args runs``, ``show``) whether a run whose record
says ``running`` is still being written.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from lightning_args.errors import RunBusyError, RunExistsError
from lightning_args.run.confine import is_inside
from lightning_args.run.record import RECORD_NAME, RunRecord, process_alive

LOCK_NAME = "owner.lock"
#: Seconds between two heartbeats of a claim.
HEARTBEAT_S = 30.0
#: Seconds without a heartbeat after which another machine's claim is stale.
GRACE_S = float(os.environ.get("LIGHTNING_ARGS_CLAIM_GRACE_S", 300))
#: The Slurm variable that names a job; a requeued job keeps it.
_SLURM_JOB = "SLURM_JOB_ID"

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Holder:
    """Who holds a run directory: written into ``owner.lock`` by its writer."""

    host: str
    pid: int
    since: str
    job: str | None = None
    #: When the holder last said it was alive (the lock file's modification time, epoch s).
    heartbeat: float = 0.0

    @classmethod
    def me(cls) -> Holder:
        return cls(socket.gethostname(), os.getpid(), _now(), os.environ.get(_SLURM_JOB))

    @property
    def alive(self) -> bool:
        """Still writing: its process exists (this machine) or its heartbeat is recent."""
        if self.is_my_job:
            return False  # a requeued Slurm job: its earlier run is gone
        if self.host == socket.gethostname():
            return process_alive(self.pid)
        return time.time() - self.heartbeat < GRACE_S

    @property
    def is_my_job(self) -> bool:
        """The same Slurm job as this process (a requeue of it, or this very process)."""
        mine = os.environ.get(_SLURM_JOB)
        return mine is not None and self.job == mine and self.pid != os.getpid()

    def describe(self) -> str:
        ago = max(0.0, time.time() - self.heartbeat)
        job = f", Slurm job {self.job}" if self.job else ""
        return f"pid {self.pid} on {self.host}{job}, since {self.since} (heartbeat {ago:.0f} s ago)"


def holder(run_dir: Path) -> Holder | None:
    """The holder recorded in ``run_dir``'s claim, or ``None`` (no claim, released, unreadable).

    >>> holder(Path("/nonexistent")) is None
    True
    """
    path = run_dir / LOCK_NAME
    try:
        text, mtime = path.read_text(), path.stat().st_mtime
        data = json.loads(text) if text.strip() else None
        if not isinstance(data, dict):
            return None
        return Holder(
            host=str(data["host"]),
            pid=int(data["pid"]),
            since=str(data["since"]),
            job=None if data.get("job") is None else str(data["job"]),
            heartbeat=mtime,
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


#: Variables launchers set to a process's rank (torchrun and Lightning, Slurm, MPI).
_RANK_VARIABLES = ("RANK", "LOCAL_RANK", "SLURM_PROCID", "OMPI_COMM_WORLD_RANK")


def writes_for_its_job() -> bool:
    """Whether this process is rank 0 of its job, the one that writes the run directory.

    >>> writes_for_its_job()
    True
    """
    return all(os.environ.get(name, "0") in ("0", "") for name in _RANK_VARIABLES)


def check_reuse(run_dir: Path, *, continuing: bool, overwrite: bool) -> None:
    """Before a run writes into ``run_dir``: refuse a live writer there (:class:`RunBusyError`)
    and an earlier run that is not being continued (:class:`RunExistsError`); with
    ``overwrite`` the earlier run is moved aside to ``<dir>.replaced-<time>``, never deleted."""
    current = holder(run_dir)
    if current is not None and current.alive and current.pid != os.getpid():
        raise _busy(run_dir, current)
    if continuing or not (run_dir / RECORD_NAME).is_file():
        return
    if current is not None and current.is_my_job:
        return  # a requeued Slurm job starting over in its own directory
    if overwrite:
        aside = run_dir.with_name(f"{run_dir.name}.replaced-{_stamp()}")
        os.rename(run_dir, aside)
        run_dir.mkdir()
        _log.warning("overwrite=true: the run that was in %s is now in %s", run_dir, aside)
        return
    raise RunExistsError(
        f"{run_dir} already holds a run ({_summary(run_dir)}): a new run never replaces "
        f"another. Fix: continue it with `lightning-args resume {run_dir}`, choose another "
        f"directory, or pass overwrite=true to move it aside to {run_dir.name}.replaced-<time>"
    )


@contextlib.contextmanager
def claimed(run_dir: Path) -> Iterator[None]:
    """Hold the exclusive claim on ``run_dir`` while inside (re-entrant within a process).

    Example::

        with claimed(Path("outputs/runs/a")):
            ...  # this process is the directory's only writer
    """
    claim = acquire(run_dir)
    try:
        yield
    finally:
        claim.release()


def acquire(run_dir: Path) -> _Claim:
    """The claim on ``run_dir`` for this process: taken now, or counted again if already held.

    :class:`RunBusyError` names the holder when another live process has it."""
    key = run_dir.resolve()
    with _claims_lock:
        claim = _claims.get(key)
        if claim is None:
            claim = _claims[key] = _Claim.take(key)
        claim.count += 1
        return claim


class ClaimRunDirectory(Callback):
    """Hydra callback (in every lightning_args app's ``hydra.callbacks``): before Hydra writes
    anything into a single run's directory (``.hydra/``, the log), refuse a live writer or an
    earlier run there, or move it aside with ``overwrite=true``; then claim the directory.

    Multirun jobs are checked by :func:`lightning_args.train`, after Hydra has written their
    ``.hydra/`` files: Hydra offers no hook before that.
    """

    def __init__(self) -> None:
        self._claim: _Claim | None = None

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        if not writes_for_its_job():
            return  # a DDP rank that Lightning started again: rank 0 holds the claim
        run_dir = Path(str(config.hydra.run.dir))
        ckpt = OmegaConf.select(config, "ckpt_path", default=None)
        try:
            check_reuse(
                run_dir,
                continuing=bool(ckpt) and is_inside(Path(str(ckpt)), run_dir),
                overwrite=bool(OmegaConf.select(config, "overwrite", default=False)),
            )
            self._claim = acquire(run_dir)
        except (RunBusyError, RunExistsError) as refused:
            # Hydra turns a callback's exceptions into warnings and goes on to write into the
            # directory; SystemExit is not an Exception: the app stops here, message, status 1.
            raise SystemExit(str(refused)) from None

    def on_run_end(self, config: DictConfig, **kwargs: Any) -> None:
        if self._claim is not None:
            self._claim.release()
            self._claim = None


class _Claim:
    """One held claim: the locked file descriptor and the heartbeat thread."""

    def __init__(self, run_dir: Path, fd: int) -> None:
        self.run_dir, self.fd, self.count = run_dir, fd, 0
        self._stop = threading.Event()
        self._beat = threading.Thread(target=self._heartbeat, daemon=True, name="run-claim")
        self._beat.start()

    @classmethod
    def take(cls, run_dir: Path) -> _Claim:
        run_dir.mkdir(parents=True, exist_ok=True)
        path = run_dir / LOCK_NAME
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            locked = _flock(fd)
            previous = holder(run_dir)
            if locked is False and previous is not None:
                raise _busy(run_dir, previous)
            if locked is False:  # someone holds it and has not written who yet
                raise _busy(run_dir, Holder("another process", 0, "now", None, time.time()))
            if previous is not None and previous.pid != os.getpid():
                # flock said free: on this machine its holder is dead. Another machine's claim
                # (flock may not reach across machines), or any claim where there is no flock,
                # must also have no recent heartbeat.
                if not (locked and previous.host == socket.gethostname()) and previous.alive:
                    raise _busy(run_dir, previous)
                _log.warning(
                    "%s: taking over the claim of %s, which is gone", run_dir, previous.describe()
                )
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(_record(Holder.me())).encode(), 0)
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            raise
        claim = cls(run_dir, fd)
        atexit.register(claim.close)
        return claim

    def release(self) -> None:
        with _claims_lock:
            self.count -= 1
            if self.count > 0:
                return
            _claims.pop(self.run_dir, None)
        self.close()

    def close(self) -> None:
        if self.fd < 0:
            return
        self._stop.set()
        with contextlib.suppress(OSError):
            os.ftruncate(self.fd, 0)  # released: nobody holds it now
            fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
        self.fd = -1

    def _heartbeat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            with contextlib.suppress(OSError):
                os.utime(self.run_dir / LOCK_NAME)


_claims: dict[Path, _Claim] = {}
_claims_lock = threading.Lock()


def _flock(fd: int) -> bool | None:
    """``True``: locked; ``False``: held by another process; ``None``: no flock here."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError:  # ENOLCK, EOPNOTSUPP: the heartbeat alone decides
        return None
    return True


def _busy(run_dir: Path, current: Holder) -> RunBusyError:
    return RunBusyError(
        f"{run_dir} is being written by {current.describe()}: a run directory has one writer "
        f"at a time. Fix: wait for it to finish, stop it (kill {current.pid} on {current.host}), "
        "or use another directory"
    )


def _summary(run_dir: Path) -> str:
    try:
        record = RunRecord.read(run_dir)
    except Exception:
        return "its run.json cannot be read"
    return f"{record.status}, started {record.started_at}"


def _record(who: Holder) -> dict[str, Any]:
    data = asdict(who)
    data.pop("heartbeat")
    return data


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _stamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d_%H-%M-%S")
