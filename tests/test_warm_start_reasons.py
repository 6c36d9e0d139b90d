"""Why a run is left out of a warm start: one short reason each, counted in the summary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from hydra_plugins.lightning_args_optuna._warm import _trial
from lightning_args.cli.runs import Run
from lightning_args.run.record import RunRecord
from lightning_args.sweep.space import parse

PARAMS = parse(["optimizer.lr=interval(0.001,0.01)"], where="command line").params
CONFIG = {"optimizer": {"lr": 0.003}, "data": {"batch_size": 64}, "seed": 1}


def run(tmp_path: Path, config: dict[str, Any] = CONFIG, **record: Any) -> Run:
    (tmp_path / ".hydra").mkdir(exist_ok=True)
    (tmp_path / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
    fields = {"status": "completed", "objective": {"metric": "val/acc", "value": 0.9}, **record}
    return Run(tmp_path, RunRecord(id="r", **fields))


def why(item: Run) -> Any:
    # What this sweep composes for the run's values: the same config, another seed.
    ours = {"optimizer.lr": 0.003, "data.batch_size": 64, "seed": 42}
    return _trial(item, "val/acc", lambda choices: PARAMS, lambda overrides: ours)


@pytest.mark.parametrize(
    ("record", "config", "reason"),
    [
        ({"status": "failed"}, CONFIG, "not completed (failed)"),
        (
            {"objective": {"metric": "val/loss", "value": 0.1}},
            CONFIG,
            "another objective (val/loss)",
        ),
        (
            {"objective": {"metric": "val/acc", "value": "high"}},
            CONFIG,
            "no finite objective value",
        ),
        (
            {"objective": {"metric": "val/acc", "value": float("nan")}},
            CONFIG,
            "no finite objective value",
        ),
        ({}, {"data": {"batch_size": 64}}, "no value of optimizer.lr"),
        ({}, {**CONFIG, "optimizer": {"lr": 0.5}}, "outside the space (optimizer.lr)"),
        ({}, {**CONFIG, "data": {"batch_size": 32}}, "config differs (data.batch_size)"),
    ],
)
def test_a_run_that_does_not_fit_is_skipped_with_its_reason(
    record: dict[str, Any], config: dict[str, Any], reason: str, tmp_path: Path
) -> None:
    assert why(run(tmp_path, config, **record)) == reason


def test_a_run_that_fits_becomes_a_completed_trial_whatever_its_seed(tmp_path: Path) -> None:
    trial = why(run(tmp_path))
    assert (trial.state.name, trial.value, trial.params) == (
        "COMPLETE",
        0.9,
        {"optimizer.lr": 0.003},
    )


def test_a_run_s_group_choices_reach_the_space_as_options(tmp_path: Path) -> None:
    # A searched group (model/encoder) takes its value from the run's recorded choices, and the
    # options' own parameters are asked for with those choices as they are (option names).
    item = run(tmp_path)
    hydra = {"hydra": {"runtime": {"choices": {"model/encoder": "cnn", "optimizer": "adamw"}}}}
    (tmp_path / ".hydra" / "hydra.yaml").write_text(yaml.safe_dump(hydra))
    group = parse(["model/encoder=choice(mlp,cnn)"], where="command line").params
    asked: list[dict[str, str]] = []

    def params_of(choices: dict[str, str]) -> list[Any]:
        asked.append(choices)
        return [*PARAMS, *group]

    ours = {"optimizer.lr": 0.003, "data.batch_size": 64}
    trial = _trial(item, "val/acc", params_of, lambda overrides: ours)
    assert asked == [{"model/encoder": "cnn", "optimizer": "adamw"}]
    assert trial.params == {"optimizer.lr": 0.003, "model/encoder": "cnn"}
