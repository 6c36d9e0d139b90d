"""``hydra.sweeper.constraints``: bounds on metrics a run logs (a model-size or latency
budget). A trial that breaks one is infeasible: Optuna's constraint values
(``Trial.set_constraint``, feasible when <= 0) make samplers that support them (TPE, GP,
NSGA-II/III) avoid it, and the study's best trial is the best feasible one.

A completed trial's metrics are read from its run record (``run.json`` in the job's output
directory), which the job wrote as it ended.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn

from lightning_args.errors import LightningArgsError, SearchSpaceError
from lightning_args.run.record import RunRecord

_BOUND = re.compile(r"\s*(<=|>=)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*")


@dataclass(frozen=True)
class Constraint:
    """``metric <= bound`` (``at_most``) or ``metric >= bound``."""

    metric: str
    bound: float
    at_most: bool

    def violation(self, value: float) -> float:
        """How far ``value`` is beyond the bound: <= 0 when it keeps it (Optuna's convention).

        >>> Constraint("size", 100.0, at_most=True).violation(120.0)
        20.0
        """
        return value - self.bound if self.at_most else self.bound - value


def parse_constraints(node: Any) -> list[Constraint]:
    """``{metric: "<= 100000", ...}`` as constraints; a malformed bound is one message.

    >>> parse_constraints({"size/generator": "<= 1e5"})
    [Constraint(metric='size/generator', bound=100000.0, at_most=True)]
    """
    if not isinstance(node, Mapping):
        raise SearchSpaceError(
            f"hydra.sweeper.constraints={node!r}: expected a mapping of metric to bound. Fix: "
            "e.g. hydra.sweeper.constraints={size/generator: '<= 100000'}"
        )
    out = []
    for metric, text in node.items():
        found = _BOUND.fullmatch(str(text))
        if found is None:
            raise SearchSpaceError(
                f"hydra.sweeper.constraints.{metric}={text!r}: expected '<= <number>' or "
                f"'>= <number>'. Fix: e.g. hydra.sweeper.constraints={{{metric}: '<= 100000'}}"
            )
        out.append(Constraint(str(metric), float(found.group(2)), found.group(1) == "<="))
    return out


def violations(constraints: list[Constraint], ret: JobReturn) -> dict[str, float] | str:
    """Each constraint's violation for a completed job, by metric, or why it cannot be had."""
    output_dir = ret.hydra_cfg.hydra.runtime.output_dir if ret.hydra_cfg is not None else None
    if output_dir is None:
        return "hydra.sweeper.constraints: the job has no output directory to read metrics from"
    try:
        metrics = RunRecord.read(Path(output_dir)).metrics
    except (LightningArgsError, OSError) as error:
        return f"hydra.sweeper.constraints: {error}"
    missing = [c.metric for c in constraints if c.metric not in metrics]
    if missing:
        return (
            f"hydra.sweeper.constraints: {missing[0]!r} was not logged by the run; it logged "
            f"{', '.join(sorted(metrics)) or 'nothing'}. Fix: constrain one of those"
        )
    return {c.metric: c.violation(float(metrics[c.metric])) for c in constraints}
