"""A run directory has one owner (#23): no silent overwrite, never two writers.

The concurrent cases start their processes through :data:`SYNCED`, which does the slow imports
first and then waits for the start signal that both get at once (``run_together``), so that
both reach the run directory together. Its
``NO_CLAIM=1`` removes the guard (the control): the same test then sees both writing.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

import lightning_args
from lightning_args import RunBusyError, RunExistsError
from lightning_args.run.ownership import LOCK_NAME, acquire, check_reuse, claimed, holder
from tests.helpers import READY, REPO, read_record, run_app, run_together
from tests.test_resume import cli, kill_after_saves

SYNCED = (
    """
import contextlib, os, runpy, sys
import lightning.pytorch, torch, lightning_args.run.app, lightning_args.cli  # the slow part first
if os.environ.get("NO_CLAIM"):  # the control: the same run without its guard
    import lightning_args.run.app as app, lightning_args.run.ownership as own
    class Free:
        def release(self): pass
    own.acquire = lambda run_dir: Free()
    own.check_reuse = app.check_reuse = lambda *args, **kwargs: None
    app.claimed = lambda run_dir: contextlib.nullcontext()
    import lightning_args.run.resume as resume
    resume.claimed = app.claimed
"""
    + READY
    + """
what, sys.argv = sys.argv[1], sys.argv[1:]
if what.startswith("lightning_args"):
    runpy.run_module(what, run_name="__main__")
else:
    runpy.run_path(what, run_name="__main__")
"""
)


def synced(
    *commands: list[str], cwd: Path, guard: bool = True
) -> list[subprocess.CompletedProcess[str]]:
    """Run ``commands`` (each ``[script or module, args...]``) so that they start together."""
    env = {} if guard else {"NO_CLAIM": "1"}
    return run_together(SYNCED, *commands, cwd=cwd, env=env, timeout=300)


def digest(run: Path) -> dict[str, str]:
    """Every file of ``run`` and the hash of its bytes."""
    return {
        str(p.relative_to(run)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(run.rglob("*"))
        if p.is_file()
    }


def duplicated_steps(run: Path) -> list[tuple[str, str]]:
    with (run / "metrics.csv").open() as f:
        rows = [
            (r["epoch"], r["step"], tuple(k for k, v in r.items() if v)) for r in csv.DictReader(f)
        ]
    return [key[:2] for key, n in Counter(rows).items() if n > 1]


# -- in one process and its children: the claim itself ------------------------------------------


@pytest.mark.slow
def test_a_claim_is_exclusive_between_processes_and_reentrant_within_one(tmp_path: Path) -> None:
    run = tmp_path / "run"
    with claimed(run), claimed(run):  # the same process may enter again (train inside resume)
        who = holder(run)
        assert who is not None
        assert who.pid == os.getpid()
        assert who.alive
        other = subprocess.run(
            [
                sys.executable,
                "-c",
                "import pathlib, sys; from lightning_args.run.ownership import acquire; "
                "acquire(pathlib.Path(sys.argv[1]))",
                str(run),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert other.returncode == 1
        assert f"is being written by pid {os.getpid()} on {socket.gethostname()}" in other.stderr
    assert holder(run) is None  # released: the file stays, empty
    acquire(run).release()  # and free for the next writer


def _stale(run: Path, *, host: str, pid: int, age_s: float, job: str | None = None) -> None:
    run.mkdir(parents=True, exist_ok=True)
    lock = run / LOCK_NAME
    lock.write_text(
        json.dumps({"host": host, "pid": pid, "since": "2026-01-01T00:00:00+00:00", "job": job})
    )
    then = time.time() - age_s
    os.utime(lock, (then, then))


@pytest.mark.parametrize(
    ("host", "pid", "age_s", "job", "taken"),
    [
        ("here", 2**22 + 7, 0.0, None, True),  # a dead process on this machine: taken at once
        ("other-host", 4242, 10.0, None, False),  # another machine, heartbeat 10 s ago: alive
        ("other-host", 4242, 3600.0, None, True),  # another machine, silent for an hour: stale
        ("other-host", 4242, 10.0, "777", True),  # this very Slurm job, requeued elsewhere
    ],
    ids=["dead-here", "alive-elsewhere", "stale-elsewhere", "requeued-slurm-job"],
)
def test_a_claim_left_behind_is_taken_over_only_when_its_holder_is_gone(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    host: str,
    pid: int,
    age_s: float,
    job: str | None,
    taken: bool,
) -> None:
    monkeypatch.setenv("SLURM_JOB_ID", "777")
    run = tmp_path / "run"
    _stale(
        run, host=socket.gethostname() if host == "here" else host, pid=pid, age_s=age_s, job=job
    )
    if taken:
        acquire(run).release()
    else:
        with pytest.raises(
            RunBusyError, match=r"pid 4242 on other-host, since .* \(heartbeat 10 s ago\)"
        ):
            acquire(run)


def test_without_flock_a_live_holder_here_still_refuses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a file system without ``flock`` the record decides: a live process keeps its claim."""
    import lightning_args.run.ownership as ownership

    monkeypatch.setattr(ownership, "_flock", lambda fd: None)
    run = tmp_path / "run"
    _stale(run, host=socket.gethostname(), pid=os.getppid(), age_s=0.0)  # alive: our parent
    with pytest.raises(RunBusyError):
        acquire(run)
    _stale(run, host=socket.gethostname(), pid=2**22 + 7, age_s=0.0)
    acquire(run).release()


