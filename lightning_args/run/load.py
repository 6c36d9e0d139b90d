"""Loading a finished run back from its directory: model, data and config, ready to evaluate."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import lightning.pytorch as pl
from omegaconf import DictConfig, OmegaConf

from lightning_args.errors import CheckpointError
from lightning_args.run.checkpoint import config_of, module_of, read_checkpoint
from lightning_args.run.confine import inside
from lightning_args.run.ownership import holder
from lightning_args.run.record import RECORD_NAME, RunRecord, RunStatus


@dataclass
class LoadedRun:
    """What :func:`load_run` returns."""

    module: pl.LightningModule
    datamodule: pl.LightningDataModule
    config: DictConfig
    checkpoint: Path  # a k-fold run's ensemble: its first fold's
    record: RunRecord | None
    folds: tuple[LoadedRun, ...] = ()  # a k-fold run's ensemble: each fold's run


def load_run(
    run_dir: str | Path,
    checkpoint: str = "best",
    map_location: str = "cpu",
    *,
    fold: int | None = None,
) -> LoadedRun:
    """The trained module (in eval mode), its DataModule and its resolved config.

    ``checkpoint`` is ``"best"`` or ``"last"`` (as recorded in ``run.json``), or the name of a
    file in ``checkpoints/``. Everything is rebuilt from the checkpoint, which carries the
    resolved config, so the run directory can be moved or copied elsewhere. The directory may
    come from someone else: nothing outside it is read, and its config builds only what
    :mod:`lightning_args.run.trust` allows.

    A k-fold run (``+cv=kfold``) gives its fold ``fold``'s run, or with ``fold=None`` all of its
    completed folds as one :class:`~lightning_args.modules.ensemble.FoldEnsemble`, which
    averages their outputs (each fold's run in ``folds``; the DataModule is the first fold's,
    without a fold applied: its test split is the one every fold tested on). Its refit is a run
    of its own: ``load_run("<run dir>/refit")``.

    Example (in a notebook)::

        run = lightning_args.load_run("outputs/runs/2026-11-26_17-21-00")
        run.datamodule.setup("test")
        lightning.pytorch.Trainer().test(run.module, datamodule=run.datamodule)
    """
    from hydra.utils import instantiate

    root = Path(run_dir)
    record = RunRecord.read(root) if (root / RECORD_NAME).is_file() else None
    if record is not None and record.cv:
        return _load_kfold(root, record, checkpoint, map_location, fold)
    if fold is not None:
        raise CheckpointError(
            f"load_run({str(root)!r}, fold={fold!r}): {root} is not a k-fold run (its "
            f"{RECORD_NAME} has no cv). Fix: leave fold unset"
        )
    if record is not None and record.status == RunStatus.RUNNING:
        current = holder(root)
        if current is None or not current.alive:  # its writer died before it could say so
            record.status = RunStatus.INTERRUPTED
    path = checkpoint_path(root, checkpoint, record)
    state = read_checkpoint(path, map_location)
    config = config_of(state, path, root)
    module = module_of(state, config)
    module.eval()
    datamodule: pl.LightningDataModule = instantiate(config["data"], _convert_="all")
    return LoadedRun(module, datamodule, OmegaConf.create(config), path, record)


def checkpoint_path(root: Path, name: str, record: RunRecord | None) -> Path:
    """The checkpoint ``name`` (``best``, ``last``, a file of ``checkpoints/``) of the run in
    ``root``, confined to it; one message naming those it has otherwise."""
    recorded = record.checkpoints.get(name) if record is not None else None
    if recorded is not None and not isinstance(recorded, str):
        raise CheckpointError(
            f"{root / RECORD_NAME}: checkpoints.{name} is {recorded!r}, not a path. Fix: pass "
            "checkpoint=<a file name in checkpoints/>"
        )
    candidates = [(root / recorded, f"{RECORD_NAME}'s checkpoint {name!r}")] if recorded else []
    candidates += [
        (root / "checkpoints" / file, f"checkpoint {name!r}") for file in (name, f"{name}.ckpt")
    ]
    for candidate, what in candidates:
        if candidate.is_file() or candidate.is_symlink():
            return inside(candidate, root, what)
    present = sorted(p.name for p in (root / "checkpoints").glob("*.ckpt"))
    raise CheckpointError(
        f"run {str(root)!r} has no checkpoint {name!r}: expected 'best', 'last' or one of "
        f"{', '.join(present) or 'none (no checkpoints/ folder with .ckpt files)'}. "
        "Fix: pass checkpoint=<one of them>, or a run directory that trained"
    )


def _load_kfold(
    root: Path, record: RunRecord, checkpoint: str, map_location: str, fold: int | None
) -> LoadedRun:
    """One fold of the k-fold run in ``root``, or all its completed folds as an ensemble. The
    folds are found by their place (``folds/<k>``), never by a path its record names."""
    from lightning_args.modules.ensemble import FoldEnsemble
    from lightning_args.run.kfold import fold_dirs

    found = fold_dirs(root)
    if fold is not None:
        if fold not in found:
            raise CheckpointError(
                f"load_run({str(root)!r}, fold={fold!r}): no folds/{fold} in this k-fold run: "
                f"expected one of {sorted(found) or 'none'}. Fix: fold=<one of them>"
            )
        return load_run(inside(found[fold], root, "a fold"), checkpoint, map_location)
    done = [
        found[k]
        for k in sorted(found)
        if (found[k] / RECORD_NAME).is_file()
        and RunRecord.read(found[k]).status == RunStatus.COMPLETED
    ]
    if not done:
        raise CheckpointError(
            f"k-fold run {str(root)!r} has no completed fold to load. Fix: finish it "
            f"(lightning-args resume {root}), or load a fold: load_run(<run dir>, fold=k)"
        )
    folds = tuple(load_run(inside(path, root, "a fold"), checkpoint, map_location) for path in done)
    ensemble = FoldEnsemble([run.module for run in folds])
    ensemble.eval()
    first = folds[0]
    return LoadedRun(ensemble, first.datamodule, first.config, first.checkpoint, record, folds)
