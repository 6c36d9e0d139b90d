"""``hydra.sweeper.enqueue``: configurations run first, exactly as given, checked against the
search space before any job."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml

from hydra_plugins.lightning_args_optuna._enqueue import chosen_params, enqueue
from lightning_args.errors import SearchSpaceError
from lightning_args.sweep.space import Param, parse
from tests.test_sweep_app import run_sweep, trials

SPACE = parse(
    [
        "optimizer.lr=tag(log,interval(1e-4,1e-1))",
        "model/encoder=choice(mlp,cnn)",
        "model.encoder.hidden=choice([64],[128])",
        "depth=range(1,5)",
    ],
    where="command line",
).params


def params_of(lines: list[str]) -> list[Param]:
    return list(SPACE)


@pytest.mark.parametrize(
    ("entry", "values"),
    [
        (
            ["optimizer.lr=0.003", "model/encoder=cnn"],
            {"optimizer.lr": 0.003, "model/encoder": "cnn"},
        ),
        (
            {"model.encoder.hidden": [128], "depth": 4},
            {"model.encoder.hidden": "[128]", "depth": 4},
        ),
        (["depth=2.0"], {"depth": 2}),
    ],
    ids=["overrides", "mapping", "integral-float"],
)
def test_an_entry_becomes_the_values_a_trial_holds(entry: Any, values: dict[str, Any]) -> None:
    assert chosen_params([entry], params_of) == [values]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            ["optimizer.lrr=0.003"],
            "hydra.sweeper.enqueue[0]: 'optimizer.lrr' is not a parameter of the search space: "
            "it has 'optimizer.lr'",
        ),
        (
            ["optimizer.lr=0.5"],
            "hydra.sweeper.enqueue[0]: optimizer.lr=0.5: expected a value of optimizer.lr's "
            "space, from 0.0001 to 0.1",
        ),
        (
            ["model/encoder=rnn"],
            "model/encoder=rnn: expected a value of model/encoder's space, one of mlp, cnn",
        ),
        (["depth=5"], "depth=5: expected a value of depth's space, from 1 to 4"),
        (["depth=choice(1,2)"], "depth=choice(1,2) is a sweep: expected one value per key"),
        (["depth"], "hydra.sweeper.enqueue[0]: Error parsing override 'depth'. Expected"),
        ("depth=1", "expected a list of overrides"),
    ],
    ids=[
        "unknown-key",
        "outside",
        "not-a-choice",
        "outside-range",
        "sweep",
        "no-value",
        "not-a-list",
    ],
)
def test_a_bad_entry_is_one_message_with_the_fix(entry: Any, message: str) -> None:
    with pytest.raises(SearchSpaceError, match=re.escape(message)) as raised:
        chosen_params([entry], params_of)
    assert "Fix: " in str(raised.value)


def test_a_configuration_is_queued_once_even_when_a_drawn_trial_ran_it() -> None:
    study = optuna.create_study()
    trial = study.ask()
    trial.suggest_float("optimizer.lr", 1e-4, 1e-1, log=True)  # drawn: 0.0xxx
    drawn = trial.params["optimizer.lr"]
    study.tell(trial, 0.5)
    # Exempt from the duplicate guard: the values a drawn trial ran are queued all the same...
    assert enqueue(study, [{"optimizer.lr": drawn}, {"depth": 2}]) == 2
    # ...but only once: the same command again queues nothing.
    assert enqueue(study, [{"optimizer.lr": drawn}, {"depth": 2}]) == 0
    assert len(study.get_trials(states=[optuna.trial.TrialState.WAITING])) == 2


@pytest.mark.slow
def test_queued_configurations_run_first_exactly_and_once(tmp_path: Path) -> None:
    args = (
        "+sweep=optuna",
        "-m",
        "hydra/sweeper/sampler=random",
        "hydra/sweeper/pruner=none",
        "trainer.max_epochs=1",
        # Both forms: a mapping, and a list of overrides (quoted: '=' ends a word on the line).
        'hydra.sweeper.enqueue=[{optimizer.lr:0.003,model.encoder.hidden:[256]},["optimizer.lr=0.0005"]]',
    )
    directory = run_sweep(tmp_path, *args, "hydra.sweeper.n_trials=3")
    first = trials(directory)
    assert [t.state.name for t in first] == ["COMPLETE"] * 3
    assert first[0].params["optimizer.lr"] == 0.003
    assert first[0].params["model.encoder.hidden"] == "[256]"
    assert first[1].params["optimizer.lr"] == 0.0005
    job = yaml.safe_load((directory / "0" / ".hydra" / "config.yaml").read_text())
    assert (job["optimizer"]["lr"], job["model"]["encoder"]["hidden"]) == (0.003, [256])
    # The same command again, with a larger budget: the queued ones are not queued again.
    directory = run_sweep(tmp_path, *args, "hydra.sweeper.n_trials=4")
    again = trials(directory)
    assert len(again) == 4
    assert sum(t.params["optimizer.lr"] == 0.003 for t in again) == 1
