"""Forking a run: a new run that goes on from another run's checkpoint with some hyperparameters
changed (population-based training's exploit-and-explore step, done by hand).

    the run's checkpoint (last by default) -> judged by the trust policy, confined
    -> each change checked: only what can change mid-training
    -> a copy, <new run>/checkpoints/fork.ckpt, with the changes written into its optimizer and
       scheduler states and its config, and no checkpoint callback's state (the new run
       tracks its own best)
    -> train from it in the new run directory; its run.json records the lineage (``fork``)

Weights, optimizer and scheduler states, the loops' position and the random generators' states
all come from the checkpoint, so a fork that changes nothing trains as the original would have
gone on. What may change (:data:`FORKABLE`): an optimizer's hyperparameters (``optimizer.lr``,
``optimizer.weight_decay``, ``optimizers.<name>.optimizer.betas``...), a scheduler's
(``scheduler.eta_min``...), a loss's weight (``model.losses.<name>.weight``), the training's
length (``trainer.max_epochs``...), and ``data.batch_size`` at an epoch's end. A learning rate
under a scheduler is its base: the schedule goes on, scaled by new/old.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from lightning_args.config.optim import LIGHTNING_SCHEDULER_KEYS
from lightning_args.errors import ConfigValueError, UsageError
from lightning_args.run.record import LINEAGE

_log = logging.getLogger(__name__)

Objective = float | tuple[float, ...]

#: The checkpoint a fork starts from, in its own ``checkpoints/``.
FORK_CHECKPOINT = "fork.ckpt"
#: The keys a fork may change, as patterns (``<name>``: a name of the run's config,
#: ``<hp>``: a hyperparameter the restored optimizer or scheduler holds).
FORKABLE = (
    "optimizer.<hp>",
    "optimizers.<name>.optimizer.<hp>",
    "scheduler.<hp>",
    "optimizers.<name>.scheduler.<hp>",
    "model.losses.<name>.weight",
    "trainer.max_epochs",
    "trainer.max_steps",
    "trainer.max_time",
    "trainer.min_epochs",
    "trainer.min_steps",
    "data.batch_size",
    "test",
)
_FIXED = frozenset({"_target_", "_partial_"})


@dataclass(frozen=True)
class Forked:
    """What :func:`fork` did: the new run's directory and its objective."""

    run_dir: Path
    value: Objective


@dataclass(frozen=True)
class _Slot:
    """Where an optimizer's hyperparameters live: its index in the checkpoint's
    ``optimizer_states``, its scheduler's in ``lr_schedulers`` (``None``: it has none), and the
    config node of each."""

    optimizer: int
    scheduler: int | None
    optimizer_key: str
    scheduler_key: str


