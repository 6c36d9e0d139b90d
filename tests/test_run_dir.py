"""One directory per run: unique names, and a run record that tells the whole story."""

from __future__ import annotations

import json
import multiprocessing
import subprocess
from multiprocessing.synchronize import Event
from pathlib import Path

import pytest

from lightning_args import RunRecord
from lightning_args.record import git_info, package_versions
from lightning_args.store import unique_dir


def _claim(path: str, results: multiprocessing.Queue[str], start: Event) -> None:
    start.wait()
    results.put(unique_dir(path))


def test_runs_started_in_the_same_second_get_their_own_directory(tmp_path: Path) -> None:
    """Eight processes (eight runs) ask for the same timestamped name at once."""
    base = str(tmp_path / "runs" / "2026-01-01_00-00-00")
    results: multiprocessing.Queue[str] = multiprocessing.Queue()
    start = multiprocessing.Event()
    procs = [multiprocessing.Process(target=_claim, args=(base, results, start)) for _ in range(8)]
    for proc in procs:
        proc.start()
    start.set()
    for proc in procs:
        proc.join(timeout=30)
    claimed = [results.get(timeout=5) for _ in procs]
    assert len(set(claimed)) == 8
    assert all(Path(p).is_dir() for p in claimed)
    assert sorted(Path(p).name for p in claimed)[0] == "2026-01-01_00-00-00"


def test_one_process_resolves_the_same_directory_every_time(tmp_path: Path) -> None:
    base = str(tmp_path / "runs" / "x")
    assert unique_dir(base) == unique_dir(base) == base


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def test_git_info_reads_commit_and_dirty_flag(tmp_path: Path) -> None:
    assert git_info(tmp_path) is None
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "config", "user.email", "t@t")
    _git(tmp_path, "config", "user.name", "t")
    (tmp_path / "train.py").write_text("print(1)\n")
    _git(tmp_path, "add", "train.py")
    _git(tmp_path, "commit", "-qm", "x")
    clean = git_info(tmp_path)
    assert clean is not None
    assert len(clean.commit) == 40
    assert not clean.dirty
    (tmp_path / "notes.txt").write_text("untracked files do not make the code dirty\n")
    assert git_info(tmp_path) == clean
    (tmp_path / "train.py").write_text("print(2)\n")
    dirty = git_info(tmp_path)
    assert dirty is not None
    assert dirty.dirty


def test_record_round_trip_and_failure(tmp_path: Path) -> None:
    record = RunRecord.start(tmp_path, seed=7, overrides=["model=cnn"], code_dir=tmp_path)
    assert json.loads((tmp_path / "run.json").read_text())["status"] == "running"
    record.finish(tmp_path, "failed", ValueError("boom"))

    back = RunRecord.read(tmp_path)
    assert back.status == "failed"
    assert back.error == {"type": "ValueError", "message": "boom"}
    assert back.seed == 7
    assert back.overrides == ["model=cnn"]
    assert back.duration_s is not None
    assert back.duration_s >= 0
    assert not list(tmp_path.glob(".run.json.*"))  # no temporary file left behind


@pytest.mark.parametrize("name", ["torch", "lightning", "hydra-core", "optuna", "omegaconf"])
def test_versions_are_read_without_importing(name: str) -> None:
    assert package_versions()[name]
