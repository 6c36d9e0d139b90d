"""``run.json``: the machine-readable record of one run, kept inside its run directory.

The record is written when the run starts (``status: running``) and rewritten when it ends
(``completed``, ``failed`` with the error, or ``pruned``), always atomically, so a reader never
sees half a file. A resumed run keeps its record and appends to ``resumes``. It holds what is
needed to trust and reproduce a result: seed, overrides, code version (git commit and dirty flag)
and library versions.

:meth:`RunRecord.read` is the one reader of ``run.json`` (the library, ``lightning-args`` and
:func:`~lightning_args.load_run` all go through it). A record written by a newer version, with
keys this one does not know, is read: they are kept in :attr:`RunRecord.unknown` and written
back unchanged when the record is rewritten; a key this version has but the file lacks (an older
version's record) takes its default.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
import sys
from dataclasses import MISSING, asdict, dataclass, field, fields
from datetime import datetime, timezone
from enum import Enum
from importlib import metadata
from pathlib import Path
from typing import Any

from lightning_args._util.atomic import atomic_write
from lightning_args.errors import RecordError, UsageError

RECORD_NAME = "run.json"


class RunStatus(str, Enum):
    """``run.json``'s ``status``: one word for each state a run can be in."""

    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    PRUNED = "pruned"
    #: Preempted, waiting for its requeued job to come back.
    REQUEUED = "requeued"
    #: Recorded as running, but its writer is gone (readers say so; see ownership.py).
    INTERRUPTED = "interrupted"
    #: ``run.json`` cannot be read (readers say so; nothing writes it).
    BROKEN = "broken"

    def __str__(self) -> str:
        return self.value


class Phase(str, Enum):
    """The parts of a run that ``run.json``'s ``timings`` time, in the order they happen."""

    BUILD = "build"  # module, DataModule, Trainer and callbacks from the config
    FIT = "fit"  # training and validation, checkpoint writes included
    CHECKPOINTS = "checkpoints"  # writing checkpoints, within fit
    TEST = "test"  # the test pass on the best checkpoint


VERSIONED_PACKAGES = ("lightning-args", "torch", "lightning", "hydra-core", "omegaconf", "optuna")


@dataclass
class GitInfo:
    """The commit the code was at, and whether tracked files had uncommitted changes."""

    commit: str
    dirty: bool