def fork(
    run_dir: str | Path,
    overrides: Sequence[str] = (),
    checkpoint: str = "last",
    out_dir: str | Path | None = None,
) -> Forked:
    """Train a new run from ``run_dir``'s ``checkpoint`` with ``overrides`` changed (see the
    module's docstring for what may change); it goes to ``out_dir`` (default:
    ``<run_dir>-fork``, ``-1``... if taken).

    Example::

        forked = lightning_args.fork(
            "outputs/runs/2026-12-03_10-00-00", ["optimizer.lr=0.01", "trainer.max_epochs=30"]
        )
        print(forked.run_dir, forked.value)
    """
    import torch

    from lightning_args._compat.lightning import at_epoch_end, drop_checkpoint_callback_states
    from lightning_args._util.atomic import atomic_write, replacing, temporary_beside
    from lightning_args.config.store import unique_dir
    from lightning_args.run.app import train
    from lightning_args.run.checkpoint import CONFIG_KEY, config_of, read_checkpoint
    from lightning_args.run.confine import confine
    from lightning_args.run.load import checkpoint_path
    from lightning_args.run.resume import log_to, record_of

    root = Path(run_dir).resolve()
    record = record_of(root)  # refuses a directory without a record, or a live run
    if record.cv:
        raise UsageError(
            f"{root.name} is a k-fold run: it trains nothing itself. Fix: fork one of its folds, "
            f"e.g. lightning-args fork {root / 'folds' / '0'}"
        )
    source = checkpoint_path(root, checkpoint, record)
    state = read_checkpoint(source, "cpu")
    cfg = OmegaConf.create(config_of(state, source, root))  # judged before anything is used
    changes = _parse(overrides)
    for key, value in changes.items():
        _apply(key, value, cfg, state, at_epoch_end(state))
    _check_left_to_train(cfg, state, root)

    target = Path(out_dir) if out_dir else Path(unique_dir(f"{root}-fork"))
    if target.exists() and any(target.iterdir()):
        raise UsageError(f"{target} exists and is not empty. Fix: --out <a new directory>")
    target.mkdir(parents=True, exist_ok=True)
    try:
        moved = OmegaConf.create(confine(_plain(cfg), target, f"checkpoint {str(source)!r}"))
        lineage = {
            "parent": str(root),
            "run": record.id,
            "checkpoint": source.name,
            "epoch": int(state.get("epoch", 0)),
            "step": int(state.get("global_step", 0)),
            "changes": {key: _plain(value) for key, value in changes.items()},
        }
        OmegaConf.update(moved, LINEAGE, lineage, merge=False)
        state[CONFIG_KEY]["config"] = _plain(moved)
        dropped = drop_checkpoint_callback_states(state)
        # As Hydra writes a run's: show, diff and runs read the fork as any run.
        atomic_write(_mkdirs(target / ".hydra") / "config.yaml", OmegaConf.to_yaml(moved))
        start = _mkdirs(target / "checkpoints") / FORK_CHECKPOINT
        tmp = temporary_beside(start)
        with replacing(start, tmp):
            torch.save(state, tmp)
            tmp.replace(start)
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)  # nothing half-made is left behind
        raise
    moved.ckpt_path = str(start)
    moved.overwrite = False
    log_to(target)
    _log.info(
        "Forking %s at epoch %d (step %d) into %s: %s%s",
        root.name,
        lineage["epoch"],
        lineage["step"],
        target,
        " ".join(overrides) or "nothing changed",
        f" (its {', '.join(dropped)} state left behind)" if dropped else "",
    )
    return Forked(target, train(moved))


