"""``hydra.sweeper.enqueue``: configurations a user wants run first, checked against the search
space and queued in the study once.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import optuna
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import OverrideParseException

from lightning_args._compat import optuna as compat
from lightning_args._compat.hydra import override_text
from lightning_args.errors import SearchSpaceError
from lightning_args.sweep.space import Param, as_value

_log = logging.getLogger(__name__)

#: The parameters a trial with these override lines has: the searched ones and those the
#: options it chooses declare (``ComposedSpace.option_params``).
ParamsOf = Callable[[list[str]], Sequence[Param]]


def chosen_params(entries: Sequence[Any], params_of: ParamsOf) -> list[dict[str, Any]]:
    """Each entry of ``hydra.sweeper.enqueue`` as the values Optuna queues: ``{name: value}``
    in the form a trial holds them, every name a parameter and every value one it takes."""
    return [
        _values(entry, params_of, f"hydra.sweeper.enqueue[{i}]") for i, entry in enumerate(entries)
    ]


def enqueue(study: optuna.Study, queued: Sequence[dict[str, Any]]) -> int:
    """Queue each configuration that was not queued in ``study`` before; how many.

    Only earlier *queued* trials count (their values are the queue's own ``fixed_params``): a
    configuration that a sampled trial already ran is queued all the same, as the duplicate
    guard lets queued trials run as given.
    """
    earlier = [compat.fixed_params(t) for t in study.get_trials(deepcopy=False)]
    added = 0
    for values in queued:
        if any(_same(values, fixed) for fixed in earlier if fixed is not None):
            continue
        study.enqueue_trial(values, skip_if_exists=False)
        earlier.append(values)
        added += 1
    if added:
        _log.info(
            "Queued %d of hydra.sweeper.enqueue's %d configuration(s) to run first",
            added,
            len(queued),
        )
    return added


def _same(values: Mapping[str, Any], fixed: Mapping[str, Any]) -> bool:
    if values.keys() != fixed.keys():
        return False
    return all(
        math.isclose(float(v), float(fixed[k]), rel_tol=1e-12)
        if isinstance(v, int | float) and isinstance(fixed[k], int | float)
        else v == fixed[k]
        for k, v in values.items()
    )


def _values(entry: Any, params_of: ParamsOf, where: str) -> dict[str, Any]:
    lines = _lines(entry, where)
    try:
        overrides = OverridesParser.create().parse_overrides(lines)
    except OverrideParseException as error:
        raise SearchSpaceError(
            f"{where}: {str(error).splitlines()[0]}. Expected overrides such as "
            "optimizer.lr=0.003. Fix: write each as key=value"
        ) from None
    params = {p.name: p for p in params_of(lines)}
    values: dict[str, Any] = {}
    for line, override in zip(lines, overrides, strict=True):
        name = override.get_key_element().lstrip("+~")
        if override.is_sweep_override():
            raise SearchSpaceError(
                f"{where}: {line} is a sweep: expected one value per key. Fix: "
                f"{name}=<one of its values>"
            )
        param = params.get(name)
        if param is None:
            raise SearchSpaceError(
                f"{where}: {name!r} is not a parameter of the search space: it has "
                f"{', '.join(map(repr, params)) or 'none'}. Fix: queue values of those, or "
                f"search {name} too (or set it on the command line for every trial)"
            )
        value = as_value(param.distribution, override.value())
        if value is None:
            raise SearchSpaceError(
                f"{where}: {line}: expected a value of {name}'s space, "
                f"{_shown(param.distribution)}. Fix: one of those values, or widen the space"
            )
        values[name] = value
    return values


def _lines(entry: Any, where: str) -> list[str]:
    if isinstance(entry, Mapping):
        return [f"{key}={override_text(value)}" for key, value in entry.items()]
    if (
        isinstance(entry, Sequence)
        and not isinstance(entry, str)
        and all(isinstance(e, str) for e in entry)
    ):
        return list(entry)
    raise SearchSpaceError(
        f"{where}: {entry!r}: expected a list of overrides ([optimizer.lr=0.003, "
        "model/encoder=cnn]) or a mapping ({optimizer.lr: 0.003}). Fix: write it as one of them"
    )


def _shown(dist: optuna.distributions.BaseDistribution) -> str:
    if isinstance(dist, optuna.distributions.CategoricalDistribution):
        return "one of " + ", ".join(map(str, dist.choices))
    low, high = dist.low, dist.high  # type: ignore[attr-defined]
    step = getattr(dist, "step", None)
    return f"from {low} to {high}" + (f" in steps of {step}" if step not in (None, 1) else "")
