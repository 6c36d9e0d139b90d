"""A digits classifier composed of parts: an encoder and a head, each its own config group."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from lightning_args.errors import ConfigValueError
from lightning_args.modules.keyed import Batch, KeyedModule
from lightning_args.modules.terms import Term


class MLPEncoder(nn.Module):
    """Flatten, then ``Linear -> ReLU -> Dropout`` per entry of ``hidden``.

    Example:
        >>> MLPEncoder(input_shape=(1, 8, 8), hidden=(32, 16)).out_features
        16
    """

    def __init__(
        self, input_shape: Sequence[int], hidden: Sequence[int] = (128,), dropout: float = 0.0
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = math.prod(input_shape)
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU(), nn.Dropout(dropout)]
            width = size
        self.net = nn.Sequential(*layers)
        self.out_features = width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features: torch.Tensor = self.net(x)
        return features


class CNNEncoder(nn.Module):
    """``Conv -> BatchNorm -> ReLU -> MaxPool(2)`` per entry of ``channels``, then flatten.

    Example:
        >>> CNNEncoder(input_shape=(1, 8, 8), channels=(8, 16)).out_features  # 16 x 2 x 2
        64
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        channels: Sequence[int] = (32, 64),
        kernel_size: int = 3,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        side = min(input_shape[1:])
        if side >> len(channels) < 1:
            raise ConfigValueError(
                f"model.encoder.channels={list(channels)} pools {side}x{side} images "
                f"{len(channels)} times: expected at most {side.bit_length() - 1} conv blocks. "
                "Fix: drop some"
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
        layers += [nn.Flatten(), nn.Dropout(dropout)]
        self.net = nn.Sequential(*layers)
        self.out_features = width * math.prod(s >> len(channels) for s in input_shape[1:])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features: torch.Tensor = self.net(x)
        return features


class MLPHead(nn.Sequential):
    """``Linear -> ReLU -> Linear``: a head with one hidden layer."""

    def __init__(self, in_features: int, out_features: int, hidden: int = 64) -> None:
        super().__init__(nn.Linear(in_features, hidden), nn.ReLU(), nn.Linear(hidden, out_features))


class Classifier(KeyedModule):
    """``{"logits": head(encoder(batch[input_key]))}``, trained on the losses of its config.

    ``encoder`` is a module with an ``out_features`` attribute; ``head`` is called as
    ``head(in_features=encoder.out_features, out_features=num_classes)``, so both are config
    groups that compose freely (``model/encoder=cnn model/head=mlp``).

    Example:
        >>> from functools import partial
        >>> import torch.nn.functional as F
        >>> from lightning_args.modules.metrics import accuracy
        >>> model = Classifier(
        ...     encoder=MLPEncoder(input_shape=(1, 8, 8), hidden=(32,)),
        ...     head=partial(torch.nn.Linear),
        ...     losses={"ce": Term(F.cross_entropy, "logits", "label")},
        ...     metrics={"acc": Term(accuracy, "logits", "label")},
        ... )
        >>> tuple(model({"image": torch.zeros(4, 1, 8, 8)})["logits"].shape)
        (4, 10)
    """

    def __init__(
        self,
        encoder: nn.Module,
        head: Callable[..., nn.Module],
        losses: Mapping[str, Term | Mapping[str, Any]],
        metrics: Mapping[str, Term | Mapping[str, Any]] | None = None,
        num_classes: int = 10,
        input_key: str = "image",
    ) -> None:
        super().__init__(losses=losses, metrics=metrics)
        width = getattr(encoder, "out_features", None)
        if not isinstance(width, int):
            raise ConfigValueError(
                f"model.encoder ({type(encoder).__name__}) has no integer 'out_features': "
                "expected an encoder that says how many features it outputs. Fix: set "
                "self.out_features in its __init__"
            )
        self.encoder = encoder
        self.head = head(in_features=width, out_features=num_classes)
        self.input_key = input_key

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        return {"logits": self.head(self.encoder(batch[self.input_key]))}
