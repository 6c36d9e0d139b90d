"""Ctrl-C and SIGTERM are a status (#24): the run stops between two steps, ``run.json`` says
``interrupted`` with the way to go on, the exit status is 130 / 143, and ``lightning-args
resume`` ends the run with the metrics of an uninterrupted one. In a sweep, an interrupted
trial is never COMPLETE: it is queued again and runs when the sweep is re-run. A signal after
the last training batch still stops the run, and a failed fit gives the signals back."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import tempfile
import time
from pathlib import Path
from signal import SIGTERM
from typing import Any

import lightning.pytorch as pl
import optuna
import pytest
from lightning.pytorch.demos.boring_classes import BoringModel

from lightning_args.callbacks.interrupt import StopOnInterrupt, interrupted_by, signals_given_back
from lightning_args.errors import RunInterrupted
from tests.helpers import quiet_trainer, read_record, run_app, start_app
from tests.test_resume import EPOCHS, cli, signal_after_saves


class SignalDuringLastValidation(pl.Callback):
    """Deliver ``signum`` to this process once the last training batch has run."""

    def __init__(self, signum: int) -> None:
        self.signum = signum

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.current_epoch == trainer.max_epochs - 1:  # type: ignore[operator]
            os.kill(os.getpid(), self.signum)


class Stops(StopOnInterrupt):
    """The guard, and its control without the end-of-training check."""

    def __init__(self, run_dir: Path, *, at_train_end: bool) -> None:
        super().__init__(run_dir)
        self.at_train_end = at_train_end

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.at_train_end:
            super().on_train_end(trainer, pl_module)


def fit(
    tmp_path: Path,
    *callbacks: pl.Callback,
    model: pl.LightningModule | None = None,
    given_back: bool = True,
) -> None:
    """Fit a tiny model with ``callbacks`` as :func:`lightning_args.train` does; without
    :func:`signals_given_back` for the control."""
    trainer = quiet_trainer(
        tmp_path, max_epochs=2, limit_train_batches=2, limit_val_batches=1, callbacks=[*callbacks]
    )
    deferring = [c for c in callbacks if isinstance(c, StopOnInterrupt)]
    with signals_given_back(*deferring) if given_back else contextlib.nullcontext():
        trainer.fit(model or BoringModel())


def test_a_sigint_during_the_last_validation_stops_the_run_before_testing(tmp_path: Path) -> None:
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(RunInterrupted, match="after its last training step") as stopped:
        fit(tmp_path, Stops(tmp_path, at_train_end=True), SignalDuringLastValidation(signal.SIGINT))
    assert stopped.value.signum == signal.SIGINT
    assert f"lightning-args resume {tmp_path}" in str(stopped.value)
    assert signal.getsignal(signal.SIGINT) == before


def test_control_without_the_end_of_training_check_the_sigint_is_swallowed(
    tmp_path: Path,
) -> None:
    fit(tmp_path, Stops(tmp_path, at_train_end=False), SignalDuringLastValidation(signal.SIGINT))


def test_a_sigterm_during_the_last_validation_is_ours_not_lightnings(tmp_path: Path) -> None:
    # Lightning takes SIGTERM too, after setup, and would stop at the epoch's end by itself
    # (SIGTERMException, a SystemExit(None): exit 0, nothing saved).
    with pytest.raises(RunInterrupted, match="after its last training step") as stopped:
        fit(tmp_path, Stops(tmp_path, at_train_end=True), SignalDuringLastValidation(SIGTERM))
    assert stopped.value.code == 128 + signal.SIGTERM


class LeavesSigtermToLightning(StopOnInterrupt):
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        pass


def test_control_leaving_sigterm_to_lightning_ends_in_its_exit_which_is_mapped(
    tmp_path: Path,
) -> None:
    with pytest.raises(SystemExit) as lightnings:
        fit(tmp_path, LeavesSigtermToLightning(tmp_path), SignalDuringLastValidation(SIGTERM))
    assert not isinstance(lightnings.value, RunInterrupted)
    assert lightnings.value.code is None  # what the process would exit with: 0
    # Where Lightning still stops by itself (sanity check, testing), train() maps its exit.
    interrupted = interrupted_by(lightnings.value, tmp_path)
    assert interrupted is not None
    assert interrupted.code == 128 + signal.SIGTERM
    assert f"lightning-args resume {tmp_path}" in str(interrupted)
    assert interrupted_by(SystemExit(None), tmp_path) is None  # any other exit stays what it is


class FailsInTraining(BoringModel):
    def training_step(self, batch: Any, batch_idx: int) -> Any:
        raise ValueError("a bug in the user's step")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_failed_fit_gives_the_signal_handlers_back(tmp_path: Path, signum: int) -> None:
    before = signal.getsignal(signum)
    with pytest.raises(ValueError, match="a bug in the user's step"):
        fit(tmp_path, StopOnInterrupt(tmp_path), model=FailsInTraining())
    assert signal.getsignal(signum) == before


def test_control_a_failed_fit_without_signals_given_back_leaves_them_taken(
    tmp_path: Path,
) -> None:
    before = signal.getsignal(signal.SIGINT)
    stop = StopOnInterrupt(tmp_path)
    with pytest.raises(ValueError, match="a bug in the user's step"):
        fit(tmp_path, stop, model=FailsInTraining(), given_back=False)
    try:
        assert signal.getsignal(signal.SIGINT) == stop._remember  # Lightning put it back
    finally:
        signal.signal(signal.SIGINT, before)


@pytest.mark.slow
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


@pytest.mark.slow
def test_a_sweep_interrupted_with_sigint_records_no_partial_trial(tmp_path: Path) -> None:
    args = [
        "+sweep=optuna",
        "-m",
        "hydra.sweeper.n_trials=3",
        "hydra/sweeper/pruner=none",
        "trainer.max_epochs=6",
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
    ]
    with tempfile.TemporaryFile() as output:
        proc = start_app(
            *args,
            cwd=tmp_path,
            stdout=output,
            stderr=output,
            nice=10,  # see signal_after_saves
        )
        second = tmp_path / "sweep" / "1" / "checkpoints" / "last.ckpt"
        deadline = time.time() + 240
        while not second.exists() and time.time() < deadline and proc.poll() is None:
            time.sleep(0.01)
        proc.send_signal(signal.SIGINT)  # mid-training of trial 1
        proc.wait(timeout=120)
        output.seek(0)
        out = output.read().decode(errors="replace")
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
