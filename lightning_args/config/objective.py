"""What a run is judged by."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

#: What a run returns: ``objective.metric``'s value, or a tuple of it and ``objective.also``'s.
Objective = float | tuple[float, ...]


def primary(value: Objective) -> float:
    """``objective.metric``'s value of what a run returned.

    Example:
        >>> primary(0.9), primary((0.9, 12.0))
        (0.9, 0.9)
    """
    return float(value[0] if isinstance(value, tuple) else value)


class Mode(str, Enum):
    """Whether the objective is minimised or maximised."""

    min = "min"
    max = "max"


@dataclass
class ObjectiveConfig:
    """The metric a run is judged by: what sweepers optimise and checkpoints keep the best of.

    ``metric`` is a name logged by the module (``val/acc``); the run returns its value at the best
    checkpoint, so a sweeper can use the run's return value directly.
    """

    metric: str = "val/acc"
    mode: Mode = Mode.max
    #: More metrics the run returns after ``metric``, in order, for a multi-objective sweep
    #: (``hydra.sweeper.direction`` then lists one direction per value). Last logged values.
    also: list[str] = field(default_factory=list)