def test_an_earlier_run_is_refused_or_moved_aside_never_replaced(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text(
        json.dumps({"id": "run", "status": "completed", "started_at": "t"})
    )
    with pytest.raises(RunExistsError, match=r"lightning-args resume .*overwrite=true"):
        check_reuse(run, continuing=False, overwrite=False)
    check_reuse(run, continuing=True, overwrite=False)  # continued on purpose
    check_reuse(run, continuing=False, overwrite=True)
    (aside,) = tmp_path.glob("run.replaced-*")
    assert json.loads((aside / "run.json").read_text())["status"] == "completed"
    assert run.is_dir()
    assert not list(run.iterdir())


# -- end to end ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_second_training_into_a_used_directory_is_refused_and_the_first_is_intact(
    tmp_path: Path,
) -> None:
    first = run_app("trainer=debug", "hydra.run.dir=runs/a", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    before = digest(tmp_path / "runs" / "a")

    second = run_app(
        "trainer=debug", "trainer.max_epochs=3", "model=cnn", "hydra.run.dir=runs/a", cwd=tmp_path
    )
    assert second.returncode == 1
    assert "runs/a already holds a run (completed" in second.stderr
    assert "lightning-args resume runs/a" in second.stderr
    assert "overwrite=true" in second.stderr
    assert "Traceback" not in second.stderr
    assert digest(tmp_path / "runs" / "a") == before  # byte for byte, .hydra/ and the log too

    third = run_app(
        "trainer=debug", "model=cnn", "hydra.run.dir=runs/a", "overwrite=true", cwd=tmp_path
    )
    assert third.returncode == 0, third.stderr
    (aside,) = (tmp_path / "runs").glob("a.replaced-*")
    assert digest(aside) == before
    assert "model=cnn" in read_record(tmp_path / "runs" / "a")["overrides"]


@pytest.mark.slow
@pytest.mark.parametrize("guard", [True, False], ids=["guarded", "control-without-guard"])
def test_two_trainings_started_together_into_one_new_directory(tmp_path: Path, guard: bool) -> None:
    train = [
        str(REPO / "train.py"),
        "trainer=debug",
        "trainer.max_epochs=4",
        "hydra.run.dir=runs/new",
    ]
    results = synced(train, train, cwd=tmp_path, guard=guard)
    codes = sorted(r.returncode for r in results)
    run = tmp_path / "runs" / "new"
    if guard:
        assert codes == [0, 1], [r.stderr[-2000:] for r in results]
        refused = next(r for r in results if r.returncode == 1)
        assert "runs/new is being written by pid" in refused.stderr
        assert "Traceback" not in refused.stderr
        assert not duplicated_steps(run)
        assert completed_in(run) == 1
    else:
        for r in results:  # shown when it fails: pytest cuts a long assertion message short
            print(f"exit {r.returncode}:\n{r.stderr[-4000:]}")
        # Without the guard nothing refuses the second writer, and the guarded outcome never
        # happens: both train in the same directory (its log says so twice; their metrics rows
        # are duplicated or overwrite each other, depending on timing), or one or both fail on
        # the other's half-written files (both seen in CI: the two CSV writers rewrote the
        # metrics file under each other, "dict contains fields not in fieldnames").
        assert not any("is being written by pid" in r.stderr for r in results)
        if codes == [0, 0]:
            assert completed_in(run) == 2
        else:
            failed = [r for r in results if r.returncode != 0]
            assert all("the run failed" in r.stderr for r in failed)


def completed_in(run: Path) -> int:
    """How many trainings ended in ``run``, by its log (each process appends to it)."""
    return (run / "train.log").read_text().count("Run completed")


@pytest.mark.slow
def test_a_killed_run_is_resumed_by_exactly_one_of_two_resumes(tmp_path: Path) -> None:
    run = tmp_path / "killed"
    kill_after_saves(run, saves=2)  # SIGKILL: its claim is left behind, its holder dead
    left = holder(run)
    assert left is not None
    assert not left.alive
    # Its record still says running; every reader says interrupted (#24).
    assert read_record(run)["status"] == "running"
    assert lightning_args.load_run(run, checkpoint="last").record.status == "interrupted"
    listed = cli("runs", str(tmp_path), "--format", "json")
    assert json.loads(listed.stdout)[0]["status"] == "interrupted", listed.stderr
    assert f"lightning-args resume {run}" in cli("show", str(run)).stdout
    resume = ["lightning_args.cli", "resume", str(run), "trainer.max_epochs=12"]
    results = synced(resume, resume, cwd=tmp_path)
    assert sorted(r.returncode for r in results) == [0, 2], [r.stderr[-2000:] for r in results]
    refused = next(r for r in results if r.returncode == 2)
    assert f"{run} is being written by pid" in refused.stderr
    winner = next(r for r in results if r.returncode == 0)
    assert "taking over the claim" in winner.stderr
    record = read_record(run)
    assert record["status"] == "completed"
    assert len(record["resumes"]) == 1
    assert not duplicated_steps(run)
