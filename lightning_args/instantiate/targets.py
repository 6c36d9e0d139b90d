"""Checking every ``_target_`` of a config before anything is instantiated."""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Iterator
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from lightning_args.errors import TargetError, closest


def iter_targets(node: Any, prefix: str = "") -> Iterator[tuple[str, str]]:
    """Yield ``(key, target)`` for every ``_target_`` in ``node``, depth first.

    >>> list(iter_targets({"a": {"_target_": "x.Y", "b": [{"_target_": "z"}]}}))
    [('a._target_', 'x.Y'), ('a.b.0._target_', 'z')]
    """
    if isinstance(node, DictConfig | ListConfig):
        node = OmegaConf.to_container(node, resolve=False)
    items: Iterable[tuple[Any, Any]]
    if isinstance(node, dict):
        items = node.items()
    elif isinstance(node, list):
        items = enumerate(node)
    else:
        return
    for key, value in items:
        path = f"{prefix}{key}"
        if key == "_target_" and isinstance(value, str):
            yield path, value
        else:
            yield from iter_targets(value, f"{path}.")


def check_targets(cfg: DictConfig) -> None:
    """Raise :class:`TargetError` for the first ``_target_`` that cannot be imported."""
    for key, target in iter_targets(cfg):
        locate(target, key)


def locate(target: str, key: str) -> Any:
    """Import ``target`` (``package.module.Name``); on failure say which part is wrong."""
    parts = target.split(".")
    if not target or not all(p.isidentifier() for p in parts):
        raise TargetError(
            f"{key}={target!r} is not a dotted path. Expected e.g. "
            "'my_package.models.MyModule'. Fix: set it to the import path of a class or function"
        )
    module, depth = None, 0
    for depth in range(len(parts), 0, -1):
        name = ".".join(parts[:depth])
        try:
            module = importlib.import_module(name)
            break
        except ModuleNotFoundError as e:
            # A missing *dependency* of an existing module is a different error; report it.
            if e.name is not None and not name.startswith(e.name) and e.name != name:
                raise TargetError(
                    f"{key}={target!r}: importing {name!r} failed because {e.name!r} is not "
                    f"installed. Fix: pip install {e.name.split('.')[0]}"
                ) from e
            continue
    if module is None:
        raise TargetError(
            f"{key}={target!r}: no module {parts[0]!r} can be imported. Expected an importable "
            "dotted path. Fix: check the spelling, or run from the directory that holds the "
            "package (or install it)"
        )
    obj: Any = module
    for i, attr in enumerate(parts[depth:], start=depth):
        if not hasattr(obj, attr):
            owner = ".".join(parts[:i])
            match = closest(attr, [n for n in dir(obj) if not n.startswith("_")])
            raise TargetError(
                f"{key}={target!r}: {owner!r} has no attribute {attr!r}."
                + (f" Did you mean {match!r}? Fix: {key}={owner}.{match}" if match else "")
                + ("" if match else f" Fix: correct the name after {owner!r}")
            )
        obj = getattr(obj, attr)
    if not callable(obj):
        raise TargetError(
            f"{key}={target!r} is a {type(obj).__name__}, not a class or function. "
            "Fix: point it at something callable"
        )
    return obj
