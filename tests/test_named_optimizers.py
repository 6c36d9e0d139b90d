"""Named optimizers: parameter selection, frequency, accumulation, clipping, per-name
schedulers, and checkpoints that resume exactly, by name."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from hydra.errors import ConfigCompositionException
from lightning.pytorch.callbacks import ModelCheckpoint
from omegaconf import OmegaConf

from lightning_args import CheckpointError, ConfiguredModule, ConfigValueError, TensorBatches
from lightning_args.instantiate.optim import (
    Optimization,
    OptimizerSpec,
    SchedulerSpec,
    select_parameters,
)
from tests.conftest import quiet_trainer


class Pair(ConfiguredModule):
    """Two parts trained by two optimizers, each on its own regression target."""

    def __init__(self) -> None:
        super().__init__()
        self.first = torch.nn.Linear(2, 1)
        self.second = torch.nn.Sequential(torch.nn.Linear(2, 4), torch.nn.Linear(4, 1))

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        with self.opt("first") as first:
            first.backward(torch.nn.functional.mse_loss(self.first(x).squeeze(1), y))
        if self.opt("second").due:
            with self.opt("second") as second:
                second.backward(torch.nn.functional.mse_loss(self.second(x).squeeze(1), -y))


def _spec(lr: float = 0.1, params: tuple[str, ...] = ("*",), **kwargs: object) -> OptimizerSpec:
    return OptimizerSpec(factory=partial(torch.optim.SGD, lr=lr), params=params, **kwargs)  # type: ignore[arg-type]


def _pair(**second: object) -> Pair:
    torch.manual_seed(0)
    module = Pair()
    module.set_optimization(
        Optimization(
            {"first": _spec(params=("first",)), "second": _spec(params=("second.*",), **second)}
        )
    )
    return module


def _data(n: int = 12) -> TensorBatches:
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(n, 2, generator=generator)
    return TensorBatches((x, x.sum(1)), 2, shuffle=True, seed=3)  # 6 batches per epoch


class _StopAfterEpochs(pl.Callback):
    def __init__(self, epochs: int) -> None:
        self.epochs = epochs

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.current_epoch + 1 == self.epochs:
            trainer.should_stop = True


def _trainer(tmp_path: Path, epochs: int, **kwargs: object) -> pl.Trainer:
    return quiet_trainer(tmp_path, max_epochs=epochs, enable_checkpointing=True, **kwargs)


@pytest.mark.parametrize(
    ("patterns", "expected"),
    [
        ({"a": ("first",), "b": ("second",)}, {"a": 2, "b": 4}),
        ({"a": ("first.*",), "b": ("second.*",)}, {"a": 2, "b": 4}),
        ({"a": ("*.weight",), "b": ("*.bias",)}, {"a": 3, "b": 3}),
        ({"a": ("first", "second.0"), "b": ("second.1",)}, {"a": 4, "b": 2}),
        ({"all": ("*",)}, {"all": 6}),
    ],
)
def test_parameters_are_split_by_pattern(patterns: dict, expected: dict) -> None:
    groups = select_parameters(Pair(), patterns)
    assert {name: len(params) for name, params in groups.items()} == expected


@pytest.mark.parametrize(
    ("patterns", "message"),
    [
        (
            {"a": ("*",), "b": ("second",)},
            r"claimed by more than one optimizer: second\.0\.weight \(a, b\)",
        ),
        (
            {"a": ("first",)},
            r"claimed by no optimizer: second\.0\.weight.*Optimizers: a: \['first'\]",
        ),
        (
            {"a": ("frist",), "b": ("second",)},
            r"'frist' matches no trainable parameter\. Did you mean 'first'\?",
        ),
    ],
)
def test_bad_selections_name_parameters_and_optimizers(patterns: dict, message: str) -> None:
    with pytest.raises(ConfigValueError, match=message):
        select_parameters(Pair(), patterns)


def test_frozen_parameters_need_no_optimizer() -> None:
    module = Pair()
    module.second.requires_grad_(False)
    assert [n for n, _ in select_parameters(module, {"a": ("first",)})["a"]] == [
        "first.weight",
        "first.bias",
    ]


def test_frequency_and_accumulation(tmp_path: Path) -> None:
    module = _pair(frequency=3)
    _trainer(tmp_path, 2).fit(module, _data())
    assert module.opt("first").steps == 12  # every batch
    assert module.opt("second").steps == 4  # batches 0, 3, 6, 9

    module = _pair(accumulate=2)
    _trainer(tmp_path, 2).fit(module, _data())
    assert module.opt("second").steps == 6


def test_only_the_named_optimizer_moves_its_parameters(tmp_path: Path) -> None:
    module = _pair(frequency=1000)  # second never due after batch 0
    before = {n: p.detach().clone() for n, p in module.named_parameters()}
    _trainer(tmp_path, 1).fit(module, _data())
    second_after = dict(module.second.named_parameters())
    first_changed = not torch.equal(before["first.weight"], module.first.weight)
    assert first_changed
    assert module.opt("second").steps == 1
    assert any(not torch.equal(before[f"second.{n}"], p) for n, p in second_after.items())


def test_gradient_clipping_per_name(tmp_path: Path) -> None:
    module = _pair(gradient_clip_val=1e-3)
    start = torch.cat([p.detach().flatten() for p in module.second.parameters()])
    _trainer(tmp_path, 1, max_steps=-1, limit_train_batches=1).fit(module, _data())
    moved = torch.cat([p.detach().flatten() for p in module.second.parameters()]) - start
    assert float(moved.norm()) <= 0.1 * 1e-3 + 1e-9  # lr x clipped gradient norm


def test_per_name_schedulers(tmp_path: Path) -> None:
    step = SchedulerSpec(factory=partial(torch.optim.lr_scheduler.StepLR, step_size=1, gamma=0.5))
    module = _pair(scheduler=step, frequency=2)
    _trainer(tmp_path, 1).fit(module, _data())
    lrs = [group["lr"] for opt in module.trainer.optimizers for group in opt.param_groups]
    assert lrs == [pytest.approx(0.1), pytest.approx(0.1 * 0.5**3)]  # second stepped 3 times


def test_epoch_scheduler_steps_once_per_epoch(tmp_path: Path) -> None:
    step = SchedulerSpec(
        factory=partial(torch.optim.lr_scheduler.StepLR, step_size=1, gamma=0.5), interval="epoch"
    )
    module = _pair(scheduler=step)
    _trainer(tmp_path, 3).fit(module, _data())
    assert module.trainer.optimizers[1].param_groups[0]["lr"] == pytest.approx(0.1 * 0.5**3)


def test_resuming_from_a_mid_run_checkpoint_ends_with_the_same_weights(tmp_path: Path) -> None:
    def adam_pair() -> Pair:
        torch.manual_seed(0)
        module = Pair()
        adam = partial(torch.optim.Adam, lr=0.01)
        cosine = SchedulerSpec(
            factory=partial(torch.optim.lr_scheduler.CosineAnnealingLR, T_max=None)
        )
        module.set_optimization(
            Optimization(
                {
                    "first": OptimizerSpec(adam, ("first",), scheduler=cosine),
                    "second": OptimizerSpec(adam, ("second",), frequency=2, accumulate=2),
                }
            )
        )
        return module

    # 7 batches an epoch: "second" trains on 4 of them, then 3, so accumulation by 2 ends
    # epochs with a half-filled window.
    straight = adam_pair()
    _trainer(tmp_path / "straight", 4).fit(straight, _data(14))

    # The same 4-epoch run, interrupted after its second epoch.
    interrupted = adam_pair()
    checkpoints = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True)
    stop = _StopAfterEpochs(2)
    _trainer(tmp_path / "half", 4, callbacks=[checkpoints, stop]).fit(interrupted, _data(14))
    assert interrupted.current_epoch == 2
    resumed = adam_pair()
    _trainer(tmp_path / "resumed", 4).fit(
        resumed, _data(14), ckpt_path=tmp_path / "ckpt" / "last.ckpt"
    )

    for (name, a), (_, b) in zip(
        straight.named_parameters(), resumed.named_parameters(), strict=True
    ):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)
    assert resumed.opt("second").steps == straight.opt("second").steps == 8  # 2 + 2 a epoch


def _step_lr(gamma: float) -> SchedulerSpec:
    return SchedulerSpec(factory=partial(torch.optim.lr_scheduler.StepLR, step_size=1, gamma=gamma))


def test_checkpoint_states_follow_names_not_positions(tmp_path: Path) -> None:
    torch.manual_seed(0)
    module = Pair()
    module.set_optimization(
        Optimization(
            {
                "first": _spec(params=("first",), scheduler=_step_lr(0.5)),
                "second": _spec(params=("second",), scheduler=_step_lr(0.25)),
            }
        )
    )
    checkpoints = ModelCheckpoint(dirpath=tmp_path, save_last=True)
    _trainer(tmp_path, 1, callbacks=[checkpoints]).fit(module, _data())
    saved = torch.load(tmp_path / "last.ckpt", weights_only=True)

    swapped = Pair()
    swapped.set_optimization(
        Optimization(
            {
                "second": _spec(params=("second",), scheduler=_step_lr(0.25)),
                "first": _spec(params=("first",), scheduler=_step_lr(0.5)),
            }
        )
    )
    swapped.on_load_checkpoint(saved)
    # The first states now belong to "second": 4 parameter tensors, gamma 0.25.
    assert len(saved["optimizer_states"][0]["param_groups"][0]["params"]) == 4
    assert saved["lr_schedulers"][0]["gamma"] == 0.25

    renamed = Pair()
    renamed.set_optimization(
        Optimization({"a": _spec(params=("first",)), "b": _spec(params=("second",))})
    )
    with pytest.raises(CheckpointError, match=r"optimizers are \['first', 'second'\]"):
        renamed.on_load_checkpoint(torch.load(tmp_path / "last.ckpt", weights_only=True))


class _Joint(Pair):
    """Returns one loss over both parts: each optimizer trains its own part on it."""

    def training_step(self, batch, batch_idx):  # type: ignore[no-untyped-def]
        x, y = batch
        return torch.nn.functional.mse_loss((self.first(x) + self.second(x)).squeeze(1), y)


def test_a_returned_loss_trains_every_due_optimizer(tmp_path: Path) -> None:
    module = _Joint()
    module.set_optimization(
        Optimization(
            {"first": _spec(params=("first",)), "second": _spec(params=("second",), frequency=3)}
        )
    )
    _trainer(tmp_path, 1).fit(module, _data())
    assert module.opt("first").steps == 6
    assert module.opt("second").steps == 2
    assert all(p.grad is None for p in module.parameters())  # nothing left over


def test_a_returned_loss_needs_one_accumulation_window(tmp_path: Path) -> None:
    module = _Joint()
    module.set_optimization(
        Optimization(
            {"first": _spec(params=("first",)), "second": _spec(params=("second",), accumulate=2)}
        )
    )
    with pytest.raises(ConfigValueError, match=r"different 'accumulate' \(first: 1, second: 2\)"):
        _trainer(tmp_path, 1).fit(module, _data())


def test_unknown_name_lists_the_configured_ones(tmp_path: Path) -> None:
    module = _pair()
    _trainer(tmp_path, 1, limit_train_batches=1).fit(module, _data())
    with pytest.raises(ConfigValueError, match=r"no optimizer named 'gen'.*'first', 'second'"):
        module.opt("gen")


def test_optimizer_and_optimizers_together_are_refused() -> None:
    cfg = OmegaConf.create(
        {
            "optimizer": {"_target_": "torch.optim.SGD", "_partial_": True, "lr": 0.1},
            "scheduler": None,
            "optimizers": {"g": {"optimizer": {"_target_": "torch.optim.SGD", "_partial_": True}}},
            "trainer": {"gradient_clip_val": None, "accumulate_grad_batches": 1},
        }
    )
    with pytest.raises(ConfigValueError, match="both 'optimizer'"):
        Optimization.from_config(cfg)


def test_optimizer_presets_compose_into_named_optimizers(tmp_path: Path) -> None:
    """``- /optimizer@optimizers.<name>.optimizer: adam`` reuses a typed preset per name."""
    from hydra import compose, initialize_config_dir

    import lightning_args

    (tmp_path / "config.yaml").write_text(
        "defaults:\n"
        "  - lightning_args\n"
        "  - trainer: debug\n"
        "  - /optimizer@optimizers.body.optimizer: adam\n"
        "  - /optimizer@optimizers.head.optimizer: sgd\n"
        "  - _self_\n"
        "optimizers:\n"
        "  body: {params: [encoder]}\n"
        "  head: {params: [head], frequency: 2}\n"
        "model:\n"
        "  _target_: lightning_args.demos.Classifier\n"
        "  encoder: {_target_: lightning_args.demos.MLPEncoder, input_shape: [1, 8, 8]}\n"
        "  head: {_target_: torch.nn.Linear, _partial_: true}\n"
        "  losses:\n"
        "    ce:\n"
        "      fn: {_target_: torch.nn.functional.cross_entropy, _partial_: true}\n"
        "      input: logits\n"
        "      target: label\n"
        "data: {_target_: lightning_args.demos.DigitsDataModule}\n"
    )
    with initialize_config_dir(config_dir=str(tmp_path), version_base="1.3"):
        overrides = [f"paths.run_dir={tmp_path / 'run'}", "optimizers.body.optimizer.lr=0.01"]
        cfg = compose("config", overrides=overrides)
        with pytest.raises(ConfigCompositionException):  # still typed: typos fail at compose
            compose("config", overrides=["optimizers.body.optimizer.lrr=0.01"])
    assert OmegaConf.get_type(cfg.optimizers.body.optimizer).__name__ == "AdamConfig"
    built = lightning_args.build(cfg)
    built.trainer.fit(built.module, datamodule=built.datamodule)
    body, head = built.trainer.optimizers
    assert (type(body), type(head)) == (torch.optim.Adam, torch.optim.SGD)
    assert body.param_groups[0]["lr"] == 0.01


class _Dropped(Pair):
    """Pair with dropout: its training draws from the global generator."""

    def __init__(self) -> None:
        super().__init__()
        self.first = torch.nn.Sequential(torch.nn.Dropout(0.5), torch.nn.Linear(2, 1))


def test_resume_restores_the_random_generators(tmp_path: Path) -> None:
    from lightning_args.callbacks.rng import RandomStateInCheckpoint

    def dropped() -> _Dropped:
        torch.manual_seed(0)
        module = _Dropped()
        module.set_optimization(
            Optimization({"first": _spec(params=("first",)), "second": _spec(params=("second",))})
        )
        return module

    straight = dropped()
    _trainer(tmp_path / "straight", 4, callbacks=[RandomStateInCheckpoint()]).fit(straight, _data())
    interrupted = dropped()
    checkpoints = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True)
    callbacks = [checkpoints, _StopAfterEpochs(2), RandomStateInCheckpoint()]
    _trainer(tmp_path / "half", 4, callbacks=callbacks).fit(interrupted, _data())
    torch.manual_seed(12345)  # whatever the process drew since, the checkpoint decides
    resumed = dropped()
    _trainer(tmp_path / "resumed", 4, callbacks=[RandomStateInCheckpoint()]).fit(
        resumed, _data(), ckpt_path=tmp_path / "ckpt" / "last.ckpt"
    )
    for (name, a), (_, b) in zip(
        straight.named_parameters(), resumed.named_parameters(), strict=True
    ):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=name)


def test_random_state_round_trips_through_a_weights_only_load(tmp_path: Path) -> None:
    import random

    import numpy as np

    from lightning_args.callbacks.rng import capture, restore

    torch.save({"rng": capture()}, tmp_path / "state.pt")
    expected = (random.random(), np.random.rand(), torch.rand(1))
    restore(torch.load(tmp_path / "state.pt", weights_only=True)["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1)) == expected


def _from_config(entry: dict[str, object], **trainer: object) -> OptimizerSpec:
    """The spec ``Optimization.from_config`` makes of one ``optimizers`` entry."""
    cfg = OmegaConf.create(
        {
            "optimizer": None,
            "scheduler": None,
            "optimizers": {
                "g": {
                    "optimizer": {"_target_": "torch.optim.SGD", "_partial_": True, "lr": 0.1},
                    **entry,
                }
            },
            "trainer": {
                "gradient_clip_val": None,
                "gradient_clip_algorithm": None,
                "accumulate_grad_batches": 1,
                **trainer,
            },
        }
    )
    optimization = Optimization.from_config(cfg)
    assert optimization is not None
    return optimization.optimizers["g"]


@pytest.mark.parametrize(
    ("entry", "trainer", "clip", "accumulate"),
    [
        ({}, {}, None, 1),
        # null takes the trainer's value
        ({}, {"gradient_clip_val": 0.5, "accumulate_grad_batches": 4}, 0.5, 4),
        ({"gradient_clip_val": None, "accumulate": None}, {"gradient_clip_val": 0.5}, 0.5, 1),
        # a value of the entry's own wins, 0.0 included: no clipping for this optimizer
        ({"gradient_clip_val": 0.0}, {"gradient_clip_val": 0.5}, None, 1),
        ({"gradient_clip_val": 0.2}, {"gradient_clip_val": 0.5}, 0.2, 1),
        ({"accumulate": 2}, {"accumulate_grad_batches": 4}, None, 2),
        # the trainer's 0.0 is Lightning's "no clipping" too
        ({}, {"gradient_clip_val": 0.0}, None, 1),
    ],
)
def test_per_optimizer_clip_and_accumulate_override_the_trainer(
    entry: dict[str, object], trainer: dict[str, object], clip: float | None, accumulate: int
) -> None:
    spec = _from_config(entry, **trainer)
    assert (spec.gradient_clip_val, spec.accumulate) == (clip, accumulate)


@pytest.mark.parametrize("value", [0, -1])
def test_a_per_optimizer_accumulate_below_one_is_refused(value: int) -> None:
    """Not a fallback to the trainer's ``accumulate_grad_batches``: one message, the key."""
    with pytest.raises(ConfigValueError, match=rf"optimizers\.g\.accumulate={value} is not valid"):
        _from_config({"accumulate": value}, accumulate_grad_batches=4)


def test_a_zero_clip_leaves_that_optimizers_gradients_unclipped(tmp_path: Path) -> None:
    """``gradient_clip_val: 0.0`` on one optimizer beats the trainer's 1e-3: it trains as if
    nothing clipped it, while the trainer's value still clips an optimizer left null."""
    moves = []
    for own in (None, 0.0):
        entry = {"params": ["second.*"], "gradient_clip_val": own}
        spec = _from_config(entry, gradient_clip_val=1e-3)
        torch.manual_seed(0)
        module = Pair()
        module.set_optimization(Optimization({"first": _spec(params=("first",)), "second": spec}))
        start = torch.cat([p.detach().flatten() for p in module.second.parameters()])
        _trainer(tmp_path, 1, max_steps=-1, limit_train_batches=1).fit(module, _data())
        moved = torch.cat([p.detach().flatten() for p in module.second.parameters()]) - start
        moves.append(float(moved.norm()))
    assert moves[0] <= 0.1 * 1e-3 + 1e-9  # lr x clipped gradient norm
    assert moves[1] > 100 * moves[0]
