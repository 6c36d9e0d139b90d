"""Nested config dicts as dotted keys: what ``lightning-args runs`` and ``diff`` show, and what
the MLflow logger logs as parameters."""

from __future__ import annotations

from typing import Any


def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``.

    >>> flatten({"model": {"hidden": [1, 2]}, "seed": 3})
    {'model.hidden': [1, 2], 'seed': 3}
    """
    if not isinstance(node, dict) or not node:
        return {prefix: node} if prefix else {}
    flat: dict[str, Any] = {}
    for key, value in node.items():
        flat |= flatten(value, f"{prefix}.{key}" if prefix else str(key))
    return flat
