"""The fold models of a k-fold run as one model: :class:`FoldEnsemble` averages their outputs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import lightning.pytorch as pl
import torch
from torch import nn

from lightning_args.errors import ConfigTypeError


class FoldEnsemble(pl.LightningModule):
    """The models of a k-fold run's folds (``lightning_args.load_run(<k-fold run>)``): calling it
    calls every fold's model and averages what they return, tensor by tensor (through dicts,
    lists and tuples), so it predicts as any of them does. ``predict_step`` is Lightning's
    default: ``Trainer.predict`` gives the averaged outputs.

    A classifier's outputs are its logits: their mean is what it averages. Averaging
    probabilities instead is ``torch.stack([m(x).softmax(-1) for m in ensemble.members])``.

    Example:
        >>> members = [nn.Linear(2, 1) for _ in range(3)]
        >>> ensemble = FoldEnsemble(members)
        >>> x = torch.ones(4, 2)
        >>> bool(torch.allclose(ensemble(x), torch.stack([m(x) for m in members]).mean(0)))
        True
    """

    def __init__(self, members: Sequence[nn.Module]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return mean_of([member(*args, **kwargs) for member in self.members])


def mean_of(outputs: Sequence[Any]) -> Any:
    """The element-wise mean of several models' outputs of the same structure."""
    first = outputs[0]
    if isinstance(first, torch.Tensor):
        return torch.stack(list(outputs)).float().mean(0).to(first.dtype)
    if isinstance(first, Mapping):
        return {key: mean_of([out[key] for out in outputs]) for key in first}
    if isinstance(first, list | tuple):
        return type(first)(mean_of(column) for column in zip(*outputs, strict=True))
    raise ConfigTypeError(
        f"the folds' models returned {type(first).__name__}, which cannot be averaged: expected "
        "tensors (or dicts, lists or tuples of them). Fix: call one fold's model, "
        "ensemble.members[k], or load one fold: load_run(<run dir>, fold=k)"
    )
