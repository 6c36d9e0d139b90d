"""Continuing a run in its own directory, from ``last.ckpt``, with the config it was saved with.

    read the record and the last checkpoint -> take the config stored in the checkpoint
    -> apply the allowed changes (a longer training) -> train in the same directory

The config comes from the checkpoint (resolved when the run started; judged by the trust policy
and confined to the run directory, :mod:`lightning_args.run.trust` and
:mod:`lightning_args.run.confine`), not from today's ``conf/``: a resumed run is the same run.
Only how long it trains may change; a different model is a new run.

:func:`fork` continues a run in a *new* directory instead, with some hyperparameters changed
(what may change, and how: :mod:`lightning_args.run.fork`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from lightning_args._util.atomic import atomic_write
from lightning_args.config.objective import Objective
from lightning_args.errors import CheckpointError, ConfigValueError, UsageError
from lightning_args.run.app import train
from lightning_args.run.confine import inside
from lightning_args.run.fork import Forked
from lightning_args.run.ownership import claimed
from lightning_args.run.record import RunRecord, RunStatus, record_of

#: What ``resume`` may change: how long the run trains, and whether it tests at the end.
RESUMABLE = (
    "trainer.max_epochs",
    "trainer.max_steps",
    "trainer.max_time",
    "trainer.min_epochs",
    "trainer.min_steps",
    "test",
)


def resume(run_dir: str | Path, overrides: Sequence[str] = ()) -> Objective:
    """Continue the run in ``run_dir`` from its ``checkpoints/last.ckpt``; return its objective.

    ``overrides`` may extend the training (``trainer.max_epochs=40``); any other change is
    refused with a :class:`~lightning_args.ConfigValueError`. ``run.json`` keeps its history in
    ``resumes``. A run killed mid-epoch resumes from the end of its last full epoch and ends with
    the metrics of an uninterrupted run (CPU, fixed seed).

    Example::

        lightning_args.resume("outputs/runs/2026-11-26_10-00-00", ["trainer.max_epochs=40"])
    """
    root = Path(run_dir).resolve()
    with claimed(root):  # before anything is read: the run must be no one else's right now
        return _resume(root, overrides)


def _resume(root: Path, overrides: Sequence[str]) -> Objective:
    record = record_of(root)
    if record.cv:
        return _resume_kfold(root, overrides, record)
    last = last_checkpoint(
        root, "nothing to resume from (was the checkpoint callback off?). Fix: start a new run"
    )
    cfg, step = saved_config(last, root)
    changes = _changes(overrides, root)
    for key, value in changes.items():
        OmegaConf.update(cfg, key, value, merge=False)
    _check_not_finished(record, cfg, last, changes)
    cfg.ckpt_path = str(last)
    log_to(root)
    from lightning_args.loggers import trim_metrics

    trim_metrics(root / "metrics.csv", step)
    return train(cfg)


def _resume_kfold(root: Path, overrides: Sequence[str], record: RunRecord) -> Objective:
    """Continue the k-fold run in ``root``: finished folds are kept as they are, the unfinished
    one continues from its ``last.ckpt``, the others train (:mod:`lightning_args.run.kfold`).

    The k-fold run's config is its first fold's ``.hydra/config.yaml`` with the fold unset,
    judged by the trust policy and confined to ``root`` before anything is built.
    """
    from lightning_args.run.confine import confine
    from lightning_args.run.kfold import fold_dir, fold_dirs
    from lightning_args.run.trust import check_trusted

    if overrides:
        raise ConfigValueError(
            f"{root.name} is a k-fold run: it resumes with the config its folds ran with, and "
            f"takes no overrides ({' '.join(overrides)}). Fix: lightning-args resume {root}"
        )
    if record.status == RunStatus.COMPLETED:
        raise UsageError(f"{root.name} completed every fold: nothing to resume")
    lasts = [p / "checkpoints" / "last.ckpt" for p in fold_dirs(root).values()]
    started = [inside(last, root, "a fold's last checkpoint") for last in lasts if last.is_file()]
    source = fold_dir(root, 0) / ".hydra" / "config.yaml"
    if not started or not source.is_file():
        raise CheckpointError(
            f"{root} has no fold with a checkpoints/last.ckpt: nothing to resume from. Fix: "
            "start a new run"
        )
    cfg = OmegaConf.load(inside(source, root, "the first fold's config"))
    if not isinstance(cfg, DictConfig):
        raise CheckpointError(f"{source} holds no config mapping. Fix: start a new run")
    OmegaConf.update(cfg, "paths.run_dir", str(root), merge=False)
    OmegaConf.update(cfg, "cv.fold", None, merge=False)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    if not isinstance(resolved, dict):
        raise CheckpointError(f"{source} holds no config mapping. Fix: start a new run")
    what = f"config {str(source)!r}"
    check_trusted(resolved, what)
    confine({str(k): v for k, v in resolved.items()}, root, what)
    # The folds' configs keep their interpolations (${paths.run_dir} follows each fold): the
    # checks above judged what they resolve to here. The parent continues from its last fold.
    cfg.ckpt_path = str(started[-1])
    log_to(root)
    return train(cfg)


def last_checkpoint(root: Path, why: str) -> Path:
    """``root/checkpoints/last.ckpt``, or a :class:`CheckpointError` saying ``why`` it matters."""
    last = root / "checkpoints" / "last.ckpt"
    if not last.is_file():
        raise CheckpointError(f"{root} has no checkpoints/last.ckpt: {why}")
    return inside(last, root, "the last checkpoint")


def saved_config(last: Path, root: Path) -> tuple[DictConfig, int]:
    """The checkpoint's resolved config, judged and confined to ``root``, and its step.

    The config stays untyped: it was validated against its schemas when the run started, and
    the schemas of today's code may have changed since.
    """
    from lightning_args.run.checkpoint import config_of, read_checkpoint

    checkpoint = read_checkpoint(last, "cpu")
    return OmegaConf.create(config_of(checkpoint, last, root)), int(checkpoint["global_step"])


def _changes(overrides: Sequence[str], root: Path) -> dict[str, Any]:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    changes: dict[str, Any] = {}
    for override in OverridesParser.create().parse_overrides(list(overrides)):
        key = override.key_or_group
        if key not in RESUMABLE:
            raise ConfigValueError(
                f"resume continues {root.name} with the config it was saved with: {key!r} "
                f"cannot change (only {', '.join(RESUMABLE)} may).\n"
                f"  Fix: start a new run for a different {key.split('.')[0]}, e.g. "
                f"python train.py {override.input_line} "
                f"ckpt_path={root / 'checkpoints' / 'last.ckpt'}"
            )
        changes[key] = override.value()
    return changes


def _check_not_finished(
    record: RunRecord, cfg: DictConfig, last: Path, changes: dict[str, Any]
) -> None:
    """A completed run resumes only when it is given more to do."""
    if record.status != RunStatus.COMPLETED or changes:
        return
    raise UsageError(
        f"{last.parent.parent.name} completed (max_epochs={cfg.trainer.max_epochs}): nothing to "
        f"resume. Fix: train longer, e.g. lightning-args resume {last.parent.parent} "
        f"trainer.max_epochs={(cfg.trainer.max_epochs or 0) * 2}"
    )


def log_to(root: Path) -> None:
    """Outside Hydra nobody configured logging: print, and append to the run's train.log."""
    logger = logging.getLogger()
    if logger.handlers:
        return
    formatter = logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] - %(message)s")
    for handler in (logging.StreamHandler(), logging.FileHandler(root / "train.log")):
        handler.setFormatter(formatter)
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)


