"""Truncated back-propagation through time by key: chunks of a sequence batch, state carried."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from lightning_args.errors import ConfigKeyError, ConfigValueError, closest

Batch = Mapping[str, torch.Tensor]


@dataclass(frozen=True)
class TBPTT:
    """Split a batch's sequences into chunks of ``steps`` and carry ``state`` between them.

    See :class:`lightning_args.config.terms.TBPTTConfig` for the fields.

    Example:
        >>> split = TBPTT(steps=2, keys=("x",))
        >>> [c["x"].tolist() for c in split.chunks({"x": torch.arange(5).view(1, 5)})]
        [[[0, 1]], [[2, 3]], [[4]]]
        >>> split.carry({"hidden": torch.ones(1, requires_grad=True), "y": torch.zeros(1)})
        {'hidden': tensor([1.])}
    """

    steps: int
    keys: tuple[str, ...]
    state: tuple[str, ...] = ("hidden",)
    time_dim: int = 1

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ConfigValueError(
                f"model.tbptt.steps={self.steps}: expected a positive number of time steps per "
                "chunk. Fix: e.g. model.tbptt.steps=20"
            )
        if not self.keys:
            raise ConfigValueError(
                "model.tbptt.keys=[]: expected the batch keys that hold sequences. "
                "Fix: e.g. model.tbptt.keys=[x,y]"
            )

    @classmethod
    def of(cls, value: TBPTT | Mapping[str, Any]) -> TBPTT:
        """A :class:`TBPTT` from itself or from its config."""
        if isinstance(value, TBPTT):
            return value
        return cls(
            steps=int(value["steps"]),
            keys=tuple(value["keys"]),
            state=tuple(value.get("state", ("hidden",))),
            time_dim=int(value.get("time_dim", 1)),
        )

    def chunks(self, batch: Batch) -> Iterator[dict[str, torch.Tensor]]:
        """The batch, a chunk of ``steps`` time steps at a time (the last one may be shorter);
        keys that are not sequences are in every chunk whole."""
        for key in self.keys:
            if key not in batch:
                fix = closest(key, [str(k) for k in batch]) or "<one of them>"
                raise ConfigKeyError(
                    f"model.tbptt.keys: {key!r} is not a key of the batch: it has "
                    f"{', '.join(map(repr, batch)) or 'no keys'}. Fix: model.tbptt.keys "
                    f"lists {fix!r} instead"
                )
        shallow = [key for key in self.keys if batch[key].dim() <= self.time_dim]
        if shallow:
            shape = tuple(batch[shallow[0]].shape)
            raise ConfigValueError(
                f"model.tbptt.time_dim={self.time_dim}, but batch[{shallow[0]!r}] has shape "
                f"{shape}: expected a dimension {self.time_dim} to split. Fix: set "
                "model.tbptt.time_dim to the sequences' time dimension"
            )
        lengths = {key: batch[key].shape[self.time_dim] for key in self.keys}
        if len(set(lengths.values())) > 1:
            raise ConfigValueError(
                f"model.tbptt.keys have different lengths along time_dim={self.time_dim}: "
                f"{lengths}. Expected one sequence length. Fix: list only the sequence keys in "
                "model.tbptt.keys, or set model.tbptt.time_dim"
            )
        length = next(iter(lengths.values()))
        for start in range(0, length, self.steps):
            chunk = dict(batch)
            for key in self.keys:
                chunk[key] = batch[key].narrow(
                    self.time_dim, start, min(self.steps, length - start)
                )
            yield chunk

    def carry(self, outputs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The state for the next chunk: the ``state`` outputs, detached (gradients stop here)."""
        missing = [key for key in self.state if key not in outputs]
        if missing:
            raise ConfigKeyError(
                f"model.tbptt.state: {missing[0]!r} is not a key of the model's outputs: it has "
                f"{', '.join(map(repr, outputs)) or 'no keys'}. Fix: return it from forward, or "
                "remove it from model.tbptt.state"
            )
        return {key: outputs[key].detach() for key in self.state}
