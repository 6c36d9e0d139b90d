"""Preemption on CPU, without a cluster: a requeue signal mid-epoch loses nothing.

A stand-in for submitit's handler is installed for USR2 (submitit installs its own in a Slurm
job); a callback sends the signal to the process in the middle of an epoch. The run must
checkpoint at that batch, stop with status ``requeued``, hand the signal to the handler, and,
started again in the same directory, end exactly where an uninterrupted run ends. The same
path through a real Slurm cluster is in ``test_slurm.py``.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
from omegaconf import DictConfig

import lightning_args
from lightning_args.callbacks.requeue import CHECKPOINT, JobRequeued
from lightning_args.modules.data import TensorBatches
from lightning_args.run.record import RunRecord

pytestmark = pytest.mark.slow


class SignalAt(pl.Callback):
    """Send ``signal`` to this process once, after training batch ``batch`` of ``epoch``."""

    def __init__(self, epoch: int, batch: int, signal: str = "SIGUSR2") -> None:
        self.epoch, self.batch, self.signum = epoch, batch, signal

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        if (trainer.current_epoch, args[-1]) == (self.epoch, self.batch):
            os.kill(os.getpid(), signal.Signals[self.signum])


def signal_at(epoch: int, batch: int) -> list[str]:
    """The overrides that add a :class:`SignalAt` callback to the app's config."""
    key = "+callbacks.signal_at"
    return [
        f"{key}._target_=tests.test_requeue.SignalAt",
        f"{key}.epoch={epoch}",
        f"{key}.batch={batch}",
    ]


@pytest.fixture
def submitit_handler() -> Iterator[list[int]]:
    """A USR2 handler standing in for submitit's; yields the signals it was handed."""
    received: list[int] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        received.append(signum)

    previous = signal.signal(signal.SIGUSR2, handler)
    yield received
    signal.signal(signal.SIGUSR2, previous)


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    state: dict[str, torch.Tensor] = checkpoint["state_dict"]
    return state


def _metrics_csv(run_dir: Path) -> list[str]:
    return (run_dir / "metrics.csv").read_text().splitlines()


CONFIG = (
    "trainer=cpu",
    "trainer.max_epochs=3",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "test=false",
)


@pytest.mark.parametrize(
    ("batch", "stop", "extra"),
    [
        # 19 batches an epoch, rows every 10 steps: global step 26, its row not written.
        pytest.param(7, (1, 27), (), id="mid-logging-interval"),
        pytest.param(10, (1, 30), (), id="at-a-logged-step"),  # global step 29: written
        # Lightning would resume a checkpoint of an epoch's last batch past that epoch's
        # validation and the next epoch's start (its lr-AdamW row): it stops a batch later.
        pytest.param(18, (2, 39), (), id="at-an-epochs-last-batch"),
        # The same for a batch after which a mid-epoch validation runs (every 9 batches).
        pytest.param(8, (1, 29), ("trainer.val_check_interval=0.5",), id="before-a-validation"),
    ],
)
def test_a_signalled_run_resumes_mid_epoch_and_ends_as_an_uninterrupted_one(
    compose_app: Callable[..., DictConfig],
    tmp_path: Path,
    submitit_handler: list[int],
    batch: int,
    stop: tuple[int, int],
    extra: tuple[str, ...],
) -> None:
    whole = tmp_path / "whole"
    expected = lightning_args.train(compose_app(*CONFIG, *extra, f"paths.run_dir={whole}"))

    run = tmp_path / "requeued"
    signalled = compose_app(
        *CONFIG,
        *extra,
        f"paths.run_dir={run}",
        *signal_at(epoch=1, batch=batch),
    )
    with pytest.raises(JobRequeued):
        lightning_args.train(signalled)
    assert submitit_handler == [signal.SIGUSR2]  # handed over once, after the checkpoint
    record = RunRecord.read(run)
    assert record.status == "requeued"
    saved = torch.load(run / CHECKPOINT, weights_only=True)
    assert (saved["epoch"], saved["global_step"]) == stop

    # The requeued job: the same config, the same directory, no ckpt_path given.
    value = lightning_args.train(compose_app(*CONFIG, *extra, f"paths.run_dir={run}"))

    assert value == expected
    record = RunRecord.read(run)
    assert record.status == "completed"
    assert [r["previous_status"] for r in record.resumes] == ["requeued"]
    assert not (run / CHECKPOINT).exists()  # superseded by last.ckpt
    whole_weights, run_weights = _weights(whole), _weights(run)
    assert whole_weights.keys() == run_weights.keys()
    for name, tensor in whole_weights.items():
        assert torch.equal(tensor, run_weights[name]), name
    # metrics.csv continued: every row once (the signalled step's too), equal to the whole run's.
    assert sorted(_metrics_csv(run)) == sorted(_metrics_csv(whole))


