"""The instantiate layer: module, DataModule, Trainer, optimizers and schedulers from config."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.callbacks import LearningRateMonitor
from lightning.pytorch.loggers import TensorBoardLogger
from omegaconf import DictConfig, open_dict

import lightning_args
from lightning_args.callbacks.checkpoint import BestAndLastCheckpoint
from lightning_args.demos import Classifier, CNNEncoder, DigitsDataModule, MLPEncoder
from lightning_args.instantiate.targets import locate
from lightning_args.loggers import CSVLogger

Compose = Callable[..., DictConfig]


def test_build_gives_module_datamodule_and_trainer(compose_app: Compose) -> None:
    built = lightning_args.build(compose_app("model=cnn", "logger=[csv,tensorboard]"))
    assert isinstance(built.module, Classifier)
    assert isinstance(built.module.encoder, CNNEncoder)
    assert isinstance(built.datamodule, DigitsDataModule)
    assert isinstance(built.trainer, pl.Trainer)
    kinds = {type(cb) for cb in built.trainer.callbacks}
    assert {BestAndLastCheckpoint, LearningRateMonitor} <= kinds
    assert {type(lg) for lg in built.trainer.loggers} == {
        CSVLogger,
        TensorBoardLogger,
    }  # ours: appends


class _Capture(pl.Callback):
    """Records what Lightning made of ``configure_optimizers`` when training starts."""

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.optimizer = trainer.optimizers[0]
        configs = trainer.lr_scheduler_configs
        self.scheduler = (
            {"scheduler": configs[0].scheduler, "interval": configs[0].interval} if configs else {}
        )


def _configured(compose_app: Compose, *overrides: str) -> tuple[torch.optim.Optimizer, dict]:
    built = lightning_args.build(
        compose_app("trainer.enable_progress_bar=false", "logger=[]", "callbacks=[]", *overrides)
    )
    capture = _Capture()
    built.trainer.callbacks.append(capture)
    built.trainer.fit(built.module, datamodule=built.datamodule)
    return capture.optimizer, capture.scheduler


@pytest.mark.parametrize(
    ("optimizer", "cls", "lr"),
    [
        ("adam", torch.optim.Adam, 1e-3),
        ("adamw", torch.optim.AdamW, 1e-3),
        ("sgd", torch.optim.SGD, 1e-2),
    ],
)
def test_optimizer_comes_from_config(
    compose_app: Compose, optimizer: str, cls: type, lr: float
) -> None:
    opt, scheduler = _configured(compose_app, f"optimizer={optimizer}", "scheduler=none")
    assert type(opt) is cls
    assert opt.param_groups[0]["lr"] == pytest.approx(lr)
    assert scheduler == {}


def test_cosine_horizon_is_filled_from_the_trainer(compose_app: Compose) -> None:
    # debug: 1 epoch of 5 batches -> 5 optimizer steps
    _, scheduler = _configured(compose_app, "scheduler=cosine")
    assert isinstance(scheduler["scheduler"], torch.optim.lr_scheduler.CosineAnnealingLR)
    assert scheduler["scheduler"].T_max == 5
    assert scheduler["interval"] == "step"


def test_epoch_interval_horizon_uses_max_epochs(compose_app: Compose) -> None:
    _, scheduler = _configured(
        compose_app, "scheduler=cosine", "scheduler.interval=epoch", "trainer.max_epochs=7"
    )
    assert scheduler["scheduler"].T_max == 7
    assert scheduler["interval"] == "epoch"


def test_onecycle_takes_lr_and_steps(compose_app: Compose) -> None:
    opt, scheduler = _configured(compose_app, "scheduler=onecycle", "optimizer.lr=0.01")
    assert scheduler["scheduler"].total_steps == 5
    assert opt.param_groups[0]["max_lr"] == pytest.approx(0.01)
    assert opt.param_groups[0]["initial_lr"] == pytest.approx(0.01 / 25)


def test_explicit_horizon_is_kept(compose_app: Compose) -> None:
    _, scheduler = _configured(compose_app, "scheduler=cosine", "scheduler.T_max=100")
    assert scheduler["scheduler"].T_max == 100


def test_step_scheduler_steps_per_epoch(compose_app: Compose) -> None:
    _, scheduler = _configured(compose_app, "scheduler=step", "scheduler.step_size=2")
    assert isinstance(scheduler["scheduler"], torch.optim.lr_scheduler.StepLR)
    assert scheduler["interval"] == "epoch"


def test_a_module_without_optimizer_is_told_how_to_fix_it(compose_app: Compose) -> None:
    built = lightning_args.build(compose_app("~optimizer"))
    with pytest.raises(lightning_args.ConfigValueError, match="optimizer=adamw"):
        built.module.configure_optimizers()


def test_target_that_is_not_a_module_is_refused(compose_app: Compose) -> None:
    cfg = compose_app()
    with open_dict(cfg):
        cfg.model = {"_target_": "torch.nn.Identity"}
    with pytest.raises(lightning_args.ConfigTypeError, match=r"expected a lightning\.pytorch"):
        lightning_args.build(cfg)


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("torch.optim.Adamm", "Did you mean 'Adam'?"),
        ("torchh.optim.Adam", "no module 'torchh'"),
        ("torch.optim", "not a class or function"),
        ("not a path", "is not a dotted path"),
        ("torch.optim.lr_scheduler.NoSuch", "has no attribute 'NoSuch'"),
    ],
)
def test_locate_names_what_is_wrong(target: str, message: str) -> None:
    with pytest.raises(lightning_args.TargetError, match=message):
        locate(target, "optimizer._target_")


def test_locate_reports_a_missing_dependency(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "needs_missing.py").write_text("import surely_not_installed_pkg\nclass M: ...\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(lightning_args.TargetError, match="pip install surely_not_installed_pkg"):
        locate("needs_missing.M", "model._target_")


def test_checkpoint_rebuilds_the_model_alone(compose_app: Compose, tmp_path: Path) -> None:
    cfg = compose_app("trainer.enable_progress_bar=false", "trainer.enable_model_summary=false")
    built = lightning_args.build(cfg)
    built.trainer.fit(built.module, datamodule=built.datamodule)
    path = Path(cfg.paths.run_dir) / "checkpoints" / "last.ckpt"

    restored = lightning_args.load_from_checkpoint(path)

    assert isinstance(restored, Classifier)
    assert isinstance(restored.encoder, MLPEncoder)
    x = {"image": torch.randn(4, 1, 8, 8)}
    built.module.eval()
    restored.eval()
    torch.testing.assert_close(restored(x)["logits"], built.module(x)["logits"])
    assert lightning_args.config_from_checkpoint(path)["trainer"]["max_epochs"] == 1


def test_foreign_checkpoint_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "plain.ckpt"
    torch.save({"state_dict": {}}, path)
    with pytest.raises(lightning_args.CheckpointError, match="no lightning_args config"):
        lightning_args.load_from_checkpoint(path)


def test_named_optimizers_from_config(compose_app: Compose) -> None:
    cfg = compose_app("~optimizer", "~scheduler", "trainer.gradient_clip_val=0.5")
    with open_dict(cfg):  # in YAML this is the app's (or an experiment's) config
        cfg.merge_with(
            {
                "optimizers": {
                    "body": {
                        "optimizer": {
                            "_target_": "torch.optim.Adam",
                            "lr": 0.01,
                            "betas": [0.5, 0.9],
                        },
                        "params": ["encoder"],
                    },
                    "head": {
                        "optimizer": {"_target_": "torch.optim.SGD", "lr": 0.1},
                        "params": ["head"],
                        "frequency": 2,
                        "scheduler": {"_target_": "torch.optim.lr_scheduler.CosineAnnealingLR"},
                    },
                }
            }
        )
    built = lightning_args.build(cfg)
    specs = built.module._optimization.optimizers
    assert list(specs) == ["body", "head"]
    assert specs["head"].frequency == 2
    assert specs["body"].gradient_clip_val == 0.5  # the trainer's, applied per name
    assert built.trainer.gradient_clip_val is None  # Lightning refuses it in manual mode
    built.trainer.fit(built.module, datamodule=built.datamodule)
    body, head = built.trainer.optimizers
    assert isinstance(head, torch.optim.SGD)
    assert isinstance(body, torch.optim.Adam)
    assert body.param_groups[0]["betas"] == (0.5, 0.9)
    assert built.module.opt("head").steps == 3  # 5 batches, every other one


def test_a_plain_module_is_told_the_optimizer_config_is_unused(
    compose_app: Compose, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = compose_app()
    with open_dict(cfg):
        cfg.model = {"_target_": "lightning.pytorch.demos.boring_classes.BoringModel"}
    lightning_args.build(cfg)
    assert "BoringModel is not a lightning_args.ConfiguredModule" in caplog.text
