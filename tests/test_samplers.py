"""The sampler options: each runs a small sweep of the example app through joblib, and the
samplers that enumerate a finite space (grid, bruteforce) are checked before any job starts."""

from __future__ import annotations

import itertools
import re
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from hydra_plugins.lightning_args_optuna._finite import BRUTE_FORCE, GRID, finite_sampler
from lightning_args.errors import SearchSpaceError
from lightning_args.sweep.space import parse
from tests.helpers import REPO, run_app
from tests.test_sweep_app import run_sweep, summary, trials

#: A 2 x 2 grid over what the command line gives (the options' own spaces left out).
GRID_ARGS = (
    "hydra.sweeper.search_space_group=null",
    "optimizer.lr=choice(0.001,0.003)",
    "model.encoder.hidden=choice([64],[128])",
)
SWEEP = ("+sweep=optuna", "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("sampler", "args", "n_trials"),
    [
        ("gp", ("hydra.sweeper.sampler.n_startup_trials=2",), 3),
        ("botorch", ("hydra.sweeper.sampler.n_startup_trials=2",), 3),
        ("nsgaiii", ("hydra.sweeper.sampler.population_size=2",), 3),
        ("grid", GRID_ARGS, 4),
        ("bruteforce", GRID_ARGS, 4),
    ],
)
def test_each_sampler_runs_a_sweep_of_the_example_app(
    sampler: str, args: tuple[str, ...], n_trials: int, tmp_path: Path
) -> None:
    directory = run_sweep(
        tmp_path,
        *SWEEP,
        f"hydra/sweeper/sampler={sampler}",
        *args,
        # The finite samplers are given more than their space holds: they run each point once.
        f"hydra.sweeper.n_trials={10 if sampler in ('grid', 'bruteforce') else n_trials}",
        "hydra/sweeper/pruner=none",
        "trainer.max_epochs=1",
    )
    done = trials(directory)
    assert [t.state.name for t in done] == ["COMPLETE"] * n_trials
    assert summary(directory)["trials"]["COMPLETE"] == n_trials
    if sampler in ("grid", "bruteforce"):
        points = {(t.params["optimizer.lr"], t.params["model.encoder.hidden"]) for t in done}
        assert points == set(itertools.product([0.001, 0.003], ["[64]", "[128]"]))


@pytest.mark.slow
def test_a_grid_with_an_interval_stops_before_any_job(tmp_path: Path) -> None:
    result = run_app(
        *SWEEP,
        "hydra/sweeper/sampler=grid",
        "hydra.sweeper.search_space_group=null",
        "optimizer.lr=interval(0.001,0.01)",
        f"paths.output_root={tmp_path}",
        cwd=REPO,
    )
    assert result.returncode == 1
    assert (
        "hydra/sweeper/sampler=grid runs every configuration of a finite space, but optimizer.lr "
        "takes continuous values" in result.stderr
    )
    assert "Traceback" not in result.stderr
    assert not list(tmp_path.glob("sweeps/*/[0-9]*"))  # no job directory


@pytest.mark.slow
@pytest.mark.parametrize(
    ("sampler", "said"),
    [
        (
            "gp",
            "hydra/sweeper/sampler=gp models only the parameters every trial has: "
            "model.encoder.dropout, model.encoder.hidden, model.encoder.channels, "
            "model.encoder.kernel_size are sampled independently at random",
        ),
        (
            "cmaes",
            "hydra/sweeper/sampler=cmaes models only the numeric parameters every trial has: "
            "model/encoder, model.encoder.hidden, model.encoder.dropout, model.encoder.channels, "
            "model.encoder.kernel_size are sampled",
        ),
        ("tpe", None),  # the control: TPE (multivariate, group) models conditional spaces
    ],
)
def test_a_sampler_that_models_only_part_of_a_conditional_space_says_which(
    sampler: str, said: str | None, tmp_path: Path
) -> None:
    result = run_app(
        "+sweep=optuna",
        "-m",
        f"hydra/sweeper/sampler={sampler}",
        "model/encoder=choice(mlp,cnn)",
        "hydra.sweeper.n_trials=1",
        "trainer.max_epochs=1",
        "test=false",
        f"paths.output_root={tmp_path}",
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    output = result.stdout + result.stderr
    if said is None:
        assert "sampled independently" not in output
    else:
        assert said in output
        # Said before any job started.
        assert output.index(said) < output.index("Launching")


def test_a_sampler_whose_extra_is_not_installed_is_one_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib.util

    from hydra_plugins.lightning_args_optuna import _study

    node = OmegaConf.create({"_target_": "optuna_integration.BoTorchSampler", "seed": 0})
    assert _study.missing_extra(node) is None  # installed here (the dev extra has it)
    real = importlib.util.find_spec
    monkeypatch.delitem(sys.modules, "botorch", raising=False)  # imported by another test
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name: None if name == "botorch" else real(name)
    )
    assert _study.missing_extra(node) == (
        "hydra.sweeper.sampler optuna_integration.BoTorchSampler needs botorch, which is not "
        "installed. Fix: pip install 'lightning-args[botorch]'"
    )


def _rows(*rows: dict[str, object]) -> dict[frozenset[tuple[str, object]], dict[str, object]]:
    return {frozenset(row.items()): row for row in rows}


SPACE = parse(["x=choice(1,2)", "lr=interval(0.1,1)"], where="command line").params
CONDITIONAL = _rows(
    {"enc": "mlp", "hidden": 64}, {"enc": "mlp", "hidden": 128}, {"enc": "cnn", "k": 3}
)


@pytest.mark.parametrize(
    ("target", "configurations", "message"),
    [
        (GRID, None, "sampler=grid runs every configuration of a finite space, but lr takes"),
        (BRUTE_FORCE, None, "sampler=bruteforce runs every configuration of a finite space"),
        (
            GRID,
            CONDITIONAL,
            "sampler=grid needs the same parameters in every trial, but hidden, k are only in",
        ),
    ],
    ids=["grid-continuous", "bruteforce-continuous", "grid-conditional"],
)
def test_a_space_the_sampler_cannot_enumerate_is_one_message_with_the_fix(
    target: str,
    configurations: dict[frozenset[tuple[str, object]], dict[str, object]] | None,
    message: str,
) -> None:
    node = OmegaConf.create({"_target_": target, "seed": 0})
    with pytest.raises(SearchSpaceError, match=re.escape(message)) as raised:
        finite_sampler(node, configurations, SPACE)
    assert "Fix: " in str(raised.value)


def test_brute_force_takes_a_conditional_space_and_other_samplers_any() -> None:
    brute = OmegaConf.create({"_target_": BRUTE_FORCE, "seed": 0})
    assert finite_sampler(brute, CONDITIONAL, SPACE) is brute
    tpe = OmegaConf.create({"_target_": "optuna.samplers.TPESampler"})
    assert finite_sampler(tpe, None, SPACE) is tpe


def test_a_grid_of_its_own_is_kept() -> None:
    own = OmegaConf.create({"_target_": GRID, "search_space": {"x": [1]}, "seed": 0})
    assert finite_sampler(own, CONDITIONAL, SPACE) is own
