"""``lightning-args resume RUN``: a run killed mid-training ends as if nothing had happened."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests import helpers, preload
from tests.helpers import REPO, read_record, run_app, start_app

pytestmark = pytest.mark.slow

# Enough epochs after the third save that an idle machine (an epoch of the digits MLP takes
# ~30 ms) does not finish them before the signal is sent: with 6, both signal tests failed
# there, the run done at its last step.
EPOCHS = "trainer.max_epochs=20"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return helpers.cli(*args, cwd=REPO, timeout=300)


def signal_after_saves(
    run: Path, signum: int, saves: int
) -> preload.Forked | subprocess.Popen[bytes]:
    """Train in ``run`` and send ``signum`` once ``last.ckpt`` has been written ``saves`` times:
    somewhere in the next epoch. Returns the process, ended."""
    proc = start_app(
        EPOCHS,
        f"hydra.run.dir={run}",
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        # Below this test's priority: on a loaded machine, the polling below would otherwise
        # see the saves late, and signal a run that has already ended.
        nice=10,
    )
    last = run / "checkpoints" / "last.ckpt"
    seen: set[int] = set()
    deadline = time.time() + 240
    while len(seen) < saves and time.time() < deadline and proc.poll() is None:
        if last.exists():
            seen.add(last.stat().st_mtime_ns)
        time.sleep(0.005)
    time.sleep(0.1)  # into the next epoch
    assert proc.poll() is None, f"the run ended before it could be sent signal {signum}"
    proc.send_signal(signum)
    proc.wait(timeout=120)
    return proc


def kill_after_saves(run: Path, saves: int) -> None:
    """:func:`signal_after_saves` with SIGKILL: what a crash or power loss leaves."""
    proc = signal_after_saves(run, signal.SIGKILL, saves)
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"


def test_a_killed_run_resumes_in_its_directory_to_the_same_final_metrics(tmp_path: Path) -> None:
    full = run_app(EPOCHS, f"hydra.run.dir={tmp_path / 'full'}", cwd=tmp_path)
    assert full.returncode == 0, full.stderr
    expected = read_record(tmp_path / "full")

    run = tmp_path / "killed"
    kill_after_saves(run, saves=3)
    assert read_record(run)["status"] == "running"  # what a SIGKILL leaves

    resumed = cli("resume", str(run))
    assert resumed.returncode == 0, resumed.stderr
    record = read_record(run)
    assert record["status"] == "completed"
    assert record["metrics"] == expected["metrics"]  # exact: same weights, same draws
    assert record["objective"] == expected["objective"]
    assert record["started_at"] == json.loads((run / "run.json").read_text())["started_at"]
    (history,) = record["resumes"]
    assert history["previous_status"] == "running"
    assert history["checkpoint"] == "checkpoints/last.ckpt"
    assert not list(run.parent.glob("runs"))  # nothing went to a new run directory


def test_resume_may_extend_training_but_not_change_the_model(tmp_path: Path) -> None:
    done = run_app("trainer.max_epochs=2", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    moved = tmp_path / "moved"
    shutil.move(tmp_path / "run", moved)  # a run directory can be moved, then resumed
    before = (moved / "run.json").read_bytes()

    refused = cli("resume", str(moved), "model.encoder.hidden=[64]")
    assert refused.returncode == 2
    assert "'model.encoder.hidden' cannot change (only trainer.max_epochs" in refused.stderr
    assert "Fix: start a new run" in refused.stderr
    nothing = cli("resume", str(moved))
    assert nothing.returncode == 2
    assert "nothing to resume" in nothing.stderr
    assert "trainer.max_epochs=4" in nothing.stderr
    assert (moved / "run.json").read_bytes() == before  # refusals leave the run as it was

    extended = cli("resume", str(moved), "trainer.max_epochs=4")
    assert extended.returncode == 0, extended.stderr
    record = read_record(moved)
    assert record["status"] == "completed"
    assert len(record["resumes"]) == 1
    assert record["resumes"][0]["overrides"] == []
    lines = (moved / "metrics.csv").read_text().splitlines()
    header = lines[0].split(",")
    epoch, val = header.index("epoch"), header.index("val/acc")
    rows = [line.split(",") for line in lines[1:]]
    validated = sorted(int(float(r[epoch])) for r in rows if r[val])
    assert validated == [0, 1, 2, 3]  # two epochs, then two more in the same metrics.csv
    assert (moved / "checkpoints" / "last.ckpt").is_file()
    assert not (tmp_path / "run").exists()  # nothing was written to the old location


def test_a_run_reproduces_from_its_directory(tmp_path: Path) -> None:
    done = run_app("trainer.max_epochs=2", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    again = cli("reproduce", str(tmp_path / "run"))
    assert again.returncode == 0, again.stdout + again.stderr
    assert "reproduced: every final metric is equal" in again.stdout
    original, copy = read_record(tmp_path / "run"), read_record(tmp_path / "run-reproduced")
    assert copy["metrics"] == original["metrics"]
    assert copy["seed"] == original["seed"] == 42
    assert copy["git"] == original["git"]  # the record says which code ran, dirty or not
    assert copy["cpu_kernels"] == original["cpu_kernels"] is not None
    assert (tmp_path / "run-reproduced" / "checkpoints" / "best.ckpt").is_file()
    assert "CPU kernels" not in again.stdout

    # A changed metric in the original's record is reported, with a failing exit status; other
    # CPU kernels than the original's are named, with the setting that selects the original's.
    record = read_record(tmp_path / "run")
    record["metrics"]["val/acc"] = 0.5
    record["cpu_kernels"] = other = "DEFAULT" if copy["cpu_kernels"] != "DEFAULT" else "AVX2"
    (tmp_path / "run" / "run.json").write_text(json.dumps(record))
    differs = cli("reproduce", str(tmp_path / "run"))
    assert differs.returncode == 1
    assert "NOT reproduced (1 metrics differ)" in differs.stdout
    assert "val/acc: 0.5 -> " in differs.stdout
    assert f"the original ran torch's {other} CPU kernels, this run {copy['cpu_kernels']}" in (
        differs.stdout
    )
    assert f"ATEN_CPU_CAPABILITY={other.lower()}" in differs.stdout
    assert (tmp_path / "run-reproduced-1").is_dir()  # the first reproduction is kept
