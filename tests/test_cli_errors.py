"""Bad input on the command line: one readable message, exit code 1, no traceback, no damage."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import run_app, run_dirs, tree_digest

# Every test starts Python processes; one worker runs them all, so the finished run of the
# module's fixture is trained once.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("cli_errors")]

CASES = [
    pytest.param(
        ["trainer.max_epoch=3"],
        [
            "unknown key 'trainer.max_epoch'",
            "Did you mean 'max_epochs'?",
            "Fix: trainer.max_epochs=3",
        ],
        id="misspelled-key",
    ),
    pytest.param(
        ["trainer.max_epochs=abc"],
        [
            "wrong value for 'trainer.max_epochs'",
            "'abc' is not int",
            "Fix: trainer.max_epochs=<int>",
        ],
        id="wrong-type",
    ),
    pytest.param(
        ["objective.mode=maxx"],
        ["wrong value for 'objective.mode'", "one of: min, max"],
        id="wrong-enum",
    ),
    pytest.param(
        ["model=mpl"],
        [
            "unknown option 'mpl' for config group 'model'",
            "Did you mean 'mlp'?",
            "Available options: cnn, gan, gru_tagger, mlp, sinusoid_meta",
            "Fix: model=mlp",
        ],
        id="unknown-option",
    ),
    pytest.param(
        ["~model"],
        [
            "missing required value: model",
            "choose one of: cnn, gan, gru_tagger, mlp, sinusoid_meta",
            "Fix: set it",
            "model=cnn",
        ],
        id="missing-group",
    ),
    pytest.param(
        ["optimizer.lr=???"],
        ["missing required value: optimizer.lr", "Fix: set it", "optimizer.lr=<value>"],
        id="missing-value",
    ),
    pytest.param(
        ["model._target_=lightning_args.demos.Clasifier"],
        [
            "model._target_='lightning_args.demos.Clasifier'",
            "has no attribute 'Clasifier'",
            "Did you mean 'Classifier'?",
            "Fix: model._target_=lightning_args.demos.Classifier",
        ],
        id="unknown-target-attribute",
    ),
    pytest.param(
        ["model._target_=no_such_package.Model"],
        ["model._target_='no_such_package.Model'", "no module 'no_such_package'", "Fix:"],
        id="unknown-target-module",
    ),
    pytest.param(
        ["ckpt_path=/nonexistent/nope.ckpt"],
        ["ckpt_path='/nonexistent/nope.ckpt': no such file", "Fix: correct the path"],
        id="missing-checkpoint",
    ),
    pytest.param(
        ["ckpt_path=/etc/hostname"],
        ["checkpoint '/etc/hostname' cannot be read", "truncated, corrupt or not a checkpoint"],
        id="not-a-checkpoint",
    ),
    pytest.param(
        [
            "+sweep=optuna",
            "-m",
            "hydra.sweeper._target_=hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper",
        ],
        ["is hydra-optuna-sweeper's class", "Fix: delete the `_target_:` line"],
        id="hydra-optuna-sweeper-target",
    ),
    pytest.param(
        ["-m", "hydra/sweeper=optuna"],
        ["that is hydra-optuna-sweeper's name", "Fix: hydra/sweeper=lightning_args_optuna"],
        id="hydra-optuna-sweeper-name",
    ),
]


@pytest.fixture(scope="module")
def earlier_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace holding one finished run, as a user's would."""
    root = tmp_path_factory.mktemp("workspace")
    result = run_app("trainer=debug", cwd=root)
    assert result.returncode == 0, result.stderr
    return root


@pytest.mark.parametrize(("overrides", "expected"), CASES)
def test_bad_input_gives_one_clear_message(
    earlier_run: Path, overrides: list[str], expected: list[str]
) -> None:
    snapshot = {run: tree_digest(run) for run in run_dirs(earlier_run)}

    result = run_app(*overrides, "trainer=debug", cwd=earlier_run)

    assert result.returncode == 1
    for fragment in expected:
        assert fragment in result.stderr, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert len(result.stderr.strip().splitlines()) <= 8, result.stderr
    # Runs from before are untouched, byte for byte.
    assert {run: tree_digest(run) for run in snapshot} == snapshot


def test_full_error_env_shows_the_traceback(earlier_run: Path) -> None:
    result = run_app(
        "model._target_=no_such_package.Model",
        "trainer=debug",
        cwd=earlier_run,
        env={"HYDRA_FULL_ERROR": "1"},
    )
    assert result.returncode == 1
    assert "Traceback" in result.stderr
    assert "TargetError" in result.stderr
