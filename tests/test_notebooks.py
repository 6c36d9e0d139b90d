"""The notebooks run top to bottom on a fresh kernel, and are committed without outputs."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import REPO, run_app

NOTEBOOKS = REPO / "notebooks"

pytestmark = pytest.mark.slow


def execute(name: str, monkeypatch: pytest.MonkeyPatch, **env: str) -> nbformat.NotebookNode:
    """Run a notebook in ``notebooks/`` on a fresh kernel; ``env`` reaches the kernel."""
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    # The kernel is this interpreter (the project's environment), whatever PATH said.
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": NOTEBOOKS}}
    ).execute()
    return notebook


def outputs(notebook: nbformat.NotebookNode) -> str:
    return "\n".join(
        str(o.get("text", "")) for cell in notebook.cells for o in cell.get("outputs", [])
    )


def images(notebook: nbformat.NotebookNode) -> list[object]:
    return [
        o for c in notebook.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})
    ]


def test_quickstart_trains_plots_and_loads_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    notebook = execute("quickstart.ipynb", monkeypatch, NOTEBOOK_OUTPUTS=str(tmp_path))
    text = outputs(notebook)
    assert "val/acc = 0.9" in text
    assert "test accuracy of the loaded model: 0.9" in text
    assert len(images(notebook)) == 1  # the learning curve
    assert (tmp_path / "notebook-runs" / "quickstart" / "run.json").is_file()


def test_analyze_sweep_opens_a_study_and_loads_the_best_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sweep = run_app(
        "+sweep=optuna",
        "-m",
        "hydra.sweeper.n_trials=3",
        "trainer.max_epochs=2",
        f"paths.output_root={tmp_path}",
        cwd=REPO,
    )
    assert sweep.returncode == 0, sweep.stderr[-2000:]
    (sweep_dir,) = (tmp_path / "sweeps").iterdir()
    notebook = execute("analyze_sweep.ipynb", monkeypatch, SWEEP_DIR=str(sweep_dir))
    text = outputs(notebook)
    assert "python train.py +sweep=optuna" in text
    assert "best trial" in text
    assert len(images(notebook)) == 2


@pytest.mark.parametrize("name", ["quickstart.ipynb", "analyze_sweep.ipynb"])
def test_notebooks_are_committed_without_outputs(name: str) -> None:
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(notebook)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == []
            assert cell.execution_count is None
