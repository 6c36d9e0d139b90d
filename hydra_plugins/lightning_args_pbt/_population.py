"""Population-based training's rules, without Hydra or torch: members, their intervals, and the
exploit-and-explore step (Jaderberg et al. 2017, as Ray Tune's ``PopulationBasedTraining``).

- A member that ends an interval in the bottom ``quantile_fraction`` of the population's latest
  scores goes on from a member of the top ``quantile_fraction`` (its checkpoint: exploit), with
  that member's hyperparameters perturbed (explore); any other member goes on from its own.
- Explore: each numeric hyperparameter is resampled with ``resample_probability``, otherwise
  multiplied by one of ``factors`` (kept inside its range; integers rounded); a choice is
  resampled with ``resample_probability``, otherwise moved to a neighbouring choice.

Every random draw comes from a stream of its own (seed, member, interval): a resumed sweep draws
what an uninterrupted one would have. Whom a member is compared with depends on who had ended
an interval at that moment (there is no barrier), as in any asynchronous PBT.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from lightning_args.errors import SweepError

JOURNAL = "pbt.jsonl"


@dataclass(frozen=True)
class Interval:
    """One ended interval of a member: a line of the sweep's journal (:data:`JOURNAL`)."""

    member: int
    interval: int
    run: str  # its run directory, relative to the sweep directory
    params: dict[str, Any]
    score: float | None  # None: it failed
    epochs: int  # the epoch it trained to (trainer.max_epochs)
    parent: str | None = None  # the run it went on from (None: interval 0)
    exploited: int | None = None  # the member it copied, when it exploited one


@dataclass
class Member:
    """A member of the population: its intervals so far, in order."""

    number: int
    params: dict[str, Any]
    history: list[Interval] = field(default_factory=list)

    @property
    def latest(self) -> Interval | None:
        return self.history[-1] if self.history else None


@dataclass(frozen=True)
class Step:
    """What a member runs next: its hyperparameters, the run it goes on from (``None`` for its
    first interval) and the member it exploited, if any."""

    params: dict[str, Any]
    parent: str | None
    exploited: int | None


def rng(seed: int, *where: int) -> random.Random:
    """The random stream of one decision (a member's first values, an interval's step)."""
    return random.Random(f"{seed}:" + ":".join(map(str, where)))


def sample(space: Mapping[str, BaseDistribution], stream: random.Random) -> dict[str, Any]:
    """Values drawn uniformly from ``space`` (log-uniformly where the range is ``log``)."""
    return {key: _draw(dist, stream) for key, dist in space.items()}


def explore(
    params: Mapping[str, Any],
    space: Mapping[str, BaseDistribution],
    stream: random.Random,
    *,
    factors: Sequence[float],
    resample_probability: float,
) -> dict[str, Any]:
    """``params`` perturbed (see the module's docstring).

    Example:
        >>> from optuna.distributions import FloatDistribution
        >>> space = {"lr": FloatDistribution(1e-4, 1e-1, log=True)}
        >>> explore({"lr": 0.01}, space, random.Random(0), factors=[0.8, 1.2],
        ...         resample_probability=0.0)
        {'lr': 0.012}
    """
    out: dict[str, Any] = {}
    for key, value in params.items():
        dist = space[key]
        if stream.random() < resample_probability:
            out[key] = _draw(dist, stream)
        elif isinstance(dist, CategoricalDistribution):
            index = dist.choices.index(value) + stream.choice((-1, 1))
            out[key] = dist.choices[min(max(index, 0), len(dist.choices) - 1)]
        else:
            out[key] = _clip(dist, value * stream.choice(list(factors)))
    return out


