"""``KeyedModule``: dict batches in, dict outputs out, losses and metrics declared by key."""

from __future__ import annotations

import functools
import operator
from collections.abc import Mapping
from typing import Any

import torch

from lightning_args.errors import ConfigValueError
from lightning_args.modules.configured import ConfiguredModule
from lightning_args.modules.tbptt import TBPTT
from lightning_args.modules.terms import Term, evaluate

Batch = Mapping[str, torch.Tensor]


class KeyedModule(ConfiguredModule):
    """A module whose ``forward(batch) -> dict`` is trained on losses declared in config.

    ``losses`` and ``metrics`` map a name to a term (``fn``, ``input`` output key, ``target``
    batch key, ``weight``). Training minimises the weighted sum of the losses; every stage logs
    ``<stage>/loss`` (the sum), each loss by name when there are several, and each metric by
    name (``val/acc``). Subclasses write ``forward`` only.

    With ``tbptt`` (truncated back-propagation through time, :class:`TBPTTConfig
    <lightning_args.config.terms.TBPTTConfig>`), a training batch is split along time into
    chunks, each trained on in turn (the optimizers step once per chunk; ``accumulate`` counts
    chunks), and the ``state`` outputs of one chunk, detached, are the next chunk's inputs of
    the same names. The state starts afresh with every batch, so the batches a checkpoint
    falls between never share a chunk sequence: resuming and requeueing need nothing more.
    Evaluation runs on whole sequences. Under DDP the logged values are averaged over ranks
    (``sync_dist``), weighted by each rank's batch sizes.

    Example:
        >>> import torch
        >>> from lightning_args import KeyedModule
        >>> from lightning_args.modules.terms import Term
        >>> class Scaler(KeyedModule):
        ...     def __init__(self) -> None:
        ...         super().__init__({"mse": Term(torch.nn.functional.mse_loss, "y", "target")})
        ...         self.scale = torch.nn.Parameter(torch.ones(()))
        ...     def forward(self, batch):
        ...         return {"y": self.scale * batch["x"]}
        >>> Scaler()({"x": torch.ones(2)})["y"].tolist()
        [1.0, 1.0]
    """

    def __init__(
        self,
        losses: Mapping[str, Term | Mapping[str, Any]],
        metrics: Mapping[str, Term | Mapping[str, Any]] | None = None,
        tbptt: TBPTT | Mapping[str, Any] | None = None,
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
        self.tbptt = None if tbptt is None else TBPTT.of(tbptt)

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        raise NotImplementedError(f"{type(self).__name__} must implement forward(batch) -> dict")

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        if self.tbptt is None:
            losses = self._losses(batch)
        else:
            # One optimizer step per chunk; what is logged is the mean over the chunks.
            state: dict[str, torch.Tensor] = {}
            chunks = []
            for chunk in self.tbptt.chunks(batch):
                outputs = self({**chunk, **state})
                chunk_losses = self._losses(chunk, outputs)
                self.train_on(functools.reduce(operator.add, chunk_losses.values()))
                state = self.tbptt.carry(outputs)
                chunks.append({name: value.detach() for name, value in chunk_losses.items()})
            losses = {name: torch.stack([c[name] for c in chunks]).mean() for name in chunks[0]}
        total = functools.reduce(operator.add, losses.values())
        self.log_interval_mean("train/loss", total, prog_bar=True)
        if len(losses) > 1:
            for name, value in losses.items():
                self.log_interval_mean(f"train/{name}", value)
        return total

    def _losses(
        self, batch: Batch, outputs: Mapping[str, torch.Tensor] | None = None
    ) -> dict[str, torch.Tensor]:
        return evaluate(
            self.losses, self(batch) if outputs is None else outputs, batch, "model.losses"
        )

    def _evaluate(self, batch: Batch, stage: str) -> None:
        outputs = self(batch)
        losses = self._losses(batch, outputs)
        logged = {f"{stage}/loss": functools.reduce(operator.add, losses.values())}
        if len(losses) > 1:
            logged |= {f"{stage}/{name}": value for name, value in losses.items()}
        for name, value in evaluate(self.metrics, outputs, batch, "model.metrics").items():
            logged[f"{stage}/{name}"] = value
        size = len(next(iter(batch.values())))
        self.log_dict(logged, prog_bar=True, batch_size=size, sync_dist=True)

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self._evaluate(batch, "test")
