"""Losses, metrics and truncated BPTT declared by key, for models that pass dicts around."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING


@dataclass
class TermConfig:
    """``fn(outputs[input], batch[target])``, weighted (losses) and logged under its name.

    ``fn`` is any callable config, e.g. ``{_target_: torch.nn.functional.cross_entropy,
    _partial_: true}``; ``input`` names a key of the model's output dict, ``target`` a key of
    the batch dict.
    """

    fn: Any = MISSING
    input: str = MISSING
    target: str = MISSING
    weight: float = 1.0


@dataclass
class TBPTTConfig:
    """Truncated back-propagation through time for a ``KeyedModule`` (``model.tbptt``).

    Each training batch's ``keys`` are split along ``time_dim`` into chunks of ``steps``; the
    module trains on each chunk in turn (one optimizer step per chunk), and the outputs named by
    ``state`` (a recurrent state, ``hidden``) are detached and passed into the next chunk's batch
    under the same names, so the forward pass sees the whole sequence while gradients stop at
    chunk boundaries. The state starts afresh with every batch. Optimizer steps, hence
    ``trainer.global_step`` and ``trainer.max_steps``, count chunks.

    Example:
        >>> from omegaconf import OmegaConf
        >>> OmegaConf.structured(TBPTTConfig(steps=16, keys=["x", "y"])).state
        ['hidden']
    """

    steps: int = MISSING
    #: The batch keys holding sequences (inputs and targets), split into chunks.
    keys: list[str] = MISSING
    #: Output keys carried, detached, into the next chunk's batch.
    state: list[str] = field(default_factory=lambda: ["hidden"])
    #: The time dimension of the sequences (1: batch first).
    time_dim: int = 1