@dataclass
class RunRecord:
    """What ``run.json`` holds. Times are ISO 8601 in UTC; metrics are plain floats."""

    id: str
    status: str = RunStatus.RUNNING
    started_at: str = ""
    ended_at: str | None = None
    duration_s: float | None = None
    seed: int | None = None
    overrides: list[str] = field(default_factory=list)
    objective: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    checkpoints: dict[str, str | None] = field(default_factory=dict)
    error: dict[str, str] | None = None
    git: GitInfo | None = None
    versions: dict[str, str | None] = field(default_factory=dict)
    command: list[str] = field(default_factory=list)
    host: str = ""
    pid: int = 0
    #: torch's CPU kernels (``AVX2``, ``AVX512``...: :func:`cpu_kernels`) in the last attempt;
    #: two kernel sets can differ in a float's last digits.
    cpu_kernels: str | None = None
    #: One entry per continuation: when, from which checkpoint, the status it had, the command.
    resumes: list[dict[str, Any]] = field(default_factory=list)
    #: Seconds the last attempt spent in each :class:`Phase` (``fit`` includes ``checkpoints``).
    timings: dict[str, float] = field(default_factory=dict)
    #: A k-fold run's folds (:func:`lightning_args.run.kfold.aggregate`): each fold's run,
    #: status, objective and metrics, and their mean, std and standard error; empty otherwise.
    cv: dict[str, Any] = field(default_factory=dict)
    #: A forked run's lineage (:func:`lightning_args.fork`): the parent run, the checkpoint,
    #: epoch and step it started from, and the changed keys; empty otherwise.
    fork: dict[str, Any] = field(default_factory=dict)
    #: Keys of ``run.json`` that this version does not know (a newer one wrote them), as read;
    #: written back after the known ones.
    unknown: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def start(
        cls, run_dir: Path, *, seed: int | None, overrides: list[str], code_dir: Path
    ) -> RunRecord:
        """Create the record of a run that starts now and write it."""
        record = cls(
            id=run_dir.name,
            started_at=_now(),
            seed=seed,
            overrides=list(overrides),
            git=git_info(code_dir),
            versions=package_versions(),
            command=[sys.executable, *sys.argv],
            host=socket.gethostname(),
            pid=os.getpid(),
        )
        record.write(run_dir)
        return record

    def resume(self, run_dir: Path, *, checkpoint: str, overrides: list[str]) -> None:
        """Mark the run running again (same record, same start time) and note the resumption."""
        self.resumes.append(
            {
                "at": _now(),
                "checkpoint": checkpoint,
                "previous_status": self.status,
                "overrides": list(overrides),
                "command": [sys.executable, *sys.argv],
            }
        )
        self.status, self.ended_at, self.duration_s = RunStatus.RUNNING, None, None
        self.error = None
        self.host, self.pid = socket.gethostname(), os.getpid()
        self.write(run_dir)

    def finish(self, run_dir: Path, status: RunStatus, error: BaseException | None = None) -> None:
        """Stamp the end time and final status, and write the record."""
        self.status = status
        self.ended_at = _now()
        self.duration_s = round(
            (
                datetime.fromisoformat(self.ended_at) - datetime.fromisoformat(self.started_at)
            ).total_seconds(),
            3,
        )
        if error is not None:
            self.error = {"type": type(error).__name__, "message": str(error)}
        self.cpu_kernels = cpu_kernels() or self.cpu_kernels
        self.write(run_dir)

    def to_dict(self) -> dict[str, Any]:
        """What ``run.json`` holds: the known keys in order, then the unknown ones."""
        data = asdict(self)
        unknown = data.pop("unknown")
        return {**data, **unknown}

    def write(self, run_dir: Path) -> None:
        """Write ``run.json`` atomically (a temporary file, then a rename)."""
        atomic_write(run_dir / RECORD_NAME, json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def read(cls, run_dir: Path) -> RunRecord:
        """Read the record of ``run_dir``; :class:`RecordError` names it when it is broken.

        Keys this version does not know are kept in :attr:`unknown` (inside ``git`` they are
        dropped); a known key of the wrong shape (``metrics`` not a mapping...) is refused.
        """
        data = read_record(run_dir)
        known = _fields(cls) - {"unknown"}
        unknown = {key: data.pop(key) for key in list(data) if key not in known}
        git = data.pop("git", None)
        wrong = [
            key for key, kind in _SHAPES.items() if key in data and not isinstance(data[key], kind)
        ]
        if wrong or not isinstance(git, dict | None):
            found = ", ".join(f"{k} is a {type(data[k]).__name__}" for k in wrong) or (
                f"git is a {type(git).__name__}"
            )
            raise _broken(run_dir, f"its fields are not a run record's ({found})")
        try:
            commit = {k: v for k, v in git.items() if k in _fields(GitInfo)} if git else None
            return cls(**data, git=GitInfo(**commit) if commit else None, unknown=unknown)
        except TypeError as error:
            raise _broken(run_dir, f"its fields are not a run record's ({error})") from None


def _fields(kind: type) -> set[str]:
    return {f.name for f in fields(kind)}


#: The record's keys that hold a list or a mapping, and which.
_SHAPES: dict[str, type] = {
    f.name: f.default_factory  # type: ignore[misc]
    for f in fields(RunRecord)
    if f.default_factory is not MISSING and f.name != "unknown"
}


def read_record(run_dir: Path) -> dict[str, Any]:
    """``run_dir``'s ``run.json`` as plain data; :class:`RecordError` if it is not JSON."""
    try:
        data = json.loads((run_dir / RECORD_NAME).read_text())
    except json.JSONDecodeError as error:
        raise _broken(run_dir, f"it is truncated or not JSON ({error})") from None
    except UnicodeDecodeError:
        raise _broken(run_dir, "it is not text") from None
    if not isinstance(data, dict):
        raise _broken(run_dir, f"it holds a {type(data).__name__}, not a record")
    return data


def _broken(run_dir: Path, why: str) -> RecordError:
    return RecordError(
        f"{run_dir / RECORD_NAME} cannot be read: {why}. Its checkpoints and metrics.csv are "
        "untouched. Fix: restore run.json from a copy, or delete the run directory if the run "
        "is not needed"
    )


def process_alive(pid: object) -> bool:
    """Whether process ``pid`` exists on this machine (records name the host that ran them)."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def git_info(directory: Path) -> GitInfo | None:
    """The git commit of ``directory`` and whether tracked files differ from it; ``None`` when
    ``directory`` is not in a git work tree (or git is not installed)."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(directory), *args],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return None
    return GitInfo(commit=commit, dirty=dirty)


def cpu_kernels() -> str | None:
    """The CPU kernels torch dispatches to here (``AVX2``, ``AVX512``, ``DEFAULT``...), or
    ``None`` when this process has not imported torch (the record never imports it).

    torch picks the widest vector instructions the CPU has, unless ``ATEN_CPU_CAPABILITY``
    (``avx2``, ``avx512``, ``default``) says otherwise; a float sum can differ in its last
    digits between two kernel sets, so an exact reproduction needs the same ones.

    >>> cpu_kernels() in {None, "DEFAULT", "AVX2", "AVX512", "ZVECTOR", "VSX", "SVE256"}
    True
    """
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    return str(torch.backends.cpu.get_cpu_capability())


def package_versions() -> dict[str, str | None]:
    """Installed versions of the packages a result depends on, read without importing them."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in VERSIONED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def record_of(root: Path) -> RunRecord:
    """The record of the run in ``root``; refuses a directory without one, or a live run."""
    if not (root / RECORD_NAME).is_file():
        raise UsageError(
            f"{str(root)!r} is not a run directory: it has no {RECORD_NAME}. "
            "Fix: `lightning-args runs` lists them"
        )
    record = RunRecord.read(root)
    here = record.host == socket.gethostname()
    if record.status == RunStatus.RUNNING and here and process_alive(record.pid):
        raise UsageError(
            f"{root.name} is still running (pid {record.pid}): two processes must not train in "
            "one directory. Fix: wait for it, or stop it first"
        )
    return record
