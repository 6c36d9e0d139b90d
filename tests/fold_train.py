"""A stand-in for ``lightning_args.train`` that k-fold worker processes import by name: small, so a
worker does not import torch, Lightning or the test modules to unpickle it."""

from __future__ import annotations

from omegaconf import DictConfig

from lightning_args.errors import ConfigValueError


def fail_on_fold_one(cfg: DictConfig) -> float:
    if cfg.cv.fold == 1:
        raise ConfigValueError("optimizer.lr=-1: expected a positive learning rate")
    print(f"fold {cfg.cv.fold} trains")
    return float(cfg.cv.fold)
