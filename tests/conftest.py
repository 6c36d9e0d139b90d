"""Shared fixtures (composed configs, real services) and the marks' rules; the helpers
themselves live in :mod:`tests.helpers` (re-exported here for older imports)."""

from __future__ import annotations

import os

# Torch on one thread in the tests and every process they start (inherited by the preloading
# server, the fresh interpreters, joblib's and Slurm's jobs), unless the caller says otherwise:
# pytest-xdist runs one worker per core, and the tests' tiny models lose more to thread
# hand-offs than they gain from a second thread (two busy workers each running two threads).
# Set before anything imports torch, which reads it once. Exact comparisons are between runs made
# the same way; the fixture run, written on 2 threads, is reproduced on 2 (test_fixture_run).
os.environ.setdefault("OMP_NUM_THREADS", "1")

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

import lightning_args
from tests import preload
from tests.helpers import (
    CONF,
    REPO,
    Result,
    cli,
    quiet_trainer,
    read_record,
    run_app,
    run_dirs,
    service,
)

__all__ = [  # re-exported for older imports: import them from tests.helpers
    "CONF",
    "REPO",
    "Result",
    "cli",
    "quiet_trainer",
    "read_record",
    "run_app",
    "run_dirs",
    "service",
]

pytest_plugins = [
    "tests.marks",  # the marks' rule: a test that starts processes says so
    "tests.timeline",  # LIGHTNING_ARGS_TEST_TIMELINE=FILE: where the wall time goes
]


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist, the controller starts the one preloading server its workers share
    (``tests/preload.py``), unless the run starts no process: ``-m "not slow ..."``
    (``make test-fast``), fresh interpreters, or ``-n 0``."""
    if hasattr(config, "workerinput") or not config.getoption("numprocesses", default=None):
        return
    if preload.fresh() or "not slow" in (config.getoption("markexpr") or ""):
        return
    preload.share()


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


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[None]:
    """A real single-node Slurm cluster on this machine (``scripts/slurm-cluster``)."""
    with service("slurm-cluster"):
        yield
