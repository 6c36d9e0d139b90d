"""Checkpoints that carry the resolved config, so a model can be rebuilt from the file alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch

from lightning_args.errors import CheckpointError

CONFIG_KEY = "lightning_args"


class ConfigInCheckpoint(pl.Callback):
    """Store the run's resolved config (plain dicts and lists) in every checkpoint it saves."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config

    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        checkpoint[CONFIG_KEY] = {"config": self.config}


def config_from_checkpoint(path: str | Path) -> dict[str, Any]:
    """The resolved config stored in the checkpoint at ``path``.

    Only plain data is read (``weights_only=True``): no code in the file runs.
    """
    return _config_of(_read(path, "cpu"), path)


def load_from_checkpoint(path: str | Path, map_location: str = "cpu") -> pl.LightningModule:
    """Rebuild the LightningModule saved at ``path`` from the config it carries, with its weights.

    Example (``path`` being any ``checkpoints/*.ckpt`` of a run)::

        module = lightning_args.load_from_checkpoint("outputs/runs/<id>/checkpoints/best.ckpt")
        module.eval()
    """
    from hydra.utils import instantiate

    checkpoint = _read(path, map_location)
    module: pl.LightningModule = instantiate(_config_of(checkpoint, path)["model"], _convert_="all")
    module.load_state_dict(checkpoint["state_dict"])
    return module


def _read(path: str | Path, map_location: str) -> dict[str, Any]:
    checkpoint: dict[str, Any] = torch.load(path, map_location=map_location, weights_only=True)
    return checkpoint


def _config_of(checkpoint: dict[str, Any], path: str | Path) -> dict[str, Any]:
    try:
        config: dict[str, Any] = checkpoint[CONFIG_KEY]["config"]
    except (KeyError, TypeError):
        raise CheckpointError(
            f"checkpoint {str(path)!r} holds no lightning_args config (key {CONFIG_KEY!r}): it "
            "was not saved by a lightning_args run. Fix: load it with the module class's own "
            "load_from_checkpoint"
        ) from None
    return config
