"""Losses and metrics declared by key, for models that pass dicts around."""

from __future__ import annotations

from dataclasses import dataclass
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
