"""Named optimizers and their schedulers, from config.

Every optimizer has a name. The common case, the ``optimizer`` and ``scheduler`` groups, is one
optimizer named ``default`` over all trainable parameters; ``optimizers: {generator: ...,
discriminator: ...}`` gives several, each over the parameters its ``params`` patterns select.
Configs instantiate to partials, called here with the selected parameters and, for schedulers,
the optimizer and the run's horizon.
"""

from __future__ import annotations

import fnmatch
import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import lightning.pytorch as pl
import torch
from omegaconf import DictConfig, OmegaConf

from lightning_args.config.optim import LIGHTNING_SCHEDULER_KEYS
from lightning_args.errors import ConfigValueError, suggest

OptimizerFactory = Callable[[Iterable[torch.nn.Parameter]], torch.optim.Optimizer]
DEFAULT = "default"


@dataclass(frozen=True)
class SchedulerSpec:
    """A scheduler partial and when to step it."""

    factory: Callable[..., Any]
    interval: str = "step"
    frequency: int = 1
    monitor: str | None = None


@dataclass(frozen=True)
class OptimizerSpec:
    """One named optimizer: its partial, its parameters, its scheduler and its stepping rules."""

    factory: OptimizerFactory
    params: tuple[str, ...] = ("*",)
    scheduler: SchedulerSpec | None = None
    frequency: int = 1
    accumulate: int = 1
    gradient_clip_val: float | None = None
    gradient_clip_algorithm: str = "norm"


@dataclass(frozen=True)
class Optimization:
    """Every named optimizer of a :class:`~lightning_args.ConfiguredModule`, in config order."""

    optimizers: dict[str, OptimizerSpec] = field(default_factory=dict)

    @classmethod
    def single(
        cls, optimizer: OptimizerFactory, scheduler: SchedulerSpec | None = None
    ) -> Optimization:
        """One optimizer, ``default``, over every trainable parameter."""
        return cls({DEFAULT: OptimizerSpec(factory=optimizer, scheduler=scheduler)})

    @classmethod
    def from_config(cls, cfg: DictConfig) -> Optimization | None:
        """The optimization a composed config asks for (``optimizers``, else ``optimizer``).

        The trainer's ``gradient_clip_val`` and ``accumulate_grad_batches`` become every
        optimizer's default, since Lightning applies neither under manual optimization.
        """
        from hydra.utils import instantiate

        named = cfg.get("optimizers") or {}
        if named and cfg.optimizer is not None:
            raise ConfigValueError(
                f"both 'optimizer' ({cfg.optimizer._target_}) and 'optimizers' "
                f"({', '.join(named)}) are set: expected one of them. Fix: drop the group "
                "with ~optimizer (and ~scheduler), or empty optimizers"
            )
        if not named:
            if cfg.optimizer is None:
                return None
            named = {DEFAULT: {"optimizer": cfg.optimizer, "scheduler": cfg.scheduler}}
        clip, accumulate = cfg.trainer.gradient_clip_val, cfg.trainer.accumulate_grad_batches
        specs = {}
        for name, entry in named.items():
            scheduler = entry.get("scheduler")
            specs[str(name)] = OptimizerSpec(
                factory=instantiate(entry["optimizer"], _partial_=True, _convert_="all"),
                params=tuple(entry.get("params", ("*",))),
                scheduler=None if scheduler is None else _scheduler_spec(scheduler),
                frequency=_positive(entry.get("frequency", 1), f"optimizers.{name}.frequency"),
                accumulate=_positive(
                    _own_or(entry.get("accumulate"), accumulate), f"optimizers.{name}.accumulate"
                ),
                gradient_clip_val=_clip(_own_or(entry.get("gradient_clip_val"), clip)),
                gradient_clip_algorithm=entry.get(
                    "gradient_clip_algorithm", cfg.trainer.gradient_clip_algorithm or "norm"
                ),
            )
        return cls(specs)

    def configure(self, module: pl.LightningModule) -> list[dict[str, Any]]:
        """``configure_optimizers``' answer: one dict per name, in config order."""
        groups = select_parameters(module, {n: s.params for n, s in self.optimizers.items()})
        configured = []
        for name, spec in self.optimizers.items():
            optimizer = spec.factory([p for _, p in groups[name]])
            entry: dict[str, Any] = {"optimizer": optimizer}
            if spec.scheduler is not None:
                sched = spec.scheduler
                horizon = _horizon(sched, optimizer, spec, module.trainer)
                lr_scheduler: dict[str, Any] = {
                    "scheduler": sched.factory(optimizer, **horizon),
                    "interval": sched.interval,
                    "frequency": sched.frequency,
                }
                if len(self.optimizers) > 1:
                    lr_scheduler["name"] = f"lr-{name}"
                if sched.monitor is not None:
                    lr_scheduler["monitor"] = sched.monitor
                entry["lr_scheduler"] = lr_scheduler
            configured.append(entry)
        return configured


