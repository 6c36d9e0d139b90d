"""The instantiate layer: a composed config in, a LightningModule, DataModule and Trainer out."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import lightning.pytorch as pl
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from lightning_args.callbacks.checkpoint import ConfigInCheckpoint, LoaderStateOnResume
from lightning_args.callbacks.requeue import cluster_plugins
from lightning_args.callbacks.rng import RandomStateInCheckpoint
from lightning_args.errors import ConfigTypeError
from lightning_args.instantiate.optim import Optimization
from lightning_args.instantiate.targets import check_targets
from lightning_args.modules.configured import ConfiguredModule
from lightning_args.run.checkpoint import AtomicCheckpointIO

_log = logging.getLogger(__name__)


@dataclass
class Built:
    """What :func:`build` returns."""

    module: pl.LightningModule
    datamodule: pl.LightningDataModule
    trainer: pl.Trainer


def build(cfg: DictConfig, callbacks: Sequence[pl.Callback] = ()) -> Built:
    """Instantiate the module, the DataModule and the Trainer (with callbacks and loggers).

    Every ``_target_`` is checked before anything is instantiated, so a typo fails fast with the
    key that holds it. A :class:`~lightning_args.ConfiguredModule` receives its named optimizers
    (``optimizer`` and ``scheduler``, or ``optimizers``); every checkpoint carries the resolved
    config and the random generators' states (so a resumed run draws what it would have), and
    is written atomically. ``callbacks`` join those of the config.

    Example::

        from hydra import compose, initialize
        with initialize(config_path="conf", version_base="1.3"):
            cfg = compose("config", overrides=["trainer=debug", "paths.run_dir=/tmp/run"])
        built = lightning_args.build(cfg)
        built.trainer.fit(built.module, datamodule=built.datamodule)
    """
    check_targets(cfg)
    datamodule = _instantiate(cfg.data, "data", pl.LightningDataModule)
    module = _instantiate(cfg.model, "model", pl.LightningModule)
    manual: dict[str, Any] = {}
    if isinstance(module, ConfiguredModule):
        optimization = Optimization.from_config(cfg)
        if optimization is not None:
            module.set_optimization(optimization)
        # Under manual optimization Lightning refuses both; each named optimizer applies them.
        manual = {"gradient_clip_val": None, "accumulate_grad_batches": 1}
    elif cfg.optimizer is not None or cfg.get("optimizers"):
        _log.warning(
            "%s is not a lightning_args.ConfiguredModule: it configures its own optimizers, and "
            "the config's optimizer/optimizers are not used",
            type(module).__name__,
        )

    resolved: dict[str, Any] = OmegaConf.to_container(  # type: ignore[assignment]
        cfg, resolve=True, enum_to_str=True
    )
    configured = [instantiate(node, _convert_="all") for node in cfg.callbacks.values()]
    loggers = [instantiate(node, _convert_="all") for node in cfg.logger.values()]
    trainer: pl.Trainer = instantiate(
        cfg.trainer,
        callbacks=[
            *configured,
            *callbacks,
            ConfigInCheckpoint(resolved),
            RandomStateInCheckpoint(),
            LoaderStateOnResume(),
        ],
        logger=loggers or False,
        default_root_dir=cfg.paths.run_dir,
        plugins=[AtomicCheckpointIO(), *cluster_plugins()],
        **manual,
        _convert_="all",
    )
    for logger in loggers:
        if hasattr(logger, "log_config"):  # lightning_args.loggers.MLflowLogger
            logger.log_config(resolved)
    return Built(module=module, datamodule=datamodule, trainer=trainer)


def _instantiate(node: DictConfig, key: str, expected: type[Any]) -> Any:
    obj = instantiate(node, _convert_="all")
    if not isinstance(obj, expected):
        raise ConfigTypeError(
            f"{key}._target_={node._target_!r} made a {type(obj).__name__}, expected a "
            f"{expected.__module__}.{expected.__qualname__}. Fix: point {key}._target_ at a "
            f"{expected.__name__} subclass"
        )
    return obj
