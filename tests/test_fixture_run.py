"""A run directory written before the layout move still loads, resumes and reproduces (#18).

``tests/fixtures/run-2026-12`` was written on 2026-12-02 by the flat layout of that day
(``python train.py trainer.max_epochs=2 'model.encoder.hidden=[16]' seed=7``): its checkpoints
and ``.hydra/`` store module paths such as ``lightning_args.loggers.CSVLogger`` and
``lightning_args.checkpoint.BestAndLastCheckpoint``. Whatever moves inside the package, a run
directory a user already has must keep working. It is never regenerated: that is the point.
It was written with torch on 2 threads (2 cores); the thread count changes CPU float sums, so
its reproduction runs on 2 threads wherever it runs.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

import lightning_args
from tests.helpers import read_record

FIXTURE = Path(__file__).parent / "fixtures" / "run-2026-12"
STORED_TARGETS = (
    "lightning_args.demos.Classifier",
    "lightning_args.loggers.CSVLogger",
    "lightning_args.checkpoint.BestAndLastCheckpoint",
)
WRITTEN_WITH_THREADS = 2
FIXTURE_ROWS = (FIXTURE / "metrics.csv").read_text().splitlines()


@pytest.fixture
def run(tmp_path: Path) -> Path:
    """A copy: resuming writes into the run directory."""
    return Path(shutil.copytree(FIXTURE, tmp_path / "run-2026-12"))


def test_the_fixture_stores_the_old_module_paths() -> None:
    stored = (FIXTURE / ".hydra" / "config.yaml").read_text()
    for target in STORED_TARGETS:
        assert f"_target_: {target}\n" in stored


@pytest.mark.parametrize("checkpoint", ["best", "last"])
def test_it_loads(run: Path, checkpoint: str) -> None:
    loaded = lightning_args.load_run(run, checkpoint=checkpoint)
    assert loaded.record is not None
    assert loaded.record.seed == 7
    assert loaded.checkpoint == run / "checkpoints" / f"{checkpoint}.ckpt"
    loaded.datamodule.setup("test")
    batch = next(iter(loaded.datamodule.test_dataloader()))
    with torch.no_grad():
        logits = loaded.module(batch)["logits"]
    assert logits.shape == (len(batch["image"]), 10)


def test_it_resumes(run: Path) -> None:
    lightning_args.resume(run, ["trainer.max_epochs=3"])
    record = read_record(run)
    assert record["status"] == "completed"
    assert [r["previous_status"] for r in record["resumes"]] == ["completed"]
    rows = (run / "metrics.csv").read_text().splitlines()
    assert rows[: len(FIXTURE_ROWS) - 1] == FIXTURE_ROWS[:-1]  # its history kept (less its test)
    assert any(row.startswith("2,") and row.split(",")[6] for row in rows)  # epoch 3's val/acc


def test_it_reproduces_its_metrics(run: Path, tmp_path: Path) -> None:
    before = torch.get_num_threads()
    torch.set_num_threads(WRITTEN_WITH_THREADS)
    try:
        result = lightning_args.reproduce(run, tmp_path / "again")
    finally:
        torch.set_num_threads(before)
    assert result.identical, result.differences
    assert read_record(tmp_path / "again")["metrics"] == read_record(FIXTURE)["metrics"]
