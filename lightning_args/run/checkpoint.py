"""Checkpoints written atomically and read back as plain data: the config each one carries
(stored by :class:`~lightning_args.callbacks.checkpoint.ConfigInCheckpoint`), judged and
confined before a model is rebuilt from the file alone."""

from __future__ import annotations

import os
import time
import zipfile
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from lightning_args._util.atomic import replacing, temporary_beside
from lightning_args.errors import CheckpointError
from lightning_args.run.confine import confine
from lightning_args.run.trust import check_trusted

CONFIG_KEY = "lightning_args"


class AtomicCheckpointIO(TorchCheckpointIO):
    """Write each checkpoint to a temporary file beside it, then rename it into place.

    Lightning's own writer renames a temporary file from the system's temp directory, which is
    a copy, not a rename, when that directory is on another file system: a kill during the copy
    leaves a truncated ``last.ckpt``. Here the temporary file is ``.<name>.<pid>.tmp`` in the same
    folder, flushed to disk before ``os.replace``, so a reader sees the old file or the new one.
    A failed write removes it, and a full disk is a :class:`~lightning_args.errors.DiskFullError`
    naming the checkpoint (:func:`lightning_args._util.atomic.replacing`). Remote paths (``s3://``
    and the like) keep Lightning's writer.
    """

    def __init__(self) -> None:
        super().__init__()
        #: Seconds spent writing checkpoints so far (``run.json``'s ``timings``).
        self.seconds = 0.0

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None
    ) -> None:
        began = time.perf_counter()
        try:
            self._save(checkpoint, path, storage_options)
        finally:
            self.seconds += time.perf_counter() - began

    def _save(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None) -> None:
        if storage_options is not None or "://" in str(path):
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        target = Path(path)
        tmp = temporary_beside(target)
        with replacing(target, tmp):
            target.parent.mkdir(parents=True, exist_ok=True)
            with tmp.open("wb") as f:
                torch.save(checkpoint, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)


def config_from_checkpoint(path: str | Path) -> dict[str, Any]:
    """The resolved config stored in the checkpoint at ``path``, once the trust policy allows it.

    Only plain data is read (``weights_only=True``): no code in the file runs.
    """
    return config_of(read_checkpoint(path, "cpu"), Path(path))


def load_from_checkpoint(path: str | Path, map_location: str = "cpu") -> pl.LightningModule:
    """Rebuild the LightningModule saved at ``path`` from the config it carries, with its weights.

    The file may come from someone else: it is read as plain data, and its config builds only
    what :mod:`lightning_args.run.trust` allows.

    Example (``path`` being any ``checkpoints/*.ckpt`` of a run)::

        module = lightning_args.load_from_checkpoint("outputs/runs/<id>/checkpoints/best.ckpt")
        module.eval()
    """
    checkpoint = read_checkpoint(path, map_location)
    return module_of(checkpoint, config_of(checkpoint, Path(path)))


def module_of(checkpoint: dict[str, Any], config: dict[str, Any]) -> pl.LightningModule:
    """The module ``config`` (already judged by :func:`config_of`) describes, with the
    checkpoint's weights."""
    from hydra.utils import instantiate

    module: pl.LightningModule = instantiate(config["model"], _convert_="all")
    module.load_state_dict(checkpoint["state_dict"])
    return module


def read_checkpoint(path: str | Path, map_location: str) -> dict[str, Any]:
    """The checkpoint at ``path``, read as plain data only (``weights_only=True``).

    :class:`CheckpointError` names the file when it is truncated, corrupt, not a checkpoint, or
    holds objects other than plain data (which are never unpickled: they could run code).
    """
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(
            f"checkpoint {str(path)!r} does not exist. Fix: pass the path of a .ckpt file"
        ) from None
    except Exception as error:  # torch raises many kinds for a bad file
        # torch.save writes a zip archive: a complete one that still fails holds objects.
        if "Weights only load failed" in str(error) and zipfile.is_zipfile(path):
            why = (
                "it holds Python objects besides tensors and plain data, and unpickling them "
                "could run code, so they are never read"
            )
        else:
            why = f"it is truncated, corrupt or not a checkpoint ({type(error).__name__})"
        raise CheckpointError(
            f"checkpoint {str(path)!r} cannot be read: {why}. Fix: load another checkpoint of "
            "the run (checkpoint='best' or 'last'), or train it again"
        ) from None
    if not isinstance(checkpoint, dict):
        raise CheckpointError(
            f"checkpoint {str(path)!r} holds a {type(checkpoint).__name__}, not a Lightning "
            "checkpoint. Fix: pass a .ckpt file written by a lightning_args run"
        )
    return checkpoint


def config_of(checkpoint: dict[str, Any], path: Path, root: Path | None = None) -> dict[str, Any]:
    """The resolved config a checkpoint carries, judged by :mod:`lightning_args.run.trust` and
    confined to the run directory ``root`` (default: the one holding ``path``) by
    :mod:`lightning_args.run.confine`; :class:`CheckpointError` if it has none."""
    source = f"checkpoint {str(path)!r}"
    stored = checkpoint.get(CONFIG_KEY)
    config = stored.get("config") if isinstance(stored, dict) else None
    if not isinstance(config, dict):
        raise CheckpointError(
            f"{source} holds no lightning_args config (key {CONFIG_KEY!r}): it was not saved by "
            "a lightning_args run. Fix: load it with the module class's own load_from_checkpoint"
        )
    check_trusted(config, source)
    return confine(config, root or run_root(path), source)


def run_root(checkpoint: Path) -> Path:
    """The run directory of a checkpoint: the folder above ``checkpoints/``, else its own."""
    folder = checkpoint.resolve().parent
    return folder.parent if folder.name == "checkpoints" else folder
