"""Faults in the middle of writing (#24), by feature:

- writes that fail cleanly: both atomic writers (``atomic_write``, ``AtomicCheckpointIO``)
  remove their temporary file on any failure, and a full disk is one ``DiskFullError``;
- torn files: a study journal or a ``metrics.csv`` whose last record a crash cut short.

Failures are injected (a patched ``os.replace`` / ``torch.save``) or real: a tiny tmpfs, which
needs root (``root`` marker; skipped otherwise).
"""

from __future__ import annotations

import errno
import hashlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

import lightning_args
from lightning_args.atomic import atomic_write, disk_full_message, write_error
from lightning_args.checkpoint import AtomicCheckpointIO
from lightning_args.errors import DiskFullError
from tests.conftest import run_app

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
    (tmpfs / "filler").unlink()
    after = digest(tmpfs)
    assert {k: after[k] for k in before} == before
