"""``KeyedModule``: dict batches in, dict outputs out, losses and metrics declared by key."""

from __future__ import annotations

import functools
import operator
from collections.abc import Mapping
from typing import Any

import torch

from lightning_args.errors import ConfigValueError
from lightning_args.modules.configured import ConfiguredModule
from lightning_args.modules.terms import Term, evaluate

Batch = Mapping[str, torch.Tensor]


class KeyedModule(ConfiguredModule):
    """A module whose ``forward(batch) -> dict`` is trained on losses declared in config.

    ``losses`` and ``metrics`` map a name to a term (``fn``, ``input`` output key, ``target``
    batch key, ``weight``). Training minimises the weighted sum of the losses; every stage logs
    ``<stage>/loss`` (the sum), each loss by name when there are several, and each metric by
    name (``val/acc``). Subclasses write ``forward`` only.
    """

    def __init__(
        self,
        losses: Mapping[str, Term | Mapping[str, Any]],
        metrics: Mapping[str, Term | Mapping[str, Any]] | None = None,
    ) -> None:
        super().__init__()
        if not losses:
            raise ConfigValueError(
                f"{type(self).__name__} has no losses: expected at least one in model.losses. "
                "Fix: e.g. model.losses.ce={fn: {_target_: torch.nn.functional.cross_entropy, "
                "_partial_: true}, input: logits, target: label}"
            )
        self.losses = {name: Term.of(term) for name, term in losses.items()}
        self.metrics = {name: Term.of(term) for name, term in (metrics or {}).items()}

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        raise NotImplementedError(f"{type(self).__name__} must implement forward(batch) -> dict")

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        losses = evaluate(self.losses, self(batch), batch, "model.losses")
        total = functools.reduce(operator.add, losses.values())
        self.log_interval_mean("train/loss", total, prog_bar=True)
        if len(losses) > 1:
            for name, value in losses.items():
                self.log_interval_mean(f"train/{name}", value)
        return total

    def _evaluate(self, batch: Batch, stage: str) -> None:
        outputs = self(batch)
        losses = evaluate(self.losses, outputs, batch, "model.losses")
        logged = {f"{stage}/loss": functools.reduce(operator.add, losses.values())}
        if len(losses) > 1:
            logged |= {f"{stage}/{name}": value for name, value in losses.items()}
        for name, value in evaluate(self.metrics, outputs, batch, "model.metrics").items():
            logged[f"{stage}/{name}"] = value
        size = len(next(iter(batch.values())))
        self.log_dict(logged, prog_bar=True, batch_size=size)

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self._evaluate(batch, "test")
