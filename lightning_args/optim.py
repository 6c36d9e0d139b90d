"""Optimizers and schedulers from config: ``configure_optimizers``' answer, built from partials.

``optimizer`` and ``scheduler`` configs instantiate to partials (``_partial_: true``). This module
calls them with the module's parameters and the trainer's horizon, and returns the dict Lightning
expects from ``configure_optimizers``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any

import lightning.pytorch as pl
import torch
from omegaconf import DictConfig, OmegaConf

from lightning_args.config.optim import LIGHTNING_SCHEDULER_KEYS
from lightning_args.errors import ConfigValueError

OptimizerFactory = Callable[[Iterable[torch.nn.Parameter]], torch.optim.Optimizer]


@dataclass(frozen=True)
class SchedulerSpec:
    """A scheduler partial and how Lightning should step it."""

    factory: Callable[..., Any]
    interval: str = "step"
    frequency: int = 1
    monitor: str | None = None


@dataclass(frozen=True)
class Optimization:
    """What a :class:`~lightning_args.ConfiguredModule` needs to configure its optimization."""

    optimizer: OptimizerFactory
    scheduler: SchedulerSpec | None = None

    @classmethod
    def from_config(cls, optimizer: DictConfig, scheduler: DictConfig | None) -> Optimization:
        """Instantiate the ``optimizer`` and ``scheduler`` groups' configs into partials."""
        from hydra.utils import instantiate

        return cls(
            optimizer=instantiate(optimizer, _convert_="all"),
            scheduler=None if scheduler is None else _scheduler_spec(scheduler),
        )

    def configure(self, module: pl.LightningModule) -> dict[str, Any]:
        """Build the optimizer over the trainable parameters, and its scheduler."""
        params = [p for p in module.parameters() if p.requires_grad]
        optimizer = self.optimizer(params)
        if self.scheduler is None:
            return {"optimizer": optimizer}
        spec = self.scheduler
        scheduler = spec.factory(optimizer, **_horizon(spec, optimizer, module.trainer))
        lr_scheduler: dict[str, Any] = {
            "scheduler": scheduler,
            "interval": spec.interval,
            "frequency": spec.frequency,
        }
        if spec.monitor is not None:
            lr_scheduler["monitor"] = spec.monitor
        return {"optimizer": optimizer, "lr_scheduler": lr_scheduler}


def _scheduler_spec(cfg: DictConfig) -> SchedulerSpec:
    from hydra.utils import instantiate

    keys = [str(k) for k in cfg]
    own = OmegaConf.masked_copy(cfg, [k for k in keys if k in LIGHTNING_SCHEDULER_KEYS])
    rest = OmegaConf.masked_copy(cfg, [k for k in keys if k not in LIGHTNING_SCHEDULER_KEYS])
    options: dict[str, Any] = OmegaConf.to_container(own, enum_to_str=True)  # type: ignore[assignment]
    return SchedulerSpec(factory=instantiate(rest, _convert_="all"), **options)


# Scheduler arguments that mean "how long the run is". Left at None in config, they are filled
# here, when the trainer knows the number of epochs and steps.
_STEP_HORIZONS = ("T_max", "total_steps")


def _horizon(
    spec: SchedulerSpec, optimizer: torch.optim.Optimizer, trainer: pl.Trainer
) -> dict[str, Any]:
    keywords = spec.factory.keywords if isinstance(spec.factory, partial) else {}
    filled: dict[str, Any] = {}
    for key in _STEP_HORIZONS:
        if key in keywords and keywords[key] is None:
            if spec.interval == "epoch":
                if trainer.max_epochs is None or trainer.max_epochs < 0:
                    raise ConfigValueError(
                        f"scheduler.{key} is unset and trainer.max_epochs={trainer.max_epochs} "
                        f"cannot fill it. Fix: set scheduler.{key}=<epochs> or trainer.max_epochs"
                    )
                filled[key] = trainer.max_epochs
            else:
                filled[key] = max(1, int(trainer.estimated_stepping_batches))
    if "max_lr" in keywords and keywords["max_lr"] is None:
        filled["max_lr"] = [group["lr"] for group in optimizer.param_groups]
    return filled
