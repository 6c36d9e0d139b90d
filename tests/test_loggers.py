"""``logger=mlflow`` (next to csv): a local MLflow store, runs named after their directories."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest

from tests.conftest import read_record, run_app


@pytest.mark.slow
def test_mlflow_logger_names_the_run_after_its_directory_and_logs_the_config(
    tmp_path: Path,
) -> None:
    result = run_app(
        "logger=[csv,mlflow]",
        "trainer.max_epochs=2",
        f"paths.output_root={tmp_path}",
        f"hydra.run.dir={tmp_path / 'runs' / 'first'}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    (experiment,) = [e for e in client.search_experiments() if e.name == "lightning_args"]
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.run_name == "first"
    assert run.data.tags["run_dir"] == str(tmp_path / "runs" / "first")
    params = run.data.params
    assert params["model.encoder.hidden"] == "[256]"
    assert params["optimizer.lr"] == "0.001"
    assert params["seed"] == "42"
    record = read_record(tmp_path / "runs" / "first")
    assert run.data.metrics["val/acc"] == pytest.approx(record["metrics"]["val/acc"])
    assert (tmp_path / "runs" / "first" / "metrics.csv").is_file()  # both loggers at once
