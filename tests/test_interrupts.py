"""Ctrl-C and SIGTERM are a status (#24): the run stops between two steps, ``run.json`` says
``interrupted`` with the way to go on, the exit status is 130 / 143, and ``lightning-args
resume`` ends the run with the metrics of an uninterrupted one. In a sweep, an interrupted
trial is never COMPLETE: it is queued again and runs when the sweep is re-run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from tests.conftest import REPO, read_record, run_app
from tests.test_resume import EPOCHS, cli, signal_after_saves

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interrupted_run_says_so_and_resumes_to_the_same_metrics(
    tmp_path: Path, signum: int, code: int
) -> None:
    full = run_app(EPOCHS, f"hydra.run.dir={tmp_path / 'full'}", cwd=tmp_path)
    assert full.returncode == 0, full.stderr
    expected = read_record(tmp_path / "full")

    run = tmp_path / "stopped"
    proc = signal_after_saves(run, signum, 3)
    assert proc.returncode == code
    record = read_record(run)
    assert record["status"] == "interrupted"
    assert record["error"]["type"] == "RunInterrupted"
    name = signal.Signals(signum).name
    assert f"stopped by {name} after step" in record["error"]["message"]
    assert f"lightning-args resume {run}" in record["error"]["message"]

    resumed = cli("resume", str(run))
    assert resumed.returncode == 0, resumed.stderr
    record = read_record(run)
    assert record["status"] == "completed"
    assert record["metrics"] == expected["metrics"]  # exact: same weights, same draws
    assert record["resumes"][0]["previous_status"] == "interrupted"


def test_a_sweep_interrupted_with_sigint_records_no_partial_trial(tmp_path: Path) -> None:
    args = [
        "+sweep=optuna",
        "-m",
        "hydra.sweeper.n_trials=3",
        "hydra/sweeper/pruner=none",
        "trainer.max_epochs=6",
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
    ]
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "train.py"), *args],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    second = tmp_path / "sweep" / "1" / "checkpoints" / "last.ckpt"
    deadline = time.time() + 240
    while not second.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)  # mid-training of trial 1
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, out[-3000:]

    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(tmp_path / "sweep" / "study.journal"))
    )
    (name,) = optuna.get_all_study_names(storage)
    trials = optuna.load_study(study_name=name, storage=storage).get_trials()
    for trial in (t for t in trials if t.state.name == "COMPLETE"):
        run = json.loads((tmp_path / "sweep" / str(trial.number) / "run.json").read_text())
        assert run["status"] == "completed"  # never a partial value
    stopped = next(t for t in trials if t.number == 1)
    assert stopped.state.name == "FAIL"
    assert stopped.user_attrs["interrupted"] is True
    assert (
        json.loads((tmp_path / "sweep" / "1" / "run.json").read_text())["status"] == "interrupted"
    )
    assert any(t.state.name == "WAITING" for t in trials)  # its values, queued again

    again = run_app(*args, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    trials = optuna.load_study(study_name=name, storage=storage).get_trials()
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    assert len(complete) == 3
    assert any(t.params == stopped.params and t.number > stopped.number for t in complete)
