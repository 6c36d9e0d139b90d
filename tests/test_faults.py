"""Faults in the middle of writing (#24), by feature:

- writes that fail cleanly: both atomic writers (``atomic_write``, ``AtomicCheckpointIO``)
  remove their temporary file on any failure, and a full disk is one ``DiskFullError``;
- torn files: a study journal or a ``metrics.csv`` whose last record a crash cut short.

Failures are injected (a patched ``os.replace`` / ``torch.save``) or real: a tiny tmpfs, which
needs root (``root`` marker; skipped otherwise).
"""

from __future__ import annotations

import csv
import errno
import hashlib
import logging
import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest
import torch
from optuna.storages.journal import JournalFileOpenLock

import lightning_args
from lightning_args._util.atomic import atomic_write, disk_full_message, write_error
from lightning_args.errors import DiskFullError, StorageError
from lightning_args.loggers import trim_metrics
from lightning_args.run.checkpoint import AtomicCheckpointIO
from lightning_args.sweep.journal import repair_journal
from lightning_args.sweep.storage import open_storage
from tests.helpers import REPO, cli, read_record, run_app
from tests.test_sweeper import make_app, summary, sweep

optuna.logging.set_verbosity(optuna.logging.WARNING)

NO_SPACE = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def leftovers(root: Path) -> list[Path]:
    """Temporary files of the atomic writers under ``root``."""
    return sorted(root.rglob("*.tmp"))


