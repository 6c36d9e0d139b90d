"""Evaluating losses and metrics declared by key on dict outputs and dict batches."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from lightning_args.errors import ConfigKeyError, closest


@dataclass(frozen=True)
class Term:
    """One loss or metric: ``weight * fn(outputs[input], batch[target])``."""

    fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    input: str
    target: str
    weight: float = 1.0

    @classmethod
    def of(cls, value: Term | Mapping[str, Any]) -> Term:
        """A :class:`Term` from itself or from its (instantiated) config."""
        if isinstance(value, Term):
            return value
        fn = value["fn"]
        if isinstance(fn, functools.partial) and type(fn) is not functools.partial:
            # Hydra 1.3.8 wraps `_partial_` targets in a partial that re-authorizes its target
            # on every call: ~0.1 ms, for a function called on every batch. The target was
            # authorized when the config was instantiated; call it directly from now on.
            fn = functools.partial(fn.func, *fn.args, **fn.keywords)
        return cls(**{**value, "fn": fn})


def evaluate(
    terms: Mapping[str, Term],
    outputs: Mapping[str, torch.Tensor],
    batch: Mapping[str, torch.Tensor],
    kind: str,
) -> dict[str, torch.Tensor]:
    """Every term's weighted value, by name; a key that does not exist names those that do.

    >>> import torch.nn.functional as F
    >>> terms = {"ce": Term(F.cross_entropy, "logits", "label")}
    >>> batch = {"label": torch.tensor([0])}
    >>> evaluate(terms, {"logits": torch.tensor([[10.0, 0.0]])}, batch, "losses")["ce"] < 1e-3
    tensor(True)
    """
    values = {}
    for name, term in terms.items():
        for key, source, where in ((term.input, outputs, "outputs"), (term.target, batch, "batch")):
            if key not in source:
                role = "input" if source is outputs else "target"
                fix = closest(key, [str(k) for k in source]) or "<one of them>"
                raise ConfigKeyError(
                    f"{kind}.{name}.{role}={key!r} is not a key of the model's {where}: it has "
                    f"{', '.join(map(repr, source)) or 'no keys'}. "
                    f"Fix: {kind}.{name}.{role}={fix}"
                )
        value = term.fn(outputs[term.input], batch[term.target])
        values[name] = value * term.weight if term.weight != 1.0 else value
    return values
