"""Configs read back from files build only allowed targets: a tampered checkpoint is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import lightning_args
from lightning_args.checkpoint import CONFIG_KEY
from lightning_args.trust import ENV, check_trusted


def _tampered(tmp_path: Path, config: dict) -> Path:
    path = tmp_path / "tampered.ckpt"
    torch.save({"state_dict": {}, CONFIG_KEY: {"config": config}}, path)
    return path


@pytest.mark.parametrize(
    ("config", "key"),
    [
        ({"model": {"_target_": "os.system", "_args_": ["touch {marker}"]}}, "model._target_"),
        (
            {
                "model": {
                    "_target_": "lightning_args.demos.Classifier",
                    "encoder": {"_target_": "subprocess.run", "args": ["touch", "{marker}"]},
                }
            },
            "model.encoder._target_",
        ),
        (
            {"model": {"_target_": "builtins.eval", "_args_": ["open('{marker}', 'w')"]}},
            "model._target_",
        ),
    ],
)
def test_a_malicious_target_is_refused_and_never_runs(
    tmp_path: Path, config: dict, key: str
) -> None:
    marker = tmp_path / "pwned"
    filled = json.loads(json.dumps(config).replace("{marker}", str(marker)))
    path = _tampered(tmp_path, filled)
    with pytest.raises(lightning_args.UntrustedTargetError, match=rf"asks to build {key}="):
        lightning_args.load_from_checkpoint(path)
    assert not marker.exists()
    # also a PermissionError, for callers that know only the builtins
    with pytest.raises(PermissionError):
        lightning_args.config_from_checkpoint(path)


def test_the_refusal_says_how_to_allow_a_trusted_package(tmp_path: Path) -> None:
    config = {"model": {"_target_": "my_models.Net"}}
    with pytest.raises(lightning_args.UntrustedTargetError) as refused:
        check_trusted(config, "checkpoint 'x.ckpt'")
    message = str(refused.value)
    assert "my_models.Net" in message
    assert "allow_targets('my_models.')" in message
    assert f"{ENV}=my_models." in message


def test_allowed_packages_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    check_trusted({"model": {"_target_": "lightning_args.demos.GAN"}}, "x")
    monkeypatch.setenv(ENV, "my_models, other_pkg.")
    check_trusted({"model": {"_target_": "my_models.Net", "a": {"_target_": "other_pkg.f"}}}, "x")
    with pytest.raises(lightning_args.UntrustedTargetError):
        check_trusted({"model": {"_target_": "my_modelsX.Net"}}, "x")
