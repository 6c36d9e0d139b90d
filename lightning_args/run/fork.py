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
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from lightning_args._util.flat import flatten
from lightning_args.config.objective import Objective
from lightning_args.config.optim import LIGHTNING_SCHEDULER_KEYS
from lightning_args.errors import ConfigValueError, UsageError

_log = logging.getLogger(__name__)


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
    "trainer.enable_progress_bar",
    "trainer.enable_model_summary",
    "data.batch_size",
    "test",
)
_FIXED = frozenset({"_target_", "_partial_"})


def _fixed(node: str) -> frozenset[str]:
    """The keys of an ``optimizer`` or ``scheduler`` node that decide what is built (and, for a
    scheduler, how Lightning steps it), not how it trains."""
    return _FIXED | frozenset(LIGHTNING_SCHEDULER_KEYS) if node == "scheduler" else _FIXED


@dataclass(frozen=True)
class Forked:
    """What :func:`lightning_args.fork` did: the new run's directory and its objective."""

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


@dataclass
class Plan:
    """A fork worked out: the parent's checkpoint with the changes written into it (not saved
    yet) and the lineage the new run's record keeps."""

    state: dict[str, Any]
    changes: dict[str, Any]
    lineage: dict[str, Any]
    dropped: list[str]


def plan(cfg: DictConfig, state: dict[str, Any] | None = None) -> Plan:
    """Fork ``cfg.fork.parent``'s checkpoint (``state``, when the caller read it already) into
    the run ``cfg`` describes: every key whose resolved value differs from the parent's
    checkpoint config is a change, checked and written into the restored states (in memory).
    One message for a change that cannot be made, for a parent that is still running, and for a
    fork with nothing left to train."""
    from lightning_args._compat.lightning import at_epoch_end, drop_checkpoint_callback_states
    from lightning_args.run.checkpoint import CONFIG_KEY, config_of, read_checkpoint
    from lightning_args.run.load import checkpoint_path
    from lightning_args.run.record import record_of

    root = Path(str(cfg.fork.parent)).resolve()
    record = record_of(root)  # refuses a directory without a record, or a live run
    if record.cv:
        raise UsageError(
            f"{root.name} is a k-fold run: it trains nothing itself. Fix: fork one of its folds, "
            f"e.g. fork.parent={root / 'folds' / '0'}"
        )
    source = checkpoint_path(root, str(cfg.fork.checkpoint), record)
    state = read_checkpoint(source, "cpu") if state is None else state
    parent = OmegaConf.create(config_of(state, source, root))  # judged before anything is used
    wanted = _plain(cfg)
    changes = _differences(flatten(_plain(parent)), flatten(wanted))
    epoch_end = at_epoch_end(state)
    for key, value in changes.items():
        _apply(key, value, parent, state, epoch_end)
    _check_left_to_train(parent, state, epoch_end, root)
    state[CONFIG_KEY]["config"] = wanted
    lineage = {
        "parent": str(root),
        "run": record.id,
        "checkpoint": source.name,
        "epoch": int(state.get("epoch", 0)),
        "step": int(state.get("global_step", 0)),
        "changes": changes,
    }
    return Plan(state, changes, lineage, drop_checkpoint_callback_states(state))


def start_fork(cfg: DictConfig, run_dir: Path) -> tuple[str, dict[str, Any]]:
    """Write ``run_dir/checkpoints/fork.ckpt`` for the fork ``cfg`` asks for (:func:`plan`);
    return its path, to train from, and the lineage for the run's record."""
    import torch

    from lightning_args._util.atomic import replacing, temporary_beside

    planned = plan(cfg)
    start = _mkdirs(run_dir / "checkpoints") / FORK_CHECKPOINT
    tmp = temporary_beside(start)
    with replacing(start, tmp):
        torch.save(planned.state, tmp)
        tmp.replace(start)
    _log.info(
        "Forked from %s at epoch %d (step %d): %s%s",
        planned.lineage["parent"],
        planned.lineage["epoch"],
        planned.lineage["step"],
        " ".join(f"{k}={v}" for k, v in planned.changes.items()) or "nothing changed",
        "; it tracks its own best checkpoint" if planned.dropped else "",
    )
    return str(start), planned.lineage


#: Keys that differ between a fork and its parent by construction: where each run writes, how
#: it starts, the lineage itself.
_OWN = ("paths.", "fork.", "ckpt_path", "overwrite")