def select_parameters(
    module: torch.nn.Module, patterns: dict[str, tuple[str, ...]]
) -> dict[str, list[tuple[str, torch.nn.Parameter]]]:
    """Split the trainable parameters of ``module`` between named optimizers.

    A pattern with ``*``, ``?`` or ``[`` is a glob over parameter names; any other pattern is an
    attribute path and selects that parameter or every parameter under that submodule. Each
    trainable parameter must be selected by exactly one name.

    >>> net = torch.nn.Sequential(torch.nn.Linear(1, 1), torch.nn.Linear(1, 1))
    >>> groups = select_parameters(net, {"first": ("0",), "rest": ("1.*",)})
    >>> {name: [p for p, _ in params] for name, params in groups.items()}
    {'first': ['0.weight', '0.bias'], 'rest': ['1.weight', '1.bias']}
    """
    trainable = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
    owners: dict[str, list[str]] = {n: [] for n, _ in trainable}
    for name, globs in patterns.items():
        for pattern in globs:
            matched = [n for n in owners if _matches(n, pattern)]
            if not matched:
                top = sorted({n.split(".")[0] for n in owners})
                raise ConfigValueError(
                    f"optimizers.{name}.params: {pattern!r} matches no trainable parameter."
                    f"{suggest(pattern, top)} Expected a glob or an attribute path; top-level "
                    f"names: {', '.join(top)}. Fix: correct the pattern"
                )
            for n in matched:
                if name not in owners[n]:
                    owners[n].append(name)
    shared = {n: names for n, names in owners.items() if len(names) > 1}
    if shared:
        listed = "; ".join(f"{n} ({', '.join(names)})" for n, names in list(shared.items())[:8])
        raise ConfigValueError(
            f"{len(shared)} parameter(s) claimed by more than one optimizer: {listed}. Expected "
            "each parameter in one optimizer. Fix: make the optimizers' params disjoint"
        )
    unclaimed = [n for n, names in owners.items() if not names]
    if unclaimed:
        claims = "; ".join(f"{name}: {list(globs)}" for name, globs in patterns.items())
        raise ConfigValueError(
            f"{len(unclaimed)} trainable parameter(s) claimed by no optimizer: "
            f"{', '.join(unclaimed[:8])}{' ...' if len(unclaimed) > 8 else ''}. Optimizers: "
            f"{claims}. Fix: add a pattern for them, or freeze them (requires_grad=False)"
        )
    groups: dict[str, list[tuple[str, torch.nn.Parameter]]] = {name: [] for name in patterns}
    for n, p in trainable:
        groups[owners[n][0]].append((n, p))
    return groups


def _matches(parameter: str, pattern: str) -> bool:
    if any(c in pattern for c in "*?["):
        return fnmatch.fnmatchcase(parameter, pattern)
    return parameter == pattern or parameter.startswith(pattern + ".")


def _own_or(own: Any, trainer: Any) -> Any:
    """An optimizer's own setting, or the trainer's where it is null (not where it is 0)."""
    return trainer if own is None else own


def _clip(value: float | None) -> float | None:
    """``gradient_clip_val``: ``None`` for no clipping, which 0 means too (as in Lightning)."""
    return None if value is None or value == 0 else value


def _positive(value: Any, key: str) -> int:
    if not isinstance(value, int) or value < 1:
        raise ConfigValueError(f"{key}={value!r} is not valid: expected an integer >= 1")
    return value


def _scheduler_spec(cfg: DictConfig) -> SchedulerSpec:
    from hydra.utils import instantiate

    keys = [str(k) for k in cfg]
    own = OmegaConf.masked_copy(cfg, [k for k in keys if k in LIGHTNING_SCHEDULER_KEYS])
    rest = OmegaConf.masked_copy(cfg, [k for k in keys if k not in LIGHTNING_SCHEDULER_KEYS])
    options: dict[str, Any] = OmegaConf.to_container(own, enum_to_str=True)  # type: ignore[assignment]
    return SchedulerSpec(factory=instantiate(rest, _partial_=True, _convert_="all"), **options)


# Scheduler arguments that mean "how long the run is". Left unset (or null) in config, they are
# filled here, when the trainer knows the number of epochs and steps.
_HORIZONS = ("T_max", "total_steps")


def _horizon(
    sched: SchedulerSpec, optimizer: torch.optim.Optimizer, spec: OptimizerSpec, trainer: pl.Trainer
) -> dict[str, Any]:
    keywords = sched.factory.keywords if isinstance(sched.factory, partial) else {}
    accepted = inspect.signature(sched.factory).parameters
    filled: dict[str, Any] = {}
    for key in _HORIZONS:
        if key not in accepted or keywords.get(key) is not None:
            continue
        if sched.interval == "epoch":
            if trainer.max_epochs is None or trainer.max_epochs < 0:
                raise ConfigValueError(
                    f"scheduler.{key} is unset and trainer.max_epochs={trainer.max_epochs} "
                    f"cannot fill it. Fix: set scheduler.{key}=<epochs> or trainer.max_epochs"
                )
            filled[key] = trainer.max_epochs
        else:
            # Optimizer steps in the whole run: batches, thinned by frequency and accumulation.
            batches = int(trainer.estimated_stepping_batches)
            filled[key] = max(1, batches // (spec.frequency * spec.accumulate))
    if "max_lr" in accepted and keywords.get("max_lr") is None:
        filled["max_lr"] = [group["lr"] for group in optimizer.param_groups]
    return filled
