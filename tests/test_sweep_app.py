"""End-to-end sweeps of the example app (``+sweep=optuna``): real trainings, tiny budgets."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml

from tests.helpers import REPO, run_app, run_python
from tests.test_live_view import console_is_short

pytestmark = pytest.mark.slow


def run_sweep(root: Path, *args: str) -> Path:
    """Run ``train.py *args`` with outputs under ``root``; return its sweep directory."""
    result = run_app(*args, f"paths.output_root={root}", cwd=REPO, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return sweep_dir(root)


def sweep_dir(root: Path) -> Path:
    (found,) = (root / "sweeps").iterdir()
    return found


def trials(directory: Path) -> list[optuna.trial.FrozenTrial]:
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(directory / "study.journal"))
    )
    (name,) = optuna.get_all_study_names(storage)
    return optuna.load_study(study_name=name, storage=storage).get_trials()


def summary(directory: Path) -> dict[str, Any]:
    return yaml.safe_load((directory / "summary.yaml").read_text())


def test_classifier_sweep_on_joblib_prunes_reports_and_keeps_its_console_short(
    tmp_path: Path,
) -> None:
    # The command, with outputs in a temp dir; its output piped.
    result = run_app(
        "+sweep=optuna",
        "-m",
        "hydra.sweeper.n_trials=8",
        "hydra.sweeper.n_jobs=2",
        "launcher=joblib",  # our joblib launcher: the jobs' shared arguments shipped once
        f"paths.output_root={tmp_path}",
        cwd=REPO,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    directory = sweep_dir(tmp_path)
    console_is_short(result.stdout + result.stderr, 8)  # #21
    for number in range(8):  # each trial's own output is in its run directory instead
        assert "Trainable params" in (directory / str(number) / "train.log").read_text()
    s = summary(directory)
    assert s["direction"] == "maximize"
    assert s["trials"]["PRUNED"] >= 1
    assert s["trials"]["COMPLETE"] + s["trials"]["PRUNED"] == 8
    assert s["best"]["value"] > 0.9  # val/acc of the best trial
    assert {"model.encoder.hidden", "optimizer.lr"} <= set(s["best"]["params"])
    for name in ("history", "importances", "parallel_coordinate", "intermediate_values"):
        assert (directory / "plots" / f"{name}.png").stat().st_size > 10_000
    # A pruned trial stopped early and says so in its run record.
    pruned = [t for t in trials(directory) if t.state.name == "PRUNED"]
    record = json.loads((directory / str(pruned[0].number) / "run.json").read_text())
    assert record["status"] == "pruned"
    assert "pruned after epoch" in record["error"]["message"]
    # A plain training beside the sweep: the lightning-args command sees both kinds of runs.
    plain = run_app("trainer.max_epochs=1", f"paths.output_root={tmp_path}", cwd=REPO)
    assert plain.returncode == 0, plain.stderr[-3000:]
    (run,) = (tmp_path / "runs").iterdir()
    rows = json.loads(cli("runs", str(tmp_path), "--format", "json").stdout)
    assert len(rows) == 9
    assert sorted({r["status"] for r in rows}) == ["completed", "pruned"]
    best = directory / str(s["best"]["number"])
    assert "optimizer.lr: 0.001 -> " in cli("diff", str(run), str(best)).stdout
    assert '"status": "completed"' in cli("show", str(best)).stdout
    curves = tmp_path / "curves.png"
    plotted = cli("plot", str(run), str(best), "--out", str(curves))
    assert plotted.returncode == 0, plotted.stderr
    assert curves.stat().st_size > 10_000
    assert f"Best: trial {s['best']['number']}" in cli("study", str(directory)).stdout


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return run_python("-m", "lightning_args.cli", *args, cwd=REPO, timeout=120)


def test_gan_sweep_minimises_mmd_over_its_own_space(tmp_path: Path) -> None:
    directory = run_sweep(
        tmp_path,
        "model=gan",
        "+sweep=optuna",
        "-m",
        "hydra.sweeper.n_trials=3",
        "trainer.max_epochs=3",
    )
    s = summary(directory)
    assert s["direction"] == "minimize"
    assert s["trials"]["COMPLETE"] + s["trials"]["PRUNED"] == 3
    for trial in trials(directory):
        assert set(trial.params) == {
            "model.z_dim",
            "model.hidden",
            "optimizers.generator.optimizer.lr",
            "optimizers.discriminator.optimizer.lr",
        }


@pytest.mark.parametrize(
    ("choice", "declared"),
    [
        (
            ("experiment=tbptt_recall", "data.train_size=256", "data.eval_size=64"),
            {"model.tbptt.steps", "model.hidden_size", "optimizer.lr", "optimizer.weight_decay"},
        ),
        (
            (
                "experiment=maml_sinusoid",
                "model.algorithm=maml",
                "data.train_tasks=100",
                "data.eval_tasks=10",
            ),
            {"optimizers.inner.optimizer.lr", "model.inner_steps"},
        ),
    ],
    ids=["tbptt", "maml"],
)
def test_an_experiment_sweep_samples_the_space_the_experiment_declares(
    choice: tuple[str, ...], declared: set[str], tmp_path: Path
) -> None:
    directory = run_sweep(
        tmp_path, *choice, "+sweep=optuna", "-m", "hydra.sweeper.n_trials=2", "trainer.max_epochs=1"
    )
    assert summary(directory)["trials"]["COMPLETE"] == 2
    for trial in trials(directory):
        assert set(trial.params) == declared
        job = yaml.safe_load((directory / str(trial.number) / ".hydra" / "config.yaml").read_text())
        for name, value in trial.params.items():
            node: Any = job
            for part in name.split("."):
                node = node[part]
            assert node == value, name


def test_architecture_sweep_samples_only_the_chosen_encoders_parameters(tmp_path: Path) -> None:
    directory = run_sweep(
        tmp_path,
        "+sweep=optuna",
        "-m",
        "model/encoder=choice(mlp,cnn)",
        "hydra.sweeper.n_trials=6",
        "hydra.sweeper.sampler.n_startup_trials=6",
        "trainer.max_epochs=2",
    )
    own = {
        "mlp": {"model.encoder.hidden", "model.encoder.dropout"},
        "cnn": {"model.encoder.channels", "model.encoder.kernel_size"},
    }
    seen = set()
    for trial in trials(directory):
        encoder = trial.params["model/encoder"]
        seen.add(encoder)
        assert (
            set(trial.params)
            == {"model/encoder", "optimizer.lr", "optimizer.weight_decay"} | (own[encoder])
        )
        job = yaml.safe_load((directory / str(trial.number) / ".hydra" / "config.yaml").read_text())
        assert job["model"]["encoder"]["_target_"].endswith(f"{encoder.upper()}Encoder")
    assert seen == {"mlp", "cnn"}


@pytest.mark.parametrize(
    "sampler",
    [(), ("hydra/sweeper/sampler=tpe", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2")],
    ids=["nsgaii", "tpe-joblib"],
)
def test_gan_quality_against_size_gives_a_pareto_front(
    sampler: tuple[str, ...], tmp_path: Path
) -> None:
    directory = run_sweep(
        tmp_path,
        "model=gan",
        "+sweep=pareto",
        *sampler,
        "-m",
        "hydra.sweeper.n_trials=4",
        "trainer.max_epochs=2",
    )
    s = summary(directory)
    assert s["direction"] == ["minimize", "minimize"]
    assert s["trials"]["COMPLETE"] == 4
    front = s["pareto_front"]
    assert front
    sizes = {t["number"]: t["values"][1] for t in front}
    for trial in trials(directory):  # the second value is the generator's parameter count
        record = json.loads((directory / str(trial.number) / "run.json").read_text())
        assert record["objective"]["also"]["size/generator"] == trial.values[1]
        if trial.number in sizes:
            assert sizes[trial.number] == trial.values[1] > 1000
    assert (directory / "plots" / "pareto_front.png").is_file()