def _differences(parent: dict[str, Any], wanted: dict[str, Any]) -> dict[str, Any]:
    from lightning_args.run.confine import FILE_NAME_KEYS, RUN_PATH_KEYS, shared_stores

    # Where a run writes, and the machine's shared stores (the data cache, MLflow's), which a
    # config read back is pointed at anew: no change to how it trains.
    own = RUN_PATH_KEYS | FILE_NAME_KEYS | shared_stores().keys()
    return {
        key: value
        for key in sorted(parent.keys() | wanted.keys())
        if not key.startswith(_OWN) and key.split(".")[-1] not in own
        if (value := wanted.get(key, _ABSENT)) != parent.get(key, _ABSENT)
    }


_ABSENT = object()


def is_forkable_key(key: str) -> bool:
    """Whether ``key`` has the form of what a fork may change (:data:`FORKABLE`); whether the
    run's optimizer or scheduler holds it is known only from its checkpoint.

    Example:
        >>> keys = ("optimizer.lr", "model.encoder.hidden", "scheduler.interval")
        >>> [is_forkable_key(k) for k in keys]
        [True, False, False]
    """
    parts = key.split(".")
    if key in FORKABLE:
        return True
    if len(parts) == 2 and parts[0] in ("optimizer", "scheduler"):
        return parts[1] not in _fixed(parts[0])
    if len(parts) == 4 and parts[0] == "optimizers" and parts[2] in ("optimizer", "scheduler"):
        return parts[3] not in _fixed(parts[2])
    return len(parts) == 4 and parts[:2] == ["model", "losses"] and parts[3] == "weight"


def _mkdirs(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _apply(key: str, value: Any, cfg: DictConfig, state: dict[str, Any], epoch_end: bool) -> None:
    """Change ``key`` to ``value`` in ``cfg`` and, for an optimizer's or a scheduler's
    hyperparameter, in the restored states of ``state``; one message if it cannot change."""
    if value is _ABSENT:
        _refuse(key, None, "the fork's config lacks it")
    parts = key.split(".")
    slot = _slot_of(parts, cfg)
    if slot is not None:
        hp = parts[-1]
        on_scheduler = parts[-2] == "scheduler"
        node_key = slot.scheduler_key if on_scheduler else slot.optimizer_key
        if hp in _fixed(parts[-2]):
            _refuse(key, value, f"{node_key}.{hp} decides what is built, not how it trains")
        if on_scheduler:
            _set_scheduler(key, value, slot, state)
        else:
            _set_optimizer(key, value, slot, state, OmegaConf.select(cfg, node_key))
    elif not _forkable(key, value, cfg, epoch_end):
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


def _forkable(key: str, value: Any, cfg: DictConfig, epoch_end: bool) -> bool:
    """Whether a key that is no optimizer's or scheduler's may change (config only): it has a
    forkable form (:func:`is_forkable_key`) and the run has it."""
    if key == "data.batch_size" and not epoch_end:
        _refuse(key, value, "the checkpoint is mid-epoch: the batch size changes only at an "
                "epoch's end (fork from last.ckpt, saved there)")  # fmt: skip
    if not is_forkable_key(key):
        return False
    return key.startswith("trainer.") or OmegaConf.select(cfg, key) is not None


def _why_not(parts: list[str]) -> str:
    if parts[0] == "model":
        return "the model is built from it, and the checkpoint's weights fit the old one"
    return "it cannot change in the middle of a training"


def _refuse(key: str, value: Any, why: str) -> None:
    raise ConfigValueError(
        f"fork: {key}={value!r} cannot change: {why}. Forkable: {', '.join(FORKABLE)}. Fix: "
        f"drop {key}, or start a new run with it (python train.py {key}=...)"
    )


def _check_left_to_train(
    cfg: DictConfig, state: Mapping[str, Any], epoch_end: bool, root: Path
) -> None:
    epochs = OmegaConf.select(cfg, "trainer.max_epochs")
    steps = OmegaConf.select(cfg, "trainer.max_steps")
    done = int(state.get("epoch", 0)) + (1 if epoch_end else 0)
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
    """Plain data (enums as their names): what a checkpoint read as weights only can hold."""
    if not OmegaConf.is_config(value):
        return value
    return OmegaConf.to_container(value, resolve=True, enum_to_str=True)
