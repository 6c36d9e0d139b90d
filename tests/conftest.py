"""Shared fixtures: the repository's app, composed configs and a CLI runner."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

import lightning_args

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "conf"


def pytest_configure(config: pytest.Config) -> None:
    # Here, not in pyproject.toml's list, which another change owns for now.
    config.addinivalue_line(
        "markers", "root: needs root, e.g. to mount a tiny tmpfs (skipped otherwise)"
    )


@pytest.fixture
def compose_app(tmp_path: Path) -> Iterator[Callable[..., DictConfig]]:
    """Compose the example app's config with overrides; the run directory is a temp dir."""
    lightning_args.register()

    def _compose(*overrides: str) -> DictConfig:
        return compose(
            "config", overrides=[f"paths.run_dir={tmp_path / 'run'}", "trainer=debug", *overrides]
        )

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        yield _compose


def quiet_trainer(root: Path, **kwargs: Any) -> pl.Trainer:
    """A Trainer that logs, checkpoints and prints nothing unless a test asks for it."""
    options: dict[str, Any] = {
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "default_root_dir": root,
    }
    return pl.Trainer(**{**options, **kwargs})


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def run_app(
    *args: str,
    cwd: Path,
    script: Path = REPO / "train.py",
    env: dict[str, str] | None = None,
    timeout: float = 300,
) -> Result:
    """Run ``train.py`` (or ``script``) in a subprocess whose outputs land under ``cwd``."""
    full_env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    full_env.update({"PYTHONWARNINGS": "ignore", **(env or {})})
    proc = subprocess.run(
        [sys.executable, str(script), *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def read_record(run: Path) -> dict[str, Any]:
    """A run directory's ``run.json``, as plain data."""
    record: dict[str, Any] = json.loads((run / "run.json").read_text())
    return record


def run_dirs(root: Path) -> list[Path]:
    """The run directories under ``root/outputs/runs``."""
    runs = root / "outputs" / "runs"
    return sorted(p for p in runs.iterdir() if p.is_dir()) if runs.exists() else []


@contextmanager
def service(name: str) -> Iterator[None]:
    """A real service of ``scripts/<name>`` (``slurm-cluster``, ``postgres-server``) while inside.

    ``up`` installs Debian's packages if needed (root) and says "already up" when the service
    runs (``.ci/run`` starts both first); one started here is stopped on the way out. No skip:
    a service that does not start fails the test with the script's message.
    """
    script = REPO / "scripts" / name
    up = subprocess.run([script, "up"], capture_output=True, text=True, timeout=600)
    if up.returncode != 0:
        pytest.fail(f"scripts/{name} up failed:\n{up.stderr}", pytrace=False)
    try:
        yield
    finally:
        if "already up" not in up.stderr:
            subprocess.run([script, "down"], capture_output=True, timeout=120)


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[None]:
    """A real single-node Slurm cluster on this machine (``scripts/slurm-cluster``)."""
    with service("slurm-cluster"):
        yield
