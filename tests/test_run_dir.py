"""One directory per run: unique names, and a run record that tells the whole story."""

from __future__ import annotations

import json
import multiprocessing
import subprocess
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

import pytest

from lightning_args import RunRecord
from lightning_args.config.run_dirs import unique_dir
from lightning_args.errors import RecordError
from lightning_args.run.record import RunStatus, git_info, package_versions
from tests.conftest import REPO


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
    record.finish(tmp_path, RunStatus.FAILED, ValueError("boom"))

    back = RunRecord.read(tmp_path)
    assert back.status == "failed"
    assert back.error == {"type": "ValueError", "message": "boom"}
    assert back.seed == 7
    assert back.overrides == ["model=cnn"]
    assert back.duration_s is not None
    assert back.duration_s >= 0
    assert not list(tmp_path.glob(".run.json.*"))  # no temporary file left behind


def _written(run: Path, change: dict[str, Any], drop: tuple[str, ...] = ()) -> dict[str, Any]:
    """A record as this version writes it, then changed as another version would have it."""
    RunRecord.start(run, seed=7, overrides=["model=cnn"], code_dir=REPO)
    data = {k: v for k, v in json.loads((run / "run.json").read_text()).items() if k not in drop}
    data = {**data, **change}
    (run / "run.json").write_text(json.dumps(data))
    return data


@pytest.mark.parametrize(
    ("change", "drop", "unknown"),
    [
        # a newer version: keys this one does not know, at the top and inside git
        ({"queue": "gpu-long", "tags": ["a", "b"]}, (), {"queue": "gpu-long", "tags": ["a", "b"]}),
        ({"git": {"commit": "abc", "dirty": False, "branch": "main"}}, (), {}),
        ({"unknown": 1}, (), {"unknown": 1}),  # even a key named like the attribute
        # an older version: keys it did not have yet take their defaults
        ({}, ("resumes", "host", "pid", "command"), {}),
    ],
    ids=["newer keys", "newer git key", "key named unknown", "older record"],
)
def test_a_record_written_by_another_version_is_read_and_rewritten_whole(
    tmp_path: Path, change: dict[str, Any], drop: tuple[str, ...], unknown: dict[str, Any]
) -> None:
    _written(tmp_path, change, drop)
    record = RunRecord.read(tmp_path)
    assert (record.seed, record.overrides, record.unknown) == (7, ["model=cnn"], unknown)
    assert record.git is not None
    record.finish(tmp_path, RunStatus.COMPLETED)  # rewritten by this version: nothing lost
    rewritten = json.loads((tmp_path / "run.json").read_text())
    assert {k: rewritten[k] for k in unknown} == unknown
    assert rewritten["status"] == "completed"
    assert RunRecord.read(tmp_path).unknown == unknown


@pytest.mark.parametrize(
    ("change", "drop", "why"),
    [
        ({}, ("id",), "missing 1 required positional argument: 'id'"),
        ({"metrics": [0.5]}, (), "metrics is a list"),
        ({"overrides": "model=cnn"}, (), "overrides is a str"),
        ({"git": "abc"}, (), "git is a str"),
    ],
    ids=["no id", "metrics a list", "overrides a string", "git a string"],
)
def test_a_record_of_the_wrong_shape_is_one_record_error(
    tmp_path: Path, change: dict[str, Any], drop: tuple[str, ...], why: str
) -> None:
    _written(tmp_path, change, drop)
    with pytest.raises(RecordError, match="its fields are not a run record's") as raised:
        RunRecord.read(tmp_path)
    assert why in str(raised.value)


@pytest.mark.parametrize("name", ["torch", "lightning", "hydra-core", "optuna", "omegaconf"])
def test_versions_are_read_without_importing(name: str) -> None:
    assert package_versions()[name]


def test_lightning_args_reads_records_through_run_record(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``runs`` and ``show`` read run.json with RunRecord, so a newer version's record is listed
    and shown whole, and one of the wrong shape is listed as broken; ``--status`` offers every
    RunStatus, requeued included."""
    from lightning_args import cli

    newer, broken = tmp_path / "runs" / "a", tmp_path / "runs" / "b"
    for run in (newer, broken):
        run.mkdir(parents=True)
    _written(newer, {"status": "requeued", "queue": "gpu-long", "metrics": {"val/acc": 0.5}})
    _written(broken, {"metrics": [0.5]})
    (newer / ".hydra").mkdir()
    (newer / ".hydra" / "config.yaml").write_text("seed: 7\n")

    assert cli.main(["runs", str(tmp_path), "--format", "json", "--status", "requeued"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert (row["run"], row["status"], row["val/acc"]) == (str(newer), "requeued", 0.5)
    assert cli.main(["runs", str(tmp_path), "--format", "json", "--status", "broken"]) == 0
    listed = capsys.readouterr()
    assert [r["run"] for r in json.loads(listed.out)] == [str(broken)]
    assert "metrics is a list" in listed.err
    assert cli.main(["show", str(newer)]) == 0
    assert '"queue": "gpu-long"' in capsys.readouterr().out

    with pytest.raises(SystemExit):
        cli.parser().parse_args(["runs", "--status", "nope"])
    offered = capsys.readouterr().err.split("choose from")[1]
    assert [s.value for s in RunStatus if s.value in offered] == [s.value for s in RunStatus]


@pytest.mark.parametrize(
    "module",
    [
        "run/app",
        "run/resume",
        "run/reproduce",
        "run/load",
        "run/ownership",
        "callbacks/requeue",
        "callbacks/interrupt",
        "cli/__init__",
    ],
)
def test_run_statuses_are_spelled_only_by_run_status(module: str) -> None:
    """No ``"completed"`` or ``"requeued"`` in the modules that write or read statuses: each
    says ``RunStatus.X`` (docstrings and messages may use the words in sentences)."""
    import ast

    source = (REPO / "lightning_args" / f"{module}.py").read_text()
    statuses = {s.value for s in RunStatus}
    literals = [
        (node.lineno, node.value)
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Constant) and node.value in statuses
    ]
    assert literals == []
