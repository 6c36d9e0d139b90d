"""Schemas of the demo model and data options (light: no torch import)."""

from __future__ import annotations

from dataclasses import dataclass, field

from lightning_args.config.root import DataConfig, ModelConfig


@dataclass
class DigitsDataConfig(DataConfig):
    """scikit-learn's 8x8 handwritten digits (1797 images, shipped inside the wheel).

    The train/val/test split is fixed by ``split_seed`` alone, so runs with different ``seed``s
    are evaluated on the same images.
    """

    _target_: str = "lightning_args.demos.DigitsDataModule"
    batch_size: int = 64
    val_fraction: float = 0.15
    test_fraction: float = 0.2
    split_seed: int = 0


@dataclass
class MLPClassifierConfig(ModelConfig):
    """A multi-layer perceptron over flattened images."""

    _target_: str = "lightning_args.demos.MLPClassifier"
    input_shape: list[int] = field(default_factory=lambda: [1, 8, 8])
    num_classes: int = 10
    hidden: list[int] = field(default_factory=lambda: [128])
    dropout: float = 0.0


@dataclass
class CNNClassifierConfig(ModelConfig):
    """A small convolutional network: conv blocks, global average pooling, a linear head."""

    _target_: str = "lightning_args.demos.CNNClassifier"
    input_shape: list[int] = field(default_factory=lambda: [1, 8, 8])
    num_classes: int = 10
    channels: list[int] = field(default_factory=lambda: [32, 64])
    kernel_size: int = 3
    dropout: float = 0.0
