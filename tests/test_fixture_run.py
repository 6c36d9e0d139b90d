"""A run directory written before the layout move still loads, resumes and reproduces (#18).

``tests/fixtures/run-2026-12`` was written on 2026-12-02 by the flat layout of that day
(``python train.py trainer.max_epochs=2 'model.encoder.hidden=[16]' seed=7``): its checkpoints
and ``.hydra/`` store module paths such as ``lightning_args.loggers.CSVLogger`` and
``lightning_args.checkpoint.BestAndLastCheckpoint``. Whatever moves inside the package, a run
directory a user already has must keep working. It is never regenerated: that is the point.
It was written with torch on 2 threads (2 cores) and its AVX2 kernels (``cpu_kernels`` came
into ``run.json`` later); the thread count and the kernel set change CPU float sums in their last
digits, so its reproduction runs on 2 threads and AVX2 kernels wherever it runs.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch

import lightning_args
from tests.helpers import read_record, run_python

FIXTURE = Path(__file__).parent / "fixtures" / "run-2026-12"
STORED_TARGETS = (
    "lightning_args.demos.Classifier",
    "lightning_args.loggers.CSVLogger",
    "lightning_args.checkpoint.BestAndLastCheckpoint",
)
WRITTEN_WITH_THREADS = 2
WRITTEN_WITH_KERNELS = "AVX2"
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


#: Reproduces the fixture in a process of its own (torch reads ATEN_CPU_CAPABILITY once, at its
#: first operation) and prints the metrics that differ.
REPRODUCE = """
import json, sys, torch, lightning_args
torch.set_num_threads(int(sys.argv[3]))
result = lightning_args.reproduce(sys.argv[1], sys.argv[2])
print(json.dumps(result.differences))
"""


@pytest.mark.slow
@pytest.mark.parametrize("kernels", ["avx2", "native"])
def test_it_reproduces_its_metrics(run: Path, tmp_path: Path, kernels: str) -> None:
    """Bit for bit on the kernels it was written with (AVX2); the control, on a CPU whose own
    kernels are others (AVX-512), differs in the last digits."""
    script = tmp_path / "reproduce.py"
    script.write_text(REPRODUCE)
    env = {k: v for k, v in os.environ.items() if k != "ATEN_CPU_CAPABILITY"}
    if kernels != "native":
        env["ATEN_CPU_CAPABILITY"] = kernels
    again = tmp_path / "again"
    done = run_python(
        str(script), str(run), str(again), str(WRITTEN_WITH_THREADS), cwd=tmp_path, env=env
    )
    assert done.returncode == 0, done.stderr[-3000:]
    differences = json.loads(done.stdout.splitlines()[-1])
    record = read_record(again)
    if kernels == "native":
        if record["cpu_kernels"] == WRITTEN_WITH_KERNELS:
            pytest.skip(f"this CPU's own kernels are the fixture's ({WRITTEN_WITH_KERNELS})")
        assert differences, f"{record['cpu_kernels']} kernels reproduced it exactly"
        return
    assert record["cpu_kernels"] == WRITTEN_WITH_KERNELS, "ATEN_CPU_CAPABILITY was not applied"
    assert differences == {}
    assert record["metrics"] == read_record(FIXTURE)["metrics"]