def digest(root: Path) -> dict[str, str]:
    """Every file under ``root`` and a hash of its bytes."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 600 KiB tmpfs, mounted for the test (root only)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tiny tmpfs needs root (run as root to test a real full disk)")
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def fill(mount: Path, leave: int) -> None:
    """Fill the file system at ``mount`` until about ``leave`` bytes are free."""
    free = os.statvfs(mount).f_bavail * os.statvfs(mount).f_frsize
    (mount / "filler").write_bytes(b"\0" * max(0, free - leave))


# --- writes that fail cleanly -----------------------------------------------------------------


def test_the_error_is_a_project_error_and_an_oserror() -> None:
    assert issubclass(lightning_args.DiskFullError, lightning_args.LightningArgsError)
    assert issubclass(DiskFullError, OSError)
    error = write_error(NO_SPACE, Path("/x/run.json"))
    assert isinstance(error, DiskFullError)
    assert error.errno == errno.ENOSPC
    message = str(error)
    assert message.startswith("No space left on device while writing /x/run.json: ")
    assert "the file system mounted at / has " in message
    assert " free of " in message
    assert "paths.output_root=" in message
    assert "hydra.run.dir=" in message


def test_a_quota_is_named_as_a_quota() -> None:
    message = disk_full_message(Path("/x/run.json"), errno.EDQUOT)
    assert message.startswith("Disk quota exceeded while writing /x/run.json: your quota")


def test_other_errors_pass_unchanged() -> None:
    error = OSError(errno.EACCES, "Permission denied")
    assert write_error(error, Path("/x")) is error


def test_atomic_write_out_of_space_leaves_no_temporary_file_and_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "run.json"
    target.write_text("before")

    def full(src: Any, dst: Any) -> None:
        raise NO_SPACE

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(DiskFullError, match=f"while writing {target}: "):
        atomic_write(target, "after")
    assert leftovers(tmp_path) == []
    assert target.read_text() == "before"


def test_atomic_write_interrupted_leaves_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(fd: int) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic_write(tmp_path / "run.json", "after")
    assert leftovers(tmp_path) == []
    assert not (tmp_path / "run.json").exists()


def torch_out_of_space(obj: Any, f: Any, *args: Any, **kwargs: Any) -> None:
    """What ``torch.save`` does on a full disk: part of the file, then a ``RuntimeError``
    ("unexpected pos ...") raised while handling the ``OSError``."""
    f.write(b"PK" + b"\0" * 4096)
    try:
        raise NO_SPACE
    except OSError:
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos") from None


def test_checkpoint_out_of_space_leaves_no_temporary_file_and_the_old_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "checkpoints" / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint({"epoch": 1}, target)
    before = target.read_bytes()
    monkeypatch.setattr(torch, "save", torch_out_of_space)
    with pytest.raises(DiskFullError, match=f"while writing {target}: "):
        AtomicCheckpointIO().save_checkpoint({"epoch": 2}, target)
    assert leftovers(tmp_path) == []
    assert target.read_bytes() == before


def test_checkpoint_interrupted_leaves_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(obj: Any, f: Any, *args: Any, **kwargs: Any) -> None:
        f.write(b"PK" + b"\0" * 4096)
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        AtomicCheckpointIO().save_checkpoint({"epoch": 2}, tmp_path / "last.ckpt")
    assert leftovers(tmp_path) == []


@pytest.mark.root
def test_both_writers_on_a_full_tmpfs(tmpfs: Path) -> None:
    record, ckpt = tmpfs / "run.json", tmpfs / "last.ckpt"
    atomic_write(record, "before")
    AtomicCheckpointIO().save_checkpoint({"w": torch.zeros(10)}, ckpt)
    before = digest(tmpfs)
    fill(tmpfs, leave=16 * 1024)
    with pytest.raises(DiskFullError, match=f"while writing {record}: the file system mounted"):
        atomic_write(record, b"x" * 100_000)
    with pytest.raises(DiskFullError, match=f"while writing {ckpt}: the file system mounted"):
        AtomicCheckpointIO().save_checkpoint({"w": torch.zeros(25_000)}, ckpt)
    assert leftovers(tmpfs) == []
    (tmpfs / "filler").unlink()
    assert digest(tmpfs) == before


@pytest.mark.root
@pytest.mark.slow
def test_a_run_on_a_full_disk_fails_with_one_message(tmpfs: Path, tmp_path: Path) -> None:
    earlier = tmpfs / "runs" / "earlier"
    earlier.mkdir(parents=True)
    atomic_write(earlier / "run.json", '{"status": "completed"}\n')
    AtomicCheckpointIO().save_checkpoint({"w": torch.zeros(1000)}, earlier / "last.ckpt")
    before = digest(tmpfs)
    fill(tmpfs, leave=150 * 1024)  # room for the run's first files, not for its checkpoints
    result = run_app(
        f"paths.output_root={tmpfs}",
        "trainer.max_epochs=3",
        cwd=tmp_path,
        env={"LIGHTNING_ARGS_CACHE": str(tmp_path / "cache")},
    )
    assert result.returncode != 0
    assert "No space left on device while writing " in result.stderr, result.stderr[-3000:]
    assert f"the file system mounted at {tmpfs} has " in result.stderr
    assert "Fix: free space" in result.stderr
    assert "paths.output_root=" in result.stderr
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert leftovers(tmpfs) == []
    # The failed write's space came back, so the record could say how the run ended.
    (run,) = [p for p in (tmpfs / "runs").iterdir() if p != earlier]
    record = read_record(run)
    assert record["status"] in {"failed", "interrupted"}
    assert record["error"]["type"] == "DiskFullError"
    (tmpfs / "filler").unlink()
    after = digest(tmpfs)
    assert {k: after[k] for k in before} == before


# --- torn files: the study journal ------------------------------------------------------------


def tiny_study(path: Path, trials: int = 3) -> bytes:
    """A journal at ``path`` holding a study of ``trials`` finished trials; its bytes."""
    storage = open_storage(str(path))
    study = optuna.create_study(study_name="s", storage=storage)
    for i in range(trials):
        trial = study.ask()
        study.tell(trial, trial.suggest_float("x", 0, 1) + i)
    return path.read_bytes()


def finished(path: Path) -> int:
    study = optuna.load_study(study_name="s", storage=open_storage(str(path)))
    return len(study.get_trials(states=[optuna.trial.TrialState.COMPLETE]))


@pytest.mark.parametrize(
    "tear",
    [
        pytest.param(lambda last: last[:-37], id="cut-without-line-end"),
        pytest.param(lambda last: last[:20] + b"\n", id="cut-with-line-end"),
        pytest.param(lambda last: b"\0" * len(last), id="zeros"),
    ],
)
def test_a_torn_last_record_is_dropped_with_a_copy_and_a_warning(
    tmp_path: Path, tear: Any, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "study.journal"
    whole = tiny_study(path)
    start = whole.rstrip(b"\n").rfind(b"\n") + 1
    torn = whole[:start] + tear(whole[start:])
    path.write_bytes(torn)
    with caplog.at_level(logging.WARNING):
        storage = open_storage(str(path))
    assert path.read_bytes() == whole[:start]  # the records before it, as they were
    (backup,) = tmp_path.glob("study.journal.torn-*")
    assert backup.read_bytes() == torn
    (warning,) = [r.getMessage() for r in caplog.records if "Repaired" in r.getMessage()]
    assert f"Repaired the study journal {path}: its last record was torn" in warning
    assert f"dropped 1 record ({len(torn) - start} bytes)" in warning
    assert str(backup) in warning
    # The dropped record was the last trial's result: that trial reads as running, the rest
    # are intact, and the study takes new records.
    study = optuna.load_study(study_name="s", storage=storage)
    assert [t.state.name for t in study.get_trials()] == ["COMPLETE", "COMPLETE", "RUNNING"]
    study.tell(study.ask(), 0.5)
    assert finished(path) == 3


def test_a_whole_journal_is_left_alone_without_taking_its_lock(tmp_path: Path) -> None:
    path = tmp_path / "study.journal"
    whole = tiny_study(path)
    lock = JournalFileOpenLock(str(path))
    lock.acquire()  # held by "another sweeper": a whole journal does not wait for it
    try:
        assert repair_journal(path) is None
    finally:
        lock.release()
    assert path.read_bytes() == whole
    assert list(tmp_path.glob("*.torn-*")) == []


def test_a_record_being_appended_is_waited_for_not_mistaken_for_a_torn_one(
    tmp_path: Path,
) -> None:
    path = tmp_path / "study.journal"
    whole = tiny_study(path)
    record = b'{"op_code":0,"worker_id":"w","study_name":"t","directions":[1]}\n'
    lock = JournalFileOpenLock(str(path))
    lock.acquire()  # a writer in the middle of its append: half of its record is on disk
    with path.open("ab") as file:
        file.write(record[:20])
    result: list[Path | None] = []
    repair = threading.Thread(target=lambda: result.append(repair_journal(path)))
    repair.start()
    repair.join(timeout=0.5)
    assert repair.is_alive()  # waiting for the lock
    with path.open("ab") as file:
        file.write(record[20:])
    lock.release()
    repair.join(timeout=10)
    assert result == [None]
    assert path.read_bytes() == whole + record
    assert list(tmp_path.glob("*.torn-*")) == []


@pytest.mark.parametrize("tail", ["whole", "torn"], ids=["whole-tail", "torn-tail"])
def test_a_corrupt_line_in_the_middle_is_refused_with_one_message(
    tmp_path: Path, tail: str
) -> None:
    path = tmp_path / "study.journal"
    lines = tiny_study(path).splitlines(keepends=True)
    lines[3] = lines[3][:25] + b"\n"  # what appending after a torn record leaves
    if tail == "torn":
        lines[-1] = lines[-1][:-10]
    damaged = b"".join(lines)
    path.write_bytes(damaged)
    with pytest.raises(StorageError) as refused:
        open_storage(str(path))
    message = str(refused.value)
    assert message.startswith(
        f"The study journal {path} is damaged: line 4 of {len(lines)} is not a complete record"
    )
    assert "Fix: restore the journal from a copy" in message
    assert "hydra.sweeper.study_name=<new name>" in message
    assert path.read_bytes() == damaged  # nothing is changed
    assert list(tmp_path.glob("*.torn-*")) == []


@pytest.mark.slow
def test_a_sweep_with_a_torn_journal_is_repaired_and_finishes_its_total(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    assert sweep(app, "hydra.sweeper.n_trials=3").returncode == 0
    journal = app / "sweep" / "study.journal"
    journal.write_bytes(journal.read_bytes()[:-37])  # a crash during the last append
    result = sweep(app, "hydra.sweeper.n_trials=5")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Repaired the study journal" in result.stdout + result.stderr
    assert summary(app)["trials"]["COMPLETE"] == 5
    assert len(list((app / "sweep").glob("study.journal.torn-*"))) == 1


# --- torn files: metrics.csv ------------------------------------------------------------------

METRICS = "epoch,step,val/acc\r\n0,9,0.5\r\n0,18,0.6\r\n1,27,0.7\r\n"


@pytest.mark.parametrize(
    "torn",
    [
        pytest.param("1,3", id="cut-in-a-field"),
        pytest.param("1,", id="cut-after-a-comma"),
        pytest.param("1,36\r\n", id="too-few-fields"),
    ],
)
def test_a_torn_last_row_of_metrics_is_dropped(
    tmp_path: Path, torn: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "metrics.csv"
    path.write_bytes((METRICS + torn).encode())
    with caplog.at_level(logging.WARNING):
        dropped = trim_metrics(path, step=30)
    assert path.read_bytes() == METRICS.encode()
    assert dropped == 1
    assert f"{path}: its last row was cut mid-line" in caplog.text


def test_metrics_with_a_torn_header_start_again(tmp_path: Path) -> None:
    path = tmp_path / "metrics.csv"
    path.write_text("epoch,st")
    assert trim_metrics(path, step=30) == 1
    assert not path.exists()  # the resumed run's logger writes a new one


def test_whole_rows_of_metrics_are_kept_and_trimmed_as_before(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "metrics.csv"
    path.write_bytes((METRICS + "1,36,0.8\r").encode())  # only the \n is missing
    with caplog.at_level(logging.WARNING):
        assert trim_metrics(path, step=27) == 2
    assert path.read_bytes() == b"epoch,step,val/acc\r\n0,9,0.5\r\n0,18,0.6\r\n"
    assert "cut mid-line" not in caplog.text


@pytest.mark.slow
def test_a_resumed_run_drops_a_torn_last_row_of_metrics(tmp_path: Path) -> None:
    run = tmp_path / "run"
    done = run_app("trainer.max_epochs=2", f"hydra.run.dir={run}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    metrics = run / "metrics.csv"
    text = metrics.read_bytes().decode()  # rows end with \r\n
    last = text.removesuffix("\r\n").rsplit("\r\n", 1)[1]
    header = text.split("\r\n")[0].split(",")
    step = header.index("step")
    # The last row cut one character into its step: a row that no real step logged.
    cut = len(",".join(last.split(",")[:step])) + 2
    metrics.write_bytes(text[: len(text) - len(last) - 2].encode() + last[:cut].encode())
    resumed = cli("resume", str(run), "trainer.max_epochs=3", cwd=REPO, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    log = resumed.stdout + resumed.stderr + (run / "train.log").read_text()
    assert "its last row was cut mid-line" in log
    with metrics.open(newline="") as file:
        rows = list(csv.DictReader(file))
    values = set(header) - {"epoch", "step"}
    assert all(any(row[k] for k in values) for row in rows), rows  # no row without a value
    validated = sorted(int(float(r["epoch"])) for r in rows if r["val/acc"])
    assert validated == [0, 1, 2]
