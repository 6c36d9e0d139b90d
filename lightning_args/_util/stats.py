"""Mean, spread and standard error of a few values (a k-fold run's folds)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Spread:
    """The mean of ``n`` values, their sample standard deviation and the mean's standard error.

    Example:
        >>> s = Spread.of([1.0, 2.0, 3.0])
        >>> s.n, s.mean, s.std, round(s.sem, 4)
        (3, 2.0, 1.0, 0.5774)
        >>> Spread.of([0.5]).std  # one value: no spread
        0.0
    """

    n: int
    mean: float
    std: float
    sem: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        return cls(len(values), statistics.fmean(values), std, std / math.sqrt(len(values)))


def noise_verdict(a: Spread, b: Spread, *, of: str = "") -> str:
    """Whether two means differ by less than their combined standard error: ``within noise``
    (one cannot tell them apart from these folds) or ``beyond noise``, ``of`` what (e.g.
    ``the best``), with both numbers.

    Example:
        >>> noise_verdict(Spread(3, 0.85, 0.01, 0.006), Spread(3, 0.84, 0.04, 0.023))
        'within noise (gap 0.01, combined standard error 0.02377)'
        >>> noise_verdict(Spread(3, 0.85, 0.0, 0.0), Spread(3, 0.7, 0.0, 0.0), of="the best")
        'beyond noise of the best (gap 0.15, combined standard error 0)'
    """
    gap, error = abs(a.mean - b.mean), math.hypot(a.sem, b.sem)
    verdict = "within noise" if gap < error else "beyond noise"
    return (
        f"{verdict}{f' of {of}' if of else ''} (gap {gap:.4g}, combined standard error {error:.4g})"
    )
