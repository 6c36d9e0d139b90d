"""Loading a run back from its directory."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

import lightning_args
from lightning_args.demos import Classifier, DigitsDataModule
from tests.helpers import train_in_process

# One worker runs them all: the run is trained once.
pytestmark = pytest.mark.xdist_group("load_run")


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One finished run for the module's tests, which read it (or copy it first)."""
    run = tmp_path_factory.mktemp("finished") / "run"
    return train_in_process(run, "trainer.enable_progress_bar=false", "trainer.max_epochs=2")


def test_load_run_gives_module_data_and_config(finished_run: Path, tmp_path: Path) -> None:
    moved = shutil.copytree(finished_run, tmp_path / "elsewhere")  # nothing points back
    run = lightning_args.load_run(moved)

    assert isinstance(run.module, Classifier)
    assert not run.module.training
    assert isinstance(run.datamodule, DigitsDataModule)
    assert run.config.trainer.max_epochs == 2
    assert run.record is not None
    assert run.record.status == "completed"
    assert run.checkpoint == moved / "checkpoints" / "best.ckpt"

    run.datamodule.setup("test")
    batch = next(iter(run.datamodule.test_dataloader()))
    best = lightning_args.load_from_checkpoint(finished_run / "checkpoints" / "best.ckpt").eval()
    torch.testing.assert_close(run.module(batch)["logits"], best(batch)["logits"])

    last = lightning_args.load_run(moved, checkpoint="last")
    assert last.checkpoint.name == "last.ckpt"


def test_unknown_checkpoint_lists_those_present(finished_run: Path) -> None:
    with pytest.raises(lightning_args.CheckpointError, match=r"best\.ckpt, last\.ckpt"):
        lightning_args.load_run(finished_run, checkpoint="epoch3")


def test_the_record_says_where_the_time_went(finished_run: Path) -> None:
    """``run.json``'s ``timings``: seconds per phase, checkpoint writes inside the fit."""
    from lightning_args.run.record import Phase, RunRecord

    timings = RunRecord.read(finished_run).timings
    assert set(timings) == {phase.value for phase in Phase}
    assert all(seconds > 0 for seconds in timings.values()), timings
    assert timings[Phase.CHECKPOINTS] < timings[Phase.FIT]
    record = RunRecord.read(finished_run)
    assert record.duration_s is not None
    assert timings[Phase.BUILD] + timings[Phase.FIT] + timings[Phase.TEST] < record.duration_s
