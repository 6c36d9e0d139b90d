"""``compile.enabled=true``: the module's forward compiled by ``torch.compile``, on CPU."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from hydra import compose, initialize_config_dir

import lightning_args
from lightning_args._compat.torch import is_compiled
from lightning_args.demos.classifiers import Classifier
from lightning_args.errors import ConfigValueError
from lightning_args.run.preflight import preflight
from tests.helpers import CONF, one_thread, train_in_process

EPOCHS = ("trainer=cpu", "trainer.max_epochs=5")


def _test_acc(run: Path) -> float:
    return float(json.loads((run / "run.json").read_text())["metrics"]["test/acc"])


@pytest.mark.slow  # inductor compiles in worker processes of its own
def test_a_compiled_run_trains_as_the_eager_one_and_loads_without_compiling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    compiling: list[bool] = []  # for each call of forward: whether torch.compile traced it
    forward = Classifier.forward

    def traced(self: Classifier, batch: Any) -> Any:
        compiling.append(torch.compiler.is_compiling())
        return forward(self, batch)

    monkeypatch.setattr(Classifier, "forward", traced)
    with one_thread():
        eager = train_in_process(tmp_path / "eager", *EPOCHS)
        assert compiling
        assert not any(compiling)  # the control: eager, nothing traced
        compiling.clear()
        compiled = train_in_process(tmp_path / "compiled", *EPOCHS, "compile.enabled=true")
        assert any(compiling)
    assert _test_acc(compiled) == pytest.approx(_test_acc(eager), abs=0.02)
    assert _test_acc(compiled) > 0.85  # it trained
    state = torch.load(compiled / "checkpoints" / "best.ckpt", weights_only=True)["state_dict"]
    assert not any("_orig_mod" in key for key in state)  # the module's own weight names
    loaded = lightning_args.load_run(compiled)
    assert not is_compiled(loaded.module)
    batch = {loaded.module.input_key: torch.zeros(3, 64)}
    assert loaded.module(batch)["logits"].shape == (3, 10)  # it runs, eagerly


def test_an_unknown_compile_mode_is_refused_before_the_run() -> None:
    lightning_args.register()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=["compile.mode=fast", "paths.run_dir=unused"])
    with pytest.raises(ConfigValueError) as error:
        preflight(cfg)
    assert str(error.value) == (
        "compile.mode='fast': expected one of default, reduce-overhead, max-autotune, "
        "max-autotune-no-cudagraphs, or null. Fix: compile.mode=default"
    )


def test_compile_keeps_trainer_to_the_trainers_own_arguments() -> None:
    lightning_args.register()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=["compile.enabled=true", "compile.dynamic=false"])
    assert "compile" not in cfg.trainer
    assert (cfg.compile.enabled, cfg.compile.dynamic, cfg.compile.fullgraph) == (True, False, False)
