"""The ``optimizer`` and ``scheduler`` groups.

Both are *partials*: instantiating an optimizer config gives ``functools.partial(torch.optim.AdamW,
lr=..., ...)``, which :class:`lightning_args.ConfiguredModule` calls with its parameters, and a
scheduler config gives a partial that is called with the optimizer. A module therefore never
hand-writes ``configure_optimizers`` for the common case.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from omegaconf import MISSING


@dataclass
class OptimizerConfig:
    """Any ``torch.optim.Optimizer``: ``_target_`` plus its keyword arguments."""

    _target_: str = MISSING
    _partial_: bool = True
    lr: float = 1e-3
    weight_decay: float = 0.0


@dataclass
class AdamConfig(OptimizerConfig):
    """``torch.optim.Adam``."""

    _target_: str = "torch.optim.Adam"
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    amsgrad: bool = False


@dataclass
class AdamWConfig(AdamConfig):
    """``torch.optim.AdamW`` with decoupled weight decay (the default optimizer)."""

    _target_: str = "torch.optim.AdamW"
    weight_decay: float = 1e-2


@dataclass
class SGDConfig(OptimizerConfig):
    """``torch.optim.SGD`` with momentum."""

    _target_: str = "torch.optim.SGD"
    lr: float = 1e-2
    momentum: float = 0.9
    dampening: float = 0.0
    nesterov: bool = False


class Interval(str, Enum):
    """When Lightning steps a scheduler."""

    step = "step"
    epoch = "epoch"


# Scheduler keys that configure *how Lightning steps* the scheduler rather than the scheduler
# itself; they are removed before the scheduler is instantiated.
LIGHTNING_SCHEDULER_KEYS = ("interval", "frequency", "monitor")


@dataclass
class SchedulerConfig:
    """Any ``torch.optim.lr_scheduler`` class, and how Lightning steps it.

    ``interval`` is ``"step"`` or ``"epoch"``; ``monitor`` names the metric a
    ``ReduceLROnPlateau`` watches. Horizon fields left at ``None`` (``T_max``, ``total_steps``)
    are filled from the trainer when training starts, so ``trainer.max_epochs=3`` is enough to
    shorten a cosine schedule.
    """

    _target_: str = MISSING
    _partial_: bool = True
    interval: Interval = Interval.step
    frequency: int = 1
    monitor: str | None = None


@dataclass
class CosineSchedulerConfig(SchedulerConfig):
    """Cosine annealing from the optimizer's ``lr`` to ``eta_min`` over the whole run."""

    _target_: str = "torch.optim.lr_scheduler.CosineAnnealingLR"
    T_max: int | None = None
    eta_min: float = 0.0


@dataclass
class StepSchedulerConfig(SchedulerConfig):
    """Multiply the learning rate by ``gamma`` every ``step_size`` epochs."""

    _target_: str = "torch.optim.lr_scheduler.StepLR"
    interval: Interval = Interval.epoch
    step_size: int = 10
    gamma: float = 0.1


@dataclass
class OneCycleSchedulerConfig(SchedulerConfig):
    """The 1cycle policy; ``max_lr`` defaults to the optimizer's ``lr``."""

    _target_: str = "torch.optim.lr_scheduler.OneCycleLR"
    max_lr: float | None = None
    total_steps: int | None = None
    pct_start: float = 0.3
    anneal_strategy: str = "cos"
    div_factor: float = 25.0
    final_div_factor: float = 1e4


@dataclass
class NamedOptimizerConfig:
    """One entry of ``optimizers``: an optimizer over some of the module's parameters.

    ``params`` selects parameters by name: a glob (``"generator.*"``, ``"*.bias"``) or an attribute
    path (``"generator"``, i.e. that submodule's parameters). Every trainable parameter must be
    claimed by exactly one optimizer. The optimizer steps on every ``frequency``-th training
    batch (``frequency: 5`` for a generator that steps once per 5 critic steps), after
    ``accumulate`` backward passes; ``gradient_clip_val`` / ``accumulate`` left null take the
    trainer's ``gradient_clip_val`` / ``accumulate_grad_batches``. ``gradient_clip_val: 0.0``
    turns clipping off for this optimizer whatever the trainer's; ``accumulate`` is at least 1.
    """

    # Any: a plain ``{_target_: torch.optim.Adam, betas: [0.5, 0.9]}``, or an option of the
    # ``optimizer`` group (``- /optimizer@optimizers.generator.optimizer: adam``), typed as such.
    optimizer: Any = MISSING
    params: list[str] = field(default_factory=lambda: ["*"])
    scheduler: Any = None
    frequency: int = 1
    accumulate: int | None = None
    gradient_clip_val: float | None = None
    gradient_clip_algorithm: str = "norm"