def test_without_a_handler_the_signal_is_not_taken(
    compose_app: Callable[..., DictConfig], tmp_path: Path
) -> None:
    """Outside submitit nobody would requeue the job: the callback leaves the signal alone."""
    assert signal.getsignal(signal.SIGUSR2) == signal.SIG_DFL
    ignored = signal.signal(signal.SIGUSR2, signal.SIG_IGN)
    try:
        cfg = compose_app(
            *CONFIG,
            "trainer.max_epochs=1",
            *signal_at(epoch=0, batch=3),
        )
        lightning_args.train(cfg)
    finally:
        signal.signal(signal.SIGUSR2, ignored)
    assert RunRecord.read(Path(cfg.paths.run_dir)).status == "completed"


def test_tensor_batches_resume_after_the_batches_already_yielded() -> None:
    data = torch.arange(10)
    batches = TensorBatches((data,), batch_size=3, shuffle=True, seed=7)
    batches.set_epoch(2)
    whole = [b[0].tolist() for b in batches]
    iterator = iter(batches)
    next(iterator), next(iterator)
    state = batches.state_dict()
    assert state == {"epoch": 2, "position": 2}

    fresh = TensorBatches((data,), batch_size=3, shuffle=True, seed=7)
    fresh.load_state_dict(state)
    fresh.set_epoch(2)
    assert [b[0].tolist() for b in fresh] == whole[2:]
    assert [b[0].tolist() for b in fresh] == whole  # the next pass is whole again
    other = TensorBatches((data,), batch_size=3, shuffle=True, seed=7)
    other.load_state_dict(state)
    other.set_epoch(3)  # a state of another epoch does not skip anything
    assert len(list(other)) == 4


def test_lightning_auto_requeue_is_off_under_submitit(monkeypatch: pytest.MonkeyPatch) -> None:
    from lightning.fabric.plugins.environments.slurm import SLURMEnvironment

    from lightning_args.callbacks.requeue import cluster_plugins

    monkeypatch.setenv("SLURM_NTASKS", "1")
    monkeypatch.setenv("SLURM_JOB_NAME", "train")
    assert cluster_plugins() == []  # sbatch without submitit: Lightning's requeue stays
    monkeypatch.setenv("SUBMITIT_EXECUTOR", "slurm")
    (plugin,) = cluster_plugins()
    assert isinstance(plugin, SLURMEnvironment)
    assert plugin.auto_requeue is False


def test_a_refused_requeue_leaves_the_run_failed(
    compose_app: Callable[..., DictConfig], tmp_path: Path
) -> None:
    """submitit raises instead of requeueing once the job has no requeue left."""

    def refuse(signum: int, frame: FrameType | None) -> None:
        raise RuntimeError("Job not requeued because: timed-out too many times.")

    previous = signal.signal(signal.SIGUSR2, refuse)
    try:
        cfg = compose_app(
            *CONFIG,
            *signal_at(epoch=0, batch=3),
        )
        with pytest.raises(RuntimeError, match="timed-out too many times"):
            lightning_args.train(cfg)
    finally:
        signal.signal(signal.SIGUSR2, previous)
    record = RunRecord.read(Path(cfg.paths.run_dir))
    assert record.status == "failed"
    assert "timed-out too many times" in str(record.error)
