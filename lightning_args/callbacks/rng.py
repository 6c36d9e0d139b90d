"""Random generators' states in checkpoints, so that a resumed run draws what it would have.

Lightning restores weights, optimizers, schedulers and loop counters, but not the global random
generators: after a resume, dropout masks (and anything else drawn from them) differ from an
uninterrupted run. :class:`RandomStateInCheckpoint` saves the states of Python's, NumPy's and
torch's generators (CUDA's too, when present) with every checkpoint and restores them on resume.
States are stored as tensors, lists and numbers only, so checkpoints still load with
``weights_only=True``.
"""

from __future__ import annotations

import random
from typing import Any, cast

import lightning.pytorch as pl
import numpy as np
import torch

RNG_KEY = "lightning_args_rng"


def capture() -> dict[str, Any]:
    """The current state of every global random generator."""
    legacy = cast(tuple[str, Any, int, int, float], np.random.get_state(legacy=True))
    kind, keys, position, has_gauss, cached = legacy
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), position, has_gauss, cached],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore(state: dict[str, Any]) -> None:
    """Put every global random generator back in ``state`` (from :func:`capture`)."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, position, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class RandomStateInCheckpoint(pl.Callback):
    """Save the random generators with every checkpoint; restore them when training resumes."""

    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        checkpoint[RNG_KEY] = capture()

    def on_load_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        if RNG_KEY in checkpoint:
            restore(checkpoint[RNG_KEY])
