"""lightning-hydra-template's ``hparams_search/mnist_optuna.yaml``, copied into the example app
(``conf/hparams_search/``) with only its sweeper's name, its ``_target_`` line, its metric and its
``params`` keys changed, runs as ``python train.py +hparams_search=mnist_optuna``: its
``hydra.mode: MULTIRUN`` makes it a sweep without ``-m``. (With the ``_target_`` line kept, the
one message saying to delete it is a row of tests/test_error_boundary.py.)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from omegaconf import DictConfig, OmegaConf

from tests.helpers import REPO, read_record, run_app

SEARCH = REPO / "conf" / "hparams_search" / "mnist_optuna.yaml"


def _params() -> dict[str, str]:
    params: dict[str, str] = yaml.safe_load(SEARCH.read_text())["hydra"]["sweeper"]["params"]
    return params


def test_the_params_keys_are_the_apps(compose_app: Callable[..., DictConfig]) -> None:
    cfg = compose_app()
    for key in _params():
        assert OmegaConf.select(cfg, key, default="<absent>") != "<absent>", key


def test_the_key_check_sees_a_template_key(compose_app: Callable[..., DictConfig]) -> None:
    # Control: the template's own key is no key of this app.
    assert OmegaConf.select(compose_app(), "model.net.lin1_size", default="<absent>") == "<absent>"


def test_only_the_documented_lines_differ_from_the_template() -> None:
    text = SEARCH.read_text()
    assert "override /hydra/sweeper: lightning_args_optuna" in text
    assert "_target_: hydra_plugins" not in text.split("hydra:\n", 1)[1]
    assert "optimized_metric" not in yaml.safe_load(text)
    assert yaml.safe_load(text)["objective"] == {"metric": "val/acc"}
    assert yaml.safe_load(text)["hydra"]["mode"] == "MULTIRUN"


@pytest.mark.slow
def test_it_runs_as_a_sweep_without_dash_m(tmp_path: Path) -> None:
    result = run_app(
        "+hparams_search=mnist_optuna",
        "hydra.sweeper.n_trials=2",
        "trainer=cpu",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=3",
        "trainer.limit_val_batches=2",
        "test=false",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (sweep,) = (tmp_path / "outputs" / "sweeps").iterdir()
    trials = sorted(p for p in sweep.iterdir() if p.is_dir() and p.name.isdigit())
    assert [p.name for p in trials] == ["0", "1"]
    for trial in trials:
        record = read_record(trial)
        assert record["status"] == "completed"
        assert record["objective"]["metric"] == "val/acc"
        overrides = " ".join(record["overrides"])
        for key in _params():
            assert f"{key}=" in overrides, (key, overrides)
