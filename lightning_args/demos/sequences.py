"""Truncated BPTT on delayed recall: a GRU must output, at each step, the bit it saw ``delay``
steps earlier.

Bits are random, so the only way to predict ``y_t = x_{t-delay}`` is to remember ``x``. Trained
with ``model.tbptt.steps`` time steps per chunk, the gradient of the loss at ``t`` reaches the
input at ``t - delay`` only when both are in one chunk: chunks longer than the delay learn the
task (accuracy near 1), chunks no longer than it stay near chance (0.5; what they get above it
is read from the carried state, which no gradient trained to remember), although the forward
pass carries the state across chunks in both cases. Sequences are generated, nothing is downloaded.
"""

from __future__ import annotations

from collections.abc import Mapping

import lightning.pytorch as pl
import torch
from torch import nn

from lightning_args.errors import ConfigValueError
from lightning_args.modules.data import TensorBatches
from lightning_args.modules.keyed import Batch, KeyedModule
from lightning_args.modules.tbptt import TBPTT
from lightning_args.modules.terms import Term

#: The target of the steps before the first ``delay`` ones, which have nothing to recall.
IGNORED = -1.0


def recall_sequences(
    count: int, length: int, delay: int, generator: torch.Generator
) -> dict[str, torch.Tensor]:
    """``x``: random bits ``(count, length, 1)``; ``y``: ``x`` shifted by ``delay`` steps
    ``(count, length)``, :data:`IGNORED` where there is nothing to recall.

    >>> s = recall_sequences(1, 5, 2, torch.Generator().manual_seed(0))
    >>> s["x"][0, :3, 0].tolist() == s["y"][0, 2:].tolist(), s["y"][0, :2].tolist()
    (True, [-1.0, -1.0])
    """
    x = torch.randint(0, 2, (count, length, 1), generator=generator).float()
    y = torch.full((count, length), IGNORED)
    y[:, delay:] = x[:, : length - delay, 0]
    return {"x": x, "y": y}


def recall_bce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy with logits over the steps whose target is not :data:`IGNORED`
    (0 for a chunk that has none: the first chunks of a sequence, when shorter than the delay).

    >>> float(recall_bce(torch.zeros(1, 2), torch.tensor([[IGNORED, IGNORED]])))
    0.0
    """
    kept = target != IGNORED
    total = nn.functional.binary_cross_entropy_with_logits(
        logits[kept], target[kept], reduction="sum"
    )
    return total / kept.sum().clamp_min(1)


def recall_accuracy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Fraction of recalled bits right, over the steps whose target is not :data:`IGNORED`.

    >>> recall_accuracy(torch.tensor([[3.0, -1.0, 2.0]]), torch.tensor([[1.0, 1.0, -1.0]]))
    tensor(0.5000)
    """
    kept = target != IGNORED
    right = ((logits[kept] > 0).float() == target[kept]).float().sum()
    return right / kept.sum().clamp_min(1)


class DelayedRecall(pl.LightningDataModule):
    """Generated delayed-recall sequences; fixed ones for val and test.

    Example:
        >>> dm = DelayedRecall(train_size=8, eval_size=4, length=12, delay=3, batch_size=4)
        >>> dm.setup("fit")
        >>> {k: tuple(v.shape) for k, v in next(iter(dm.train_dataloader())).items()}
        {'x': (4, 12, 1), 'y': (4, 12)}
    """

    def __init__(
        self,
        train_size: int = 2048,
        eval_size: int = 256,
        length: int = 64,
        delay: int = 6,
        batch_size: int = 64,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if not 1 <= delay < length:
            raise ConfigValueError(
                f"data.delay={delay} with data.length={length}: expected 1 <= delay < length. "
                "Fix: data.delay=6 data.length=64"
            )
        self.train_size, self.eval_size, self.length = train_size, eval_size, length
        self.delay, self.batch_size, self.seed = delay, batch_size, seed
        self.splits: dict[str, dict[str, torch.Tensor]] = {}

    def setup(self, stage: str) -> None:
        if self.splits:
            return
        generator = torch.Generator().manual_seed(self.seed)
        sizes = {"train": self.train_size, "val": self.eval_size, "test": self.eval_size}
        self.splits = {
            name: recall_sequences(size, self.length, self.delay, generator)
            for name, size in sizes.items()
        }

    def train_dataloader(self) -> TensorBatches:
        seed = int(torch.initial_seed() % 2**31)
        return TensorBatches(self.splits["train"], self.batch_size, shuffle=True, seed=seed)

    def val_dataloader(self) -> TensorBatches:
        return TensorBatches(self.splits["val"], self.batch_size)

    def test_dataloader(self) -> TensorBatches:
        return TensorBatches(self.splits["test"], self.batch_size)


class RecurrentTagger(KeyedModule):
    """A GRU over ``batch[input_key]`` ``(batch, time, features)`` with one logit per step.

    ``forward`` returns ``logits`` ``(batch, time)`` and ``hidden``, the GRU's last state, and
    starts from ``batch["hidden"]`` when the batch has one: what ``model.tbptt.state:
    [hidden]`` carries from chunk to chunk.

    Example:
        >>> model = RecurrentTagger(
        ...     losses={"bce": Term(recall_bce, "logits", "y")}, hidden_size=8,
        ...     tbptt={"steps": 4, "keys": ["x", "y"]},
        ... )
        >>> outputs = model({"x": torch.zeros(2, 10, 1)})
        >>> tuple(outputs["logits"].shape), tuple(outputs["hidden"].shape)
        ((2, 10), (1, 2, 8))
    """

    def __init__(
        self,
        losses: Mapping[str, Term | Mapping[str, object]],
        metrics: Mapping[str, Term | Mapping[str, object]] | None = None,
        tbptt: TBPTT | Mapping[str, object] | None = None,
        input_size: int = 1,
        hidden_size: int = 32,
        input_key: str = "x",
    ) -> None:
        super().__init__(losses, metrics, tbptt)
        self.input_key = input_key
        self.rnn = nn.GRU(input_size, hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, 1)

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        features, hidden = self.rnn(batch[self.input_key], batch.get("hidden"))
        return {"logits": self.head(features).squeeze(-1), "hidden": hidden}
