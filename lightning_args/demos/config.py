"""Schemas of the demo model and data options (light: no torch import)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from omegaconf import MISSING

from lightning_args._compat.hydra import store_lazily
from lightning_args.config.root import DataConfig, ModelConfig
from lightning_args.config.terms import TBPTTConfig, TermConfig


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
    scale: str = "standard"
    #: Prepared splits are cached there, keyed by the fields above (not batch_size); null: off.
    cache_dir: str | None = "${paths.cache_dir}"


@dataclass
class MLPEncoderConfig:
    """``model/encoder=mlp``: a multi-layer perceptron over flattened images."""

    _target_: str = "lightning_args.demos.MLPEncoder"
    input_shape: list[int] = field(default_factory=lambda: [1, 8, 8])
    hidden: list[int] = field(default_factory=lambda: [128])
    dropout: float = 0.0


@dataclass
class CNNEncoderConfig:
    """``model/encoder=cnn``: conv blocks, each halving the image."""

    _target_: str = "lightning_args.demos.CNNEncoder"
    input_shape: list[int] = field(default_factory=lambda: [1, 8, 8])
    channels: list[int] = field(default_factory=lambda: [32, 64])
    kernel_size: int = 3
    dropout: float = 0.0


@dataclass
class LinearHeadConfig:
    """``model/head=linear``: one linear layer (its sizes come from the encoder and classes)."""

    _target_: str = "torch.nn.Linear"
    _partial_: bool = True


@dataclass
class MLPHeadConfig:
    """``model/head=mlp``: a hidden layer, then the classes."""

    _target_: str = "lightning_args.demos.MLPHead"
    _partial_: bool = True
    hidden: int = 64


def _term(fn: str, **extra: object) -> TermConfig:
    return TermConfig(
        fn={"_target_": fn, "_partial_": True, **extra}, input="logits", target="label"
    )


@dataclass
class ClassifierConfig(ModelConfig):
    """``lightning_args.demos.Classifier``: ``model/encoder`` + ``model/head``, losses and
    metrics declared by key (``logits`` from the model, ``label`` from the batch)."""

    _target_: str = "lightning_args.demos.Classifier"
    encoder: Any = MISSING
    head: Any = MISSING
    num_classes: int = 10
    input_key: str = "image"
    losses: dict[str, TermConfig] = field(
        default_factory=lambda: {"ce": _term("torch.nn.functional.cross_entropy")}
    )
    metrics: dict[str, TermConfig] = field(
        default_factory=lambda: {"acc": _term("lightning_args.modules.metrics.accuracy")}
    )


class GANLoss(str, Enum):
    """``non_saturating``: the original GAN loss, -log D(G(z)) for the generator.
    ``wgan_gp``: the Wasserstein loss with a gradient penalty on the critic."""

    non_saturating = "non_saturating"
    wgan_gp = "wgan_gp"


@dataclass
class GANConfig(ModelConfig):
    """``lightning_args.demos.GAN``: MLP generator and discriminator over 8x8 images."""

    _target_: str = "lightning_args.demos.GAN"
    z_dim: int = 32
    hidden: list[int] = field(default_factory=lambda: [256, 256])
    loss: GANLoss = GANLoss.non_saturating
    gp_weight: float = 10.0
    image_shape: list[int] = field(default_factory=lambda: [1, 8, 8])
    eval_samples: int = 512
    input_key: str = "image"


class MetaAlgorithm(str, Enum):
    """The outer update of meta-learning.

    ``maml``: second-order MAML, the query loss differentiated through the inner loop.
    ``fomaml``: first-order MAML, the query loss's gradient at the adapted weights.
    ``reptile``: the adapted weights minus the initial ones.
    """

    maml = "maml"
    fomaml = "fomaml"
    reptile = "reptile"


@dataclass
class SinusoidMetaLearnerConfig(ModelConfig):
    """``lightning_args.demos.SinusoidMetaLearner``: a regressor's meta-learned initialisation."""

    _target_: str = "lightning_args.demos.SinusoidMetaLearner"
    hidden: list[int] = field(default_factory=lambda: [40, 40])
    inner_steps: int = 5
    algorithm: MetaAlgorithm = MetaAlgorithm.fomaml
    eval_lr: float = 0.01
    #: Meta-SGD: learn a step size per weight (``maml`` only). An optimizer other than ``inner``
    #: must claim them, ``params: [log_inner_lr]`` (see experiment=metasgd_sinusoid).
    learn_inner_lr: bool = False


@dataclass
class SinusoidTasksConfig(DataConfig):
    """``lightning_args.demos.SinusoidTasks``: generated sinusoid regression tasks."""

    _target_: str = "lightning_args.demos.SinusoidTasks"
    train_tasks: int = 2000
    eval_tasks: int = 100
    shots: int = 10
    seed: int = 0


def _recall_term(fn: str) -> TermConfig:
    return TermConfig(fn={"_target_": fn, "_partial_": True}, input="logits", target="y")


@dataclass
class RecurrentTaggerConfig(ModelConfig):
    """``lightning_args.demos.RecurrentTagger``: a GRU with a logit per step, optionally trained
    with truncated BPTT (``tbptt``, null: back-propagation through whole sequences)."""

    _target_: str = "lightning_args.demos.RecurrentTagger"
    input_size: int = 1
    hidden_size: int = 32
    input_key: str = "x"
    tbptt: TBPTTConfig | None = None
    losses: dict[str, TermConfig] = field(
        default_factory=lambda: {"bce": _recall_term("lightning_args.demos.sequences.recall_bce")}
    )
    metrics: dict[str, TermConfig] = field(
        default_factory=lambda: {
            "acc": _recall_term("lightning_args.demos.sequences.recall_accuracy")
        }
    )


@dataclass
class DelayedRecallConfig(DataConfig):
    """``lightning_args.demos.DelayedRecall``: random bits to recall ``delay`` steps later."""

    _target_: str = "lightning_args.demos.DelayedRecall"
    train_size: int = 2048
    eval_size: int = 256
    length: int = 64
    delay: int = 6
    batch_size: int = 64
    seed: int = 0


#: The schemas the demo app's YAML options extend (``defaults: [/schema/model/classifier@_here_]``).
SCHEMAS: dict[str, dict[str, type[Any]]] = {
    "schema/model": {
        "classifier": ClassifierConfig,
        "gan": GANConfig,
        "sinusoid_meta": SinusoidMetaLearnerConfig,
        "gru_tagger": RecurrentTaggerConfig,
    },
    "schema/model/encoder": {"mlp": MLPEncoderConfig, "cnn": CNNEncoderConfig},
    "schema/model/head": {"linear": LinearHeadConfig, "mlp": MLPHeadConfig},
    "schema/data": {
        "digits": DigitsDataConfig,
        "sinusoids": SinusoidTasksConfig,
        "delayed_recall": DelayedRecallConfig,
    },
}


def register() -> None:
    """Store the demos' schemas in Hydra's ConfigStore (idempotent; no torch import).

    The library does not know the demos: their own Hydra plugin
    (``hydra_plugins/lightning_args_demos``) calls this when an app builds its search path.

    >>> register()
    >>> from hydra.core.config_store import ConfigStore
    >>> "classifier.yaml" in ConfigStore.instance().repo["schema"]["model"]
    True
    """
    for group, options in SCHEMAS.items():
        for name, node in options.items():
            store_lazily(name, node, group=group, provider="lightning_args.demos")