def next_step(
    member: Member,
    population: Sequence[Member],
    space: Mapping[str, BaseDistribution],
    *,
    seed: int,
    quantile_fraction: float,
    resample_probability: float,
    factors: Sequence[float],
    maximize: bool,
) -> Step:
    """What ``member`` runs after its latest interval (it has one), judged against the
    population's latest scores now: no barrier, the others may be mid-interval."""
    latest = member.latest
    if latest is None:
        raise ValueError("next_step() needs a member that ended an interval")
    own = Step(dict(member.params), latest.run, None)
    scored = [m for m in population if m.latest is not None and m.latest.score is not None]
    quantile = int(len(scored) * quantile_fraction)
    if quantile < 1 or latest.score is None:
        return own
    ranked = sorted(scored, key=lambda m: m.latest.score or 0.0, reverse=maximize)  # type: ignore[union-attr]
    top, bottom = ranked[:quantile], ranked[-quantile:]
    if member not in bottom or member in top:
        return own
    stream = rng(seed, member.number, latest.interval + 1)
    better = stream.choice(top)
    best = better.latest
    if best is None:  # scored members have a latest interval
        return own
    params = explore(
        better.params, space, stream, factors=factors, resample_probability=resample_probability
    )
    return Step(params, best.run, better.number)


def read_journal(path: Path) -> list[Interval]:
    """The ended intervals in ``path`` (none if it does not exist). A torn last line (the sweep
    was killed while writing it) is dropped; any other bad line is one message naming it."""
    if not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    out: list[Interval] = []
    for number, line in enumerate(lines, start=1):
        try:
            out.append(_interval(json.loads(line)))
        except (ValueError, TypeError, KeyError) as error:
            if number == len(lines) and not path.read_bytes().endswith(b"\n"):
                break  # torn: written up to a crash
            raise SweepError(
                f"{path}, line {number}: not an interval of this sweep ({error}): {line[:80]!r}. "
                "Fix: remove that line (the interval runs again), or start a new sweep"
            ) from None
    return out


def append(path: Path, interval: Interval) -> None:
    """Add ``interval`` to the journal: one line, flushed to disk before the sweep goes on."""
    import os

    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(asdict(interval), sort_keys=True) + "\n")
        f.flush()
        os.fsync(f.fileno())


def _interval(data: Any) -> Interval:
    if not isinstance(data, dict):
        raise TypeError("expected an object")
    member, interval, run = data["member"], data["interval"], data["run"]
    if not (isinstance(member, int) and isinstance(interval, int) and isinstance(run, str)):
        raise TypeError("member and interval must be integers, run a string")
    if not _inside_the_sweep(run):
        raise ValueError(f"run {run!r} is outside the sweep directory")
    score, params = data.get("score"), data.get("params")
    if score is not None and not isinstance(score, int | float):
        raise TypeError("score must be a number or null")
    if not isinstance(params, dict):
        raise TypeError("params must be an object")
    epochs = data.get("epochs")
    if not isinstance(epochs, int) or epochs < 1:
        raise TypeError("epochs must be an integer of at least 1")
    parent, exploited = data.get("parent"), data.get("exploited")
    if parent is not None and not _inside_the_sweep(parent):
        raise ValueError(f"parent {parent!r} is not a run of this sweep")
    if exploited is not None and not isinstance(exploited, int):
        raise TypeError("exploited must be an integer or null")
    return Interval(member, interval, run, params, score, epochs, parent, exploited)


def _inside_the_sweep(run: Any) -> bool:
    """Whether ``run`` names a folder under the sweep directory (relative, without ``..``)."""
    return isinstance(run, str) and not Path(run).is_absolute() and ".." not in Path(run).parts


def _draw(dist: BaseDistribution, stream: random.Random) -> Any:
    if isinstance(dist, CategoricalDistribution):
        return stream.choice(list(dist.choices))
    if isinstance(dist, IntDistribution):
        if dist.log:
            return _clip(
                dist, round(math.exp(stream.uniform(math.log(dist.low), math.log(dist.high))))
            )
        return stream.randrange(dist.low, dist.high + 1, dist.step)
    if isinstance(dist, FloatDistribution):
        if dist.log:
            return math.exp(stream.uniform(math.log(dist.low), math.log(dist.high)))
        return stream.uniform(dist.low, dist.high)
    raise SweepError(f"{type(dist).__name__}: not a distribution population-based training draws")


def _clip(dist: BaseDistribution, value: float) -> Any:
    low, high = getattr(dist, "low", value), getattr(dist, "high", value)
    clipped = min(max(value, low), high)
    return round(clipped) if isinstance(dist, IntDistribution) else float(clipped)
