"""The config groups: every option composes, is typed, and fails early on bad values."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hydra.errors import ConfigCompositionException
from omegaconf import DictConfig, OmegaConf

from lightning_args import config as c
from lightning_args.config.store import ADDED_GROUPS, GROUPS, MULTI_GROUPS

Compose = Callable[..., DictConfig]

OPTIONS = [
    (group, name, node) for group, options in GROUPS.items() for name, node in options.items()
] + [
    (f"+{group}", name, node)
    for group, options in ADDED_GROUPS.items()
    for name, node in options.items()
]


@pytest.mark.parametrize(
    ("group", "name", "schema"), OPTIONS, ids=[f"{g}={n}" for g, n, _ in OPTIONS]
)
def test_every_option_composes_with_its_schema(
    compose_app: Compose, group: str, name: str, schema: type[Any]
) -> None:
    cfg = compose_app(f"{group}={name}")
    assert OmegaConf.get_type(cfg[group.removeprefix("+")]) is schema


@pytest.mark.parametrize(
    ("override", "key", "expected"),
    [
        ("trainer=cpu", "trainer.accelerator", "cpu"),
        ("trainer=gpu", "trainer.precision", "bf16-mixed"),
        ("trainer=ddp", "trainer.strategy", "ddp"),
        ("trainer=debug", "trainer.limit_train_batches", 5),
        ("optimizer=sgd", "optimizer._target_", "torch.optim.SGD"),
        ("optimizer=adam", "optimizer._target_", "torch.optim.Adam"),
        ("optimizer=adamw", "optimizer.weight_decay", 0.01),
        ("scheduler=none", "scheduler", None),
        ("scheduler=cosine", "scheduler.T_max", None),
        ("scheduler=step", "scheduler.interval", c.optim.Interval.epoch),
        ("scheduler=onecycle", "scheduler._target_", "torch.optim.lr_scheduler.OneCycleLR"),
        ("model=cnn", "model.encoder.channels", [32, 64]),
        ("model/encoder=cnn", "model.encoder._target_", "lightning_args.demos.CNNEncoder"),
        ("model/head=mlp", "model.head.hidden", 64),
        ("model=cnn model/encoder=mlp", "model.encoder.hidden", [256]),
        ("data.batch_size=8", "data.batch_size", 8),
        ("trainer.limit_val_batches=0.5", "trainer.limit_val_batches", 0.5),
        ("trainer.limit_val_batches=3", "trainer.limit_val_batches", 3),
    ],
)
def test_presets_and_overrides(
    compose_app: Compose, override: str, key: str, expected: Any
) -> None:
    assert OmegaConf.select(compose_app(*override.split()), key) == expected


@pytest.mark.parametrize(
    "override",
    [
        "trainer.max_epoch=3",
        "trainer.max_epochs=abc",
        "optimizer.lr=fast",
        "objective.mode=up",
        "scheduler=cosine scheduler.interval=daily",
        "model.encoder.hiden=[3]",
        "model.encoder.hidden=[a]",
        "model/encoder=rnn",
        "model.losses.ce.weight=heavy",
        "data.batch_size=1.5",
        "model=mpl",
    ],
)
def test_bad_overrides_fail_at_compose_time(compose_app: Compose, override: str) -> None:
    with pytest.raises(ConfigCompositionException):
        compose_app(*override.split())


def test_loggers_and_callbacks_are_chosen_together(compose_app: Compose) -> None:
    cfg = compose_app("logger=[csv,tensorboard]", "callbacks=[checkpoint,early_stopping]")
    assert set(cfg.logger) == {"csv", "tensorboard"}
    assert "mlflow" in MULTI_GROUPS["logger"]  # an option, not chosen here
    assert set(cfg.callbacks) == {"checkpoint", "early_stopping"}
    assert OmegaConf.get_type(cfg.logger.tensorboard) is c.TensorBoardLoggerConfig


def test_callbacks_follow_the_objective(compose_app: Compose) -> None:
    cfg = compose_app(
        "objective.metric=val/loss", "objective.mode=min", "+callbacks=early_stopping"
    )
    for name in ("checkpoint", "early_stopping"):
        assert cfg.callbacks[name].monitor == "val/loss"
        assert cfg.callbacks[name].mode == "min"


def test_everything_writes_into_the_run_directory(compose_app: Compose) -> None:
    cfg = compose_app("logger=[csv,tensorboard]")
    run_dir = cfg.paths.run_dir
    assert cfg.callbacks.checkpoint.dirpath == f"{run_dir}/checkpoints"
    assert cfg.logger.csv.save_dir == run_dir
    assert cfg.logger.tensorboard.save_dir == run_dir
