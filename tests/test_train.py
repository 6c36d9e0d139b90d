"""End to end through the CLI: real training on digits, and everything a run leaves behind."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from tests.conftest import REPO, read_record, run_app, run_dirs

pytestmark = pytest.mark.slow


def test_default_run_trains_to_95_percent_and_fills_its_directory(tmp_path: Path) -> None:
    result = run_app(cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]

    runs = run_dirs(tmp_path)
    assert len(runs) == 1
    run = runs[0]
    for name in ("config.yaml", "overrides.yaml", "hydra.yaml"):
        assert (run / ".hydra" / name).is_file()
    assert (run / "checkpoints" / "last.ckpt").is_file()
    assert (run / "checkpoints" / "best.ckpt").is_file()

    with (run / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert {"val/acc", "test/acc", "train/loss", "epoch"} <= set(rows[0])
    assert sum(1 for row in rows if row["val/acc"]) == 20  # one validation per epoch

    record = read_record(run)
    assert record["status"] == "completed"
    assert record["error"] is None
    assert record["metrics"]["test/acc"] >= 0.95
    assert record["objective"]["metric"] == "val/acc"
    assert record["objective"]["value"] == pytest.approx(
        max(float(row["val/acc"]) for row in rows if row["val/acc"])
    )
    assert record["seed"] == 42
    assert record["checkpoints"] == {
        "best": "checkpoints/best.ckpt",
        "last": "checkpoints/last.ckpt",
    }
    assert record["ended_at"] >= record["started_at"]
    for package in ("torch", "lightning", "hydra-core", "optuna"):
        assert record["versions"][package]
    if (REPO / ".git").exists():
        assert record["git"] is not None
        assert len(record["git"]["commit"]) == 40
        assert isinstance(record["git"]["dirty"], bool)
    assert "test/acc" in result.stdout  # the test table is printed

    # The run loads back, ready for evaluation, and scores what its record says.
    import lightning.pytorch as pl

    import lightning_args

    loaded = lightning_args.load_run(run)
    trainer = pl.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False)
    (scores,) = trainer.test(loaded.module, datamodule=loaded.datamodule, verbose=False)
    assert scores["test/acc"] == pytest.approx(record["metrics"]["test/acc"], abs=1e-6)


def test_cnn_with_sgd_and_cosine(tmp_path: Path) -> None:
    result = run_app(
        "model=cnn",
        "optimizer=sgd",
        "optimizer.lr=0.05",
        "scheduler=cosine",
        "trainer.max_epochs=3",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (run,) = run_dirs(tmp_path)
    record = read_record(run)
    assert record["status"] == "completed"
    assert record["overrides"][:2] == ["model=cnn", "optimizer=sgd"]
    assert record["metrics"]["test/acc"] > 0.5
    assert "lr-SGD" in record["metrics"]


def test_tensorboard_and_csv_together(tmp_path: Path) -> None:
    result = run_app("trainer=debug", "logger=[csv,tensorboard]", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    (run,) = run_dirs(tmp_path)
    assert (run / "metrics.csv").is_file()
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))


def test_a_failed_run_says_so_in_its_record(tmp_path: Path) -> None:
    result = run_app("trainer=debug", "objective.metric=val/nope", cwd=tmp_path)
    assert result.returncode == 1
    (run,) = run_dirs(tmp_path)
    record = read_record(run)
    assert record["status"] == "failed"
    assert "val/nope" in record["error"]["message"]
    assert record["ended_at"] is not None


def test_two_runs_at_once_never_share_a_directory(tmp_path: Path) -> None:
    import subprocess
    import sys

    procs = [
        subprocess.Popen(
            [
                sys.executable,
                str(REPO / "train.py"),
                "trainer=debug",
                "trainer.enable_progress_bar=false",
            ],
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(2)
    ]
    assert [p.wait(timeout=300) for p in procs] == [0, 0]
    runs = run_dirs(tmp_path)
    assert len(runs) == 2
    assert all(read_record(run)["status"] == "completed" for run in runs)


@pytest.mark.parametrize("encoder", ["mlp", "cnn"])
def test_encoders_are_a_config_group(tmp_path: Path, encoder: str) -> None:
    result = run_app(f"model/encoder={encoder}", "trainer.max_epochs=5", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    (run,) = run_dirs(tmp_path)
    record = read_record(run)
    assert record["overrides"][0] == f"model/encoder={encoder}"
    assert record["metrics"]["test/acc"] >= 0.9
    config = (run / ".hydra" / "config.yaml").read_text()
    assert f"lightning_args.demos.{encoder.upper()}Encoder" in config
