"""``hydra.sweeper.constraints``: trials beyond a bound on a logged metric are infeasible, and the
summary's best is the best feasible trial."""

from __future__ import annotations

import re
from pathlib import Path

import optuna
import pytest
import yaml

from hydra_plugins.lightning_args_optuna._constraints import Constraint, parse_constraints
from lightning_args.errors import SearchSpaceError
from lightning_args.sweep import report
from tests.helpers import REPO, run_app
from tests.test_sweep_app import run_sweep, summary, trials


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<= 100000", Constraint("m", 100000.0, at_most=True)),
        (">=0.5", Constraint("m", 0.5, at_most=False)),
        ("<= -1e-3", Constraint("m", -0.001, at_most=True)),
    ],
)
def test_a_bound_is_parsed(text: str, expected: Constraint) -> None:
    assert parse_constraints({"m": text}) == [expected]


def test_constraints_that_are_not_a_mapping_are_one_message() -> None:
    with pytest.raises(SearchSpaceError, match=r"expected a mapping of metric to bound"):
        parse_constraints(["<= 1"])


@pytest.mark.parametrize("text", ["< 5", "100000", "<= many", "== 3"])
def test_a_malformed_bound_is_one_message(text: str) -> None:
    with pytest.raises(SearchSpaceError, match=re.escape(f"hydra.sweeper.constraints.m={text!r}")):
        parse_constraints({"m": text})


def _study(*rows: tuple[float, float]) -> optuna.Study:
    """Trials of (value, constraint violation), maximised."""
    study = optuna.create_study(direction="maximize")
    for value, violation in rows:
        trial = study.ask()
        trial.set_constraint("size", violation)
        study.tell(trial, value)
    return study


def test_the_summary_names_the_best_feasible_trial_and_counts_the_others() -> None:
    s = report.summarize(_study((0.9, 10.0), (0.7, -1.0), (0.8, 0.0)))
    assert (s["best"]["number"], s["best"]["value"], s["infeasible"]) == (2, 0.8, 1)
    assert s["best"]["constraints"] == {"size": 0.0}
    assert "value 0.8, the best feasible" in report.describe(s)


def test_a_study_with_no_feasible_trial_has_no_best_and_says_so() -> None:
    s = report.summarize(_study((0.9, 10.0)))
    assert "best" not in s
    assert s["infeasible"] == 1
    assert "no trial is feasible" in report.describe(s)


@pytest.mark.slow
def test_a_constrained_sweep_reports_the_best_feasible_trial(tmp_path: Path) -> None:
    # The objective is the constrained metric itself, so which trial is better is known: the
    # largest generator, which the bound makes infeasible. Sizes: 28992, 90688 and 156480.
    directory = run_sweep(
        tmp_path,
        "model=gan",
        "+sweep=optuna",
        "-m",
        "hydra/sweeper/sampler=bruteforce",
        "hydra.sweeper.search_space_group=null",
        "model.hidden=choice([128,128],[256,256],[256,256,256])",
        "objective.metric=size/generator",
        "objective.mode=max",
        "hydra.sweeper.constraints={size/generator: '<= 100000'}",
        "hydra.sweeper.n_trials=3",
        "trainer.max_epochs=1",
        "test=false",
    )
    s = summary(directory)
    assert s["trials"]["COMPLETE"] == 3
    assert s["infeasible"] == 1
    assert s["best"]["params"]["model.hidden"] == "[256,256]"
    assert s["best"]["value"] == 90688.0
    best_value = max(t.value for t in trials(directory) if t.value is not None)
    assert best_value == 156480.0 > s["best"]["value"]  # the better one, skipped
    results = yaml.safe_load((directory / "optimization_results.yaml").read_text())
    assert results["best_value"] == 90688.0


@pytest.mark.slow
def test_a_constraint_on_a_metric_the_run_does_not_log_fails_the_trial_saying_so(
    tmp_path: Path,
) -> None:
    result = run_app(
        "+sweep=optuna",
        "-m",
        "hydra.sweeper.constraints={val/size: '<= 1'}",
        "hydra.sweeper.n_trials=1",
        "trainer.max_epochs=1",
        "test=false",
        f"paths.output_root={tmp_path}",
        cwd=REPO,
    )
    assert result.returncode == 1  # 1 failure of 1 trial: more than max_failure_rate
    (directory,) = (tmp_path / "sweeps").iterdir()
    (failed,) = summary(directory)["failed"]
    assert failed["error"].startswith(
        "hydra.sweeper.constraints: 'val/size' was not logged by the run; it logged "
    )
    assert "val/acc" in failed["error"]
