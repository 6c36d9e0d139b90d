"""Samplers that enumerate a finite space, ``grid`` and ``bruteforce``: checked against the
sweep's space before any job starts, and the grid's points built from it.

Both need every parameter to take finitely many values (``choice``, ``range``). A grid is a
product, so it also needs the same parameters in every trial; brute force follows a conditional
space (an option's own parameters only where it is chosen) as it is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from omegaconf import DictConfig, OmegaConf

from lightning_args.errors import SearchSpaceError
from lightning_args.sweep.space import ConfigKey, Param, finite_values

GRID = "optuna.samplers.GridSampler"
BRUTE_FORCE = "optuna.samplers.BruteForceSampler"
_OPTION = {GRID: "grid", BRUTE_FORCE: "bruteforce"}


def finite_sampler(
    node: Any,
    configurations: Mapping[ConfigKey, Mapping[str, Any]] | None,
    params: Sequence[Param],
) -> Any:
    """``hydra.sweeper.sampler`` (``node``) as it can run: unchanged for other samplers; for
    ``grid`` and ``bruteforce`` checked against the finite space's ``configurations``
    (``None``: not finite; ``params``: the parameters, to name the continuous ones), and a grid
    without its own ``search_space`` given the sweep's.

    >>> from lightning_args.sweep.space import parse
    >>> space = parse(["x=choice(1,2)", "y=range(0,3)"], where="command line")
    >>> grid = OmegaConf.create({"_target_": GRID, "search_space": None, "seed": 0})
    >>> configurations = {frozenset({("x", x), ("y", y)}): {"x": x, "y": y}
    ...                   for x in (1, 2) for y in (0, 1, 2)}
    >>> dict(finite_sampler(grid, configurations, space.params).search_space)
    {'x': [1, 2], 'y': [0, 1, 2]}
    """
    target = node.get("_target_") if isinstance(node, DictConfig) else None
    option = _OPTION.get(str(target))
    if option is None:
        return node
    if configurations is None:
        continuous = [p.name for p in params if finite_values(p.distribution, 10_000) is None]
        what = (
            f"{', '.join(continuous)} {'takes' if len(continuous) == 1 else 'take'} "
            "continuous values"
            if continuous
            else "it has more than 10000 configurations"
        )
        raise SearchSpaceError(
            f"hydra/sweeper/sampler={option} runs every configuration of a finite space, but "
            f"{what}. Expected choice(...) or range(...) for every parameter. Fix: make them "
            "choices or ranges, or choose a sampler for continuous spaces, e.g. "
            "hydra/sweeper/sampler=tpe"
        )
    if target == BRUTE_FORCE or node.get("search_space") is not None:
        return node
    rows = list(configurations.values())
    names = list(dict.fromkeys(name for row in rows for name in row))
    conditional = [name for name in names if any(name not in row for row in rows)]
    if conditional:
        raise SearchSpaceError(
            f"hydra/sweeper/sampler=grid needs the same parameters in every trial, but "
            f"{', '.join(conditional)} {'is' if len(conditional) == 1 else 'are'} only in the "
            "trials whose options declare them. Expected a product of choices. Fix: "
            "hydra/sweeper/sampler=bruteforce, which enumerates such a space as it is"
        )
    grid = {name: list(dict.fromkeys(row[name] for row in rows)) for name in names}
    completed = OmegaConf.to_container(node)
    assert isinstance(completed, dict)
    return OmegaConf.create({**completed, "search_space": grid})