def fork(
    run_dir: str | Path,
    overrides: Sequence[str] = (),
    checkpoint: str = "last",
    out_dir: str | Path | None = None,
) -> Forked:
    """Train a new run from ``run_dir``'s ``checkpoint`` with ``overrides`` changed (only what
    can change mid-training: :data:`lightning_args.run.fork.FORKABLE`); it goes to ``out_dir``
    (default: ``<run_dir>-fork``, ``-1``... if taken). Everything is checked before the new
    directory is made. ``python train.py fork.parent=<run dir> optimizer.lr=0.01 ...`` does the
    same from the app's own configs.

    Example::

        forked = lightning_args.fork(
            "outputs/runs/2026-12-03_10-00-00", ["optimizer.lr=0.01", "trainer.max_epochs=30"]
        )
        print(forked.run_dir, forked.value)
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from lightning_args.config.run_dirs import unique_dir
    from lightning_args.run.checkpoint import config_of, read_checkpoint
    from lightning_args.run.confine import confine
    from lightning_args.run.fork import plan
    from lightning_args.run.load import checkpoint_path

    root = Path(run_dir).resolve()
    source = checkpoint_path(root, checkpoint, record_of(root))
    state = read_checkpoint(source, "cpu")  # read once here; train() reads it again to fork
    cfg = OmegaConf.create(config_of(state, source, root))
    for override in OverridesParser.create().parse_overrides(list(overrides)):
        OmegaConf.update(cfg, override.key_or_group, override.value(), merge=False)
    OmegaConf.update(cfg, "fork", {"parent": str(root), "checkpoint": checkpoint}, merge=False)
    cfg.ckpt_path = None
    cfg.overwrite = False
    plan(cfg, state)  # every refusal before anything is made
    target = Path(out_dir) if out_dir else Path(unique_dir(f"{root}-fork"))
    if target.exists() and any(target.iterdir()):
        raise UsageError(f"{target} exists and is not empty. Fix: --out <a new directory>")
    target.mkdir(parents=True, exist_ok=True)
    container = OmegaConf.to_container(cfg, resolve=True)
    if not isinstance(container, dict):
        raise CheckpointError(f"{source} holds no config mapping. Fix: fork another run")
    resolved = {str(k): v for k, v in container.items()}
    moved = OmegaConf.create(confine(resolved, target, f"checkpoint {str(source)!r}"))
    # After confine, which moves every path under the parent into the new run, this one too.
    OmegaConf.update(moved, "fork", {"parent": str(root), "checkpoint": checkpoint}, merge=False)
    # As Hydra writes a run's: show, diff and runs read the fork as any run.
    (target / ".hydra").mkdir(exist_ok=True)
    atomic_write(target / ".hydra" / "config.yaml", OmegaConf.to_yaml(moved))
    log_to(target)
    return Forked(target, train(moved))