def _mkdirs(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _parse(overrides: Sequence[str]) -> dict[str, Any]:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(list(overrides))
    return {override.key_or_group: override.value() for override in parsed}


def _apply(key: str, value: Any, cfg: DictConfig, state: dict[str, Any], epoch_end: bool) -> None:
    """Change ``key`` to ``value`` in ``cfg`` and, for an optimizer's or a scheduler's
    hyperparameter, in the restored states of ``state``; one message if it cannot change."""
    parts = key.split(".")
    slot = _slot_of(parts, cfg)
    if slot is not None:
        hp = parts[-1]
        on_scheduler = parts[-2] == "scheduler"
        node_key = slot.scheduler_key if on_scheduler else slot.optimizer_key
        fixed = _FIXED | (set(LIGHTNING_SCHEDULER_KEYS) if on_scheduler else set())
        if hp in fixed:
            _refuse(key, value, f"{node_key}.{hp} decides what is built, not how it trains")
        if on_scheduler:
            _set_scheduler(key, value, slot, state)
        else:
            _set_optimizer(key, value, slot, state, OmegaConf.select(cfg, node_key))
    elif not _forkable(parts, cfg, epoch_end, key, value):
        _refuse(key, value, _why_not(parts))
    OmegaConf.update(cfg, key, value, merge=False)


def _slot_of(parts: list[str], cfg: DictConfig) -> _Slot | None:
    """The optimizer (and scheduler) ``optimizer.<hp>``, ``scheduler.<hp>``,
    ``optimizers.<name>.{optimizer,scheduler}.<hp>`` name; ``None`` for any other key."""
    named = OmegaConf.select(cfg, "optimizers") or {}
    if len(parts) == 2 and parts[0] in ("optimizer", "scheduler") and not named:
        has_scheduler = OmegaConf.select(cfg, "scheduler") is not None
        return _Slot(0, 0 if has_scheduler else None, "optimizer", "scheduler")
    if len(parts) == 4 and parts[0] == "optimizers" and parts[2] in ("optimizer", "scheduler"):
        names = list(named)
        if parts[1] not in names:
            return None
        index = names.index(parts[1])
        # The checkpoint's schedulers are those of the optimizers that have one, in order.
        with_scheduler = [n for n in names if OmegaConf.select(cfg, f"optimizers.{n}.scheduler")]
        scheduler = with_scheduler.index(parts[1]) if parts[1] in with_scheduler else None
        base = f"optimizers.{parts[1]}"
        return _Slot(index, scheduler, f"{base}.optimizer", f"{base}.scheduler")
    return None


def _set_optimizer(key: str, value: Any, slot: _Slot, state: dict[str, Any], node: Any) -> None:
    hp = key.split(".")[-1]
    groups = state["optimizer_states"][slot.optimizer]["param_groups"]
    if any(hp not in group for group in groups):
        held = sorted(k for k in groups[0] if k != "params")
        _refuse(key, value, f"the restored optimizer has no {hp!r}; it holds {', '.join(held)}")
    if hp != "lr":
        for group in groups:
            group[hp] = tuple(value) if isinstance(group[hp], tuple) else value
        return
    if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
        _refuse(key, value, "a learning rate is a number above 0")
    old = OmegaConf.select(node, "lr") if node is not None else None
    # Under a scheduler the configured lr is the schedule's base: scale the schedule by new/old
    # where it is now, so it goes on as it would have from the new base.
    ratio = float(value) / float(old) if isinstance(old, int | float) and old > 0 else None
    for group in groups:
        group["lr"] = group["lr"] * ratio if ratio is not None else float(value)
        if "initial_lr" in group:
            group["initial_lr"] = group["initial_lr"] * ratio if ratio else float(value)
    if slot.scheduler is not None and ratio is not None:
        scheduler = state["lr_schedulers"][slot.scheduler]
        for name in ("base_lrs", "_last_lr"):
            if isinstance(scheduler.get(name), list):
                scheduler[name] = [float(lr) * ratio for lr in scheduler[name]]


def _set_scheduler(key: str, value: Any, slot: _Slot, state: dict[str, Any]) -> None:
    hp = key.split(".")[-1]
    if slot.scheduler is None:
        _refuse(key, value, "the run has no scheduler there")
    scheduler = state["lr_schedulers"][slot.scheduler]
    if hp not in scheduler:
        held = ", ".join(sorted(k for k in scheduler if not k.startswith("_")))
        _refuse(key, value, f"the restored scheduler has no {hp!r}; it holds {held}")
    scheduler[hp] = value


def _forkable(parts: list[str], cfg: DictConfig, epoch_end: bool, key: str, value: Any) -> bool:
    """Whether a key that is no optimizer's or scheduler's may change (config only)."""
    if key in FORKABLE:
        if key == "data.batch_size" and not epoch_end:
            _refuse(key, value, "the checkpoint is mid-epoch: the batch size changes only at "
                    "an epoch's end (fork from last.ckpt, saved there)")  # fmt: skip
        return OmegaConf.select(cfg, key) is not None or key.startswith("trainer.")
    losses = OmegaConf.select(cfg, "model.losses") or {}
    return (
        len(parts) == 4
        and parts[:2] == ["model", "losses"]
        and parts[2] in losses
        and (parts[3] == "weight")
    )


def _why_not(parts: list[str]) -> str:
    if parts[0] == "model":
        return "the model is built from it, and the checkpoint's weights fit the old one"
    return "it cannot change in the middle of a training"


def _refuse(key: str, value: Any, why: str) -> None:
    raise ConfigValueError(
        f"fork: {key}={value!r} cannot change: {why}. Forkable: {', '.join(FORKABLE)}. Fix: "
        f"drop {key}, or start a new run with it (python train.py {key}=...)"
    )


def _check_left_to_train(cfg: DictConfig, state: Mapping[str, Any], root: Path) -> None:
    from lightning_args._compat.lightning import at_epoch_end

    epochs = OmegaConf.select(cfg, "trainer.max_epochs")
    steps = OmegaConf.select(cfg, "trainer.max_steps")
    done = int(state.get("epoch", 0)) + (1 if at_epoch_end(dict(state)) else 0)
    if isinstance(steps, int) and steps > 0:
        if int(state.get("global_step", 0)) >= steps:
            raise UsageError(
                f"{root.name}'s checkpoint is at step {state.get('global_step')} of "
                f"max_steps={steps}: nothing left to train. Fix: trainer.max_steps={steps * 2}"
            )
    elif isinstance(epochs, int) and done >= epochs:
        raise UsageError(
            f"{root.name}'s checkpoint is after epoch {done} of max_epochs={epochs}: nothing "
            f"left to train. Fix: trainer.max_epochs={max(epochs, done) * 2}"
        )


def _plain(value: Any) -> Any:
    return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value
