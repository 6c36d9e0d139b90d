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
    checkpoint: Path
    record: RunRecord | None


def load_run(run_dir: str | Path, checkpoint: str = "best", map_location: str = "cpu") -> LoadedRun:
    """The trained module (in eval mode), its DataModule and its resolved config.

    ``checkpoint`` is ``"best"`` or ``"last"`` (as recorded in ``run.json``), or the name of a
    file in ``checkpoints/``. Everything is rebuilt from the checkpoint, which carries the
    resolved config, so the run directory can be moved or copied elsewhere. The directory may
    come from someone else: nothing outside it is read, and its config builds only what
    :mod:`lightning_args.run.trust` allows.

    Example (in a notebook)::

        run = lightning_args.load_run("outputs/runs/2026-11-26_17-21-00")
        run.datamodule.setup("test")
        lightning.pytorch.Trainer().test(run.module, datamodule=run.datamodule)
    """
    from hydra.utils import instantiate

    root = Path(run_dir)
    record = RunRecord.read(root) if (root / RECORD_NAME).is_file() else None
    if record is not None and record.status == RunStatus.RUNNING:
        current = holder(root)
        if current is None or not current.alive:  # its writer died before it could say so
            record.status = RunStatus.INTERRUPTED
    path = _checkpoint_path(root, checkpoint, record)
    state = read_checkpoint(path, map_location)
    config = config_of(state, path, root)
    module = module_of(state, config)
    module.eval()
    datamodule: pl.LightningDataModule = instantiate(config["data"], _convert_="all")
    return LoadedRun(module, datamodule, OmegaConf.create(config), path, record)


def _checkpoint_path(root: Path, name: str, record: RunRecord | None) -> Path:
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
