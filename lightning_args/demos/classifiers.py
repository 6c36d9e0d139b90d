"""Two small image classifiers for the digits demo, sharing one training loop."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from lightning_args.errors import ConfigValueError
from lightning_args.module import ConfiguredModule

Batch = tuple[torch.Tensor, torch.Tensor]


class DigitsClassifier(ConfiguredModule):
    """Cross-entropy training of ``self.net``; logs ``train/loss`` (mean over each logging
    interval), ``val/loss``, ``val/acc``, ``test/loss`` and ``test/acc``. Subclasses only build
    ``self.net``.
    """

    net: nn.Module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits: torch.Tensor = self.net(x)
        return logits

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = F.cross_entropy(self(x), y)
        self.log_interval_mean("train/loss", loss, prog_bar=True)
        return loss

    def _evaluate(self, batch: Batch, stage: str) -> None:
        x, y = batch
        logits = self(x)
        metrics = {
            f"{stage}/loss": F.cross_entropy(logits, y),
            f"{stage}/acc": (logits.argmax(dim=1) == y).float().mean(),
        }
        self.log_dict(metrics, prog_bar=True, batch_size=len(y))

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self._evaluate(batch, "test")


class MLPClassifier(DigitsClassifier):
    """Flatten, then ``Linear -> ReLU -> Dropout`` per entry of ``hidden``, then a linear head.

    Example:
        >>> model = MLPClassifier(input_shape=(1, 8, 8), hidden=(32,), num_classes=10)
        >>> tuple(model(torch.zeros(4, 1, 8, 8)).shape)
        (4, 10)
    """

    def __init__(
        self,
        input_shape: Sequence[int] = (1, 8, 8),
        num_classes: int = 10,
        hidden: Sequence[int] = (128,),
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        layers: list[nn.Module] = [nn.Flatten()]
        width = math.prod(input_shape)
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU(), nn.Dropout(dropout)]
            width = size
        layers.append(nn.Linear(width, num_classes))
        self.net = nn.Sequential(*layers)


class CNNClassifier(DigitsClassifier):
    """``Conv -> BatchNorm -> ReLU -> MaxPool(2)`` per entry of ``channels``, then a linear head.

    Example:
        >>> model = CNNClassifier(input_shape=(1, 8, 8), channels=(8, 16), num_classes=10)
        >>> tuple(model(torch.zeros(4, 1, 8, 8)).shape)
        (4, 10)
    """

    def __init__(
        self,
        input_shape: Sequence[int] = (1, 8, 8),
        num_classes: int = 10,
        channels: Sequence[int] = (32, 64),
        kernel_size: int = 3,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        side = min(input_shape[1:])
        if side >> len(channels) < 1:
            raise ConfigValueError(
                f"model.channels={list(channels)} pools {side}x{side} images {len(channels)} "
                f"times: expected at most {side.bit_length() - 1} conv blocks. Fix: drop some"
            )
        layers: list[nn.Module] = []
        width = input_shape[0]
        for size in channels:
            layers += [
                nn.Conv2d(width, size, kernel_size, padding=kernel_size // 2),
                nn.BatchNorm2d(size),
                nn.ReLU(),
                nn.MaxPool2d(2),
            ]
            width = size
        pooled = [s >> len(channels) for s in input_shape[1:]]
        layers += [
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(width * math.prod(pooled), num_classes),
        ]
        self.net = nn.Sequential(*layers)
