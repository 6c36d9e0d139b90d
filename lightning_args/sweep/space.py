"""Hydra's sweep syntax to Optuna distributions, and sampled values back to overrides.

=================================  =============================================================
``key=choice(a,b,c)``, ``a,b,c``   ``CategoricalDistribution`` (lists and dicts as their text)
``key=range(1,5)``                 ``IntDistribution(1, 4)``: the upper bound is excluded, as in
                                   Hydra; float ranges keep their step
``key=interval(0.1,1)``            ``FloatDistribution(0.1, 1.0)``
``key=int(interval(8,64))``        ``IntDistribution(8, 64)``
``key=tag(log,interval(..))``      ``log=True``
``key=value``                      not searched: every trial gets ``key=value``
=================================  =============================================================
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

import optuna
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import (
    ChoiceSweep,
    IntervalSweep,
    Override,
    RangeSweep,
    Transformer,
)
from hydra.errors import OverrideParseException
from optuna.distributions import (
    BaseDistribution,
    CategoricalChoiceType,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from lightning_args._compat.hydra import override_text
from lightning_args.errors import SearchSpaceError


@dataclass(frozen=True)
class Param:
    """One searched key: ``name`` (the override's key, e.g. ``model/encoder``) and its
    distribution. ``key`` keeps the override prefix (``+x``), which the job's override needs."""

    key: str
    distribution: BaseDistribution

    @property
    def name(self) -> str:
        return self.key.lstrip("+~")

    def override(self, value: Any) -> str:
        """The command-line override that gives a trial ``value``."""
        return f"{self.key}={_text(value)}"


@dataclass(frozen=True)
class Space:
    """A parsed search space: searched parameters, and fixed overrides every trial gets."""

    params: tuple[Param, ...]
    fixed: tuple[str, ...]

    def names(self) -> set[str]:
        return {p.name for p in self.params} | {_key_of(f) for f in self.fixed}


def parse(entries: Mapping[str, Any] | Iterable[str], *, where: str = "params") -> Space:
    """Parse ``{key: expression}`` (a ``params`` node) or ``["key=expression", ...]``.

    >>> space = parse({"lr": "tag(log, interval(1e-4, 1e-1))", "depth": "range(1, 4)", "x": 1})
    >>> [(p.name, type(p.distribution).__name__) for p in space.params]
    [('lr', 'FloatDistribution'), ('depth', 'IntDistribution')]
    >>> space.params[1].distribution.high, space.fixed
    (3, ('x=1',))
    """
    if isinstance(entries, Mapping):
        lines = [f"{key}={_text(value)}" for key, value in entries.items()]
    else:
        lines = list(entries)
    params: list[Param] = []
    fixed: list[str] = []
    for line in lines:
        try:
            (override,) = OverridesParser.create().parse_overrides([line])
        except OverrideParseException as error:
            raise SearchSpaceError(
                f"{where}: cannot parse {line!r}: {_parse_reason(error)}\n"
                "  Expected Hydra's sweep syntax: choice(a,b), range(1,5), interval(0.0,1.0), "
                "int(interval(8,64)), tag(log, interval(1e-4,1e-1)) or a plain value."
            ) from None
        if override.is_sweep_override():
            params.append(Param(override.get_key_element(), distribution(override, where=where)))
        else:
            fixed.append(line)
    return Space(tuple(params), tuple(fixed))


def distribution(override: Override, *, where: str = "params") -> BaseDistribution:
    """The Optuna distribution of one sweep override (see the module's table)."""
    key = override.get_key_element()
    value = override.value()
    if isinstance(value, ChoiceSweep) or (isinstance(value, RangeSweep) and value.shuffle):
        # Transformer.encode leaves primitives as they are and writes lists/dicts as text.
        choices = [_choice(c) for c in override.sweep_iterator(transformer=Transformer.encode)]
        if len(set(map(repr, choices))) != len(choices):
            raise SearchSpaceError(f"{where}: {key}={_text(value)} repeats a choice")
        return CategoricalDistribution(choices)
    if isinstance(value, RangeSweep):
        values = [v for v in override.sweep_iterator() if isinstance(v, int | float)]
        if not values:
            raise SearchSpaceError(
                f"{where}: {key}=range({value.start}, {value.stop}, {value.step}) is empty "
                "(the upper bound is excluded). Fix: a stop beyond the start, in the step's "
                "direction"
            )
        low, high = min(values), max(values)
        step = abs(value.step)
        if all(isinstance(v, int) for v in values):
            return IntDistribution(int(low), int(high), step=int(step))
        return FloatDistribution(float(low), float(high), step=float(step))
    if isinstance(value, IntervalSweep):
        return _interval(key, value, where)
    raise SearchSpaceError(f"{where}: {key}: {type(value).__name__} sweeps are not searchable")


def suggest(trial: optuna.trial.Trial, param: Param) -> Any:
    """Ask ``trial`` for ``param``'s value, through Optuna's public ``suggest_*`` API."""
    dist = param.distribution
    if isinstance(dist, CategoricalDistribution):
        return trial.suggest_categorical(param.name, dist.choices)
    if isinstance(dist, IntDistribution):
        return trial.suggest_int(param.name, dist.low, dist.high, step=dist.step, log=dist.log)
    if isinstance(dist, FloatDistribution):
        return trial.suggest_float(param.name, dist.low, dist.high, step=dist.step, log=dist.log)
    raise TypeError(f"unsupported distribution {dist!r}")


ConfigKey: TypeAlias = frozenset[tuple[str, Any]]


def config_key(
    params: Mapping[str, Any], distributions: Mapping[str, BaseDistribution]
) -> ConfigKey:
    """A trial's values as one comparable key: equal keys, the same configuration.

    Values on a step (``range`` of floats) compare by their step number, so that a value
    written ``0.30000000000000004`` by one computation and ``0.3`` by another are the same.

    >>> dist = FloatDistribution(0.1, 0.5, step=0.1)
    >>> config_key({"x": 0.1 + 0.2}, {"x": dist}) == config_key({"x": 0.3}, {"x": dist})
    True
    """
    out = []
    for name, value in params.items():
        dist = distributions.get(name)
        if isinstance(dist, FloatDistribution) and dist.step is not None:
            value = round((float(value) - dist.low) / dist.step)
        out.append((name, value))
    return frozenset(out)


def finite_values(dist: BaseDistribution, limit: int) -> list[Any] | None:
    """Every value ``dist`` can take, or ``None`` when it is continuous or has over ``limit``.

    >>> finite_values(IntDistribution(1, 7, step=2), 10), finite_values(FloatDistribution(0, 1), 10)
    ([1, 3, 5, 7], None)
    """
    if isinstance(dist, CategoricalDistribution):
        values: list[Any] = list(dist.choices)
    elif isinstance(dist, IntDistribution):
        if (dist.high - dist.low) // dist.step >= limit:
            return None
        values = list(range(dist.low, dist.high + 1, dist.step))
    elif isinstance(dist, FloatDistribution) and dist.step is not None:
        count = round((dist.high - dist.low) / dist.step) + 1
        if count > limit:
            return None
        values = [dist.low + i * dist.step for i in range(count)]
    else:
        return None
    return values if len(values) <= limit else None


def as_value(dist: BaseDistribution, value: Any) -> Any | None:
    """``value`` as a trial of ``dist`` holds it (a list as its text, an integral float as an
    int), or ``None`` when ``dist`` cannot take it.

    >>> as_value(CategoricalDistribution(["[64]", "[128]"]), [64])
    '[64]'
    >>> as_value(IntDistribution(1, 7, step=2), 4) is None, as_value(FloatDistribution(0, 1), 2)
    (True, None)
    >>> as_value(IntDistribution(1, 7), float("inf")) is None
    True
    """
    if isinstance(dist, CategoricalDistribution):
        held = _choice(value)
        return held if held in dist.choices else None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    if isinstance(dist, IntDistribution):
        if value != int(value):
            return None
        number = int(value)
        fits = dist.low <= number <= dist.high and (number - dist.low) % dist.step == 0
        return number if fits else None
    if isinstance(dist, FloatDistribution):
        number_f = float(value)
        if not dist.low <= number_f <= dist.high:
            return None
        if dist.step is not None and abs(
            round((number_f - dist.low) / dist.step) * dist.step + dist.low - number_f
        ) > 1e-8 * max(1.0, abs(number_f)):
            return None
        return number_f
    return None


def _interval(key: str, value: IntervalSweep, where: str) -> BaseDistribution:
    start, end = value.start, value.end
    log = "log" in value.tags
    unknown = set(value.tags) - {"log"}
    if unknown:
        raise SearchSpaceError(
            f"{where}: {key}: unknown tag(s) {sorted(unknown)}. Only tag(log, interval(..))"
        )
    if start is None or end is None or not math.isfinite(start) or not math.isfinite(end):
        raise SearchSpaceError(f"{where}: {key}: interval bounds must be finite numbers")
    if start >= end:
        raise SearchSpaceError(
            f"{where}: {key}=interval({start}, {end}): the lower bound must be below the upper "
            f"one. Fix: {key}=interval({end}, {start})"
        )
    if log and start <= 0:
        raise SearchSpaceError(
            f"{where}: {key}=tag(log, interval({start}, {end})): a log scale needs a lower "
            "bound above 0"
        )
    if isinstance(start, int) and isinstance(end, int):
        return IntDistribution(start, end, log=log)
    return FloatDistribution(float(start), float(end), log=log)


def _parse_reason(error: OverrideParseException) -> str:
    """The line of Hydra's parse error that says what is wrong: not its heading (``Error parsing
    override ...``) nor its pointer to the grammar's docs, which some messages lack."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    reasons = [
        line
        for line in lines
        if not line.startswith(("Error parsing override", "See https://hydra.cc/"))
    ]
    return (reasons or lines or ["Hydra gave no reason"])[-1]


def _choice(value: Any) -> CategoricalChoiceType:
    """A value as a categorical choice holds it: primitives as they are, lists and dicts as
    their override text."""
    return value if isinstance(value, bool | int | float | str) or value is None else _text(value)


def _text(value: Any) -> str:
    """A value as override text: strings stay as written, numbers and lists in Hydra's form."""
    if isinstance(value, str):
        return value
    if isinstance(value, ChoiceSweep | RangeSweep | IntervalSweep):
        return str(value)
    return override_text(value)


def _key_of(line: str) -> str:
    return line.split("=", 1)[0].lstrip("+~")
