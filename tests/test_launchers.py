"""``launcher=local|joblib|submitit_local|slurm``: the app's launcher group picks Hydra's."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

import lightning_args
from tests.helpers import CONF, REPO, run_app

LAUNCHERS = [
    ("local", "hydra._internal.core_plugins.basic_launcher.BasicLauncher"),
    (
        "joblib",
        "hydra_plugins.lightning_args_joblib.lightning_args_joblib_launcher."
        "LightningArgsJoblibLauncher",
    ),
    ("submitit_local", "hydra_plugins.hydra_submitit_launcher.submitit_launcher.LocalLauncher"),
    ("slurm", "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"),
]


@pytest.mark.parametrize(("option", "target"), LAUNCHERS, ids=[o for o, _ in LAUNCHERS])
def test_launcher_option_selects_hydras_launcher(option: str, target: str) -> None:
    lightning_args.register()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=[f"launcher={option}"], return_hydra_config=True)
    assert cfg.hydra.launcher._target_ == target
    assert "launcher" not in cfg  # only Hydra's node changes, not the job's config


def test_slurm_launcher_keeps_preemption_settings() -> None:
    lightning_args.register()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=["launcher=slurm"], return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert (launcher.signal_delay_s, launcher.max_num_timeout) == (120, 3)
    assert launcher.tasks_per_node == 1


@pytest.mark.slow
def test_a_multirun_through_submitit_local_trains_each_model(tmp_path: Path) -> None:
    result = run_app(
        "-m",
        "launcher=submitit_local",
        "model=mlp,cnn",
        "trainer=debug",
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
        cwd=REPO,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for job in ("0", "1"):
        assert (tmp_path / "sweep" / job / "run.json").is_file()
    assert list((tmp_path / "sweep" / ".submitit").iterdir())
