"""The root schema every lightning_args app composes into, and its small parts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING

from lightning_args.config.compile import CompileConfig
from lightning_args.config.cv import CVConfig
from lightning_args.config.objective import ObjectiveConfig
from lightning_args.config.optim import NamedOptimizerConfig, OptimizerConfig, SchedulerConfig
from lightning_args.config.trainer import TrainerConfig

#: Where runs, sweeps and the shared stores go, relative to the working directory.
OUTPUT_ROOT = "outputs"
#: Environment variable naming the data-set cache shared by runs (default: ``outputs/cache``).
CACHE_ENV = "LIGHTNING_ARGS_CACHE"
#: The MLflow store runs share (``logger=mlflow``), under the default output root.
MLFLOW_STORE = f"sqlite:///{OUTPUT_ROOT}/mlflow.db"


@dataclass
class ForkConfig:
    """Where a forked run goes on from (:func:`lightning_args.fork`, population-based training).

    Attributes:
        parent: a run directory; this run starts from its checkpoint, with the keys whose
            value differs from the parent's written into the restored states (only those that
            can change mid-training: :data:`lightning_args.run.fork.FORKABLE`).
        checkpoint: the parent's checkpoint: ``last``, ``best`` or a file of its
            ``checkpoints/``.

    Example:
        >>> ForkConfig(parent="outputs/runs/2026-12-03_10-00-00").checkpoint
        'last'
    """

    parent: str | None = None
    checkpoint: str = "last"


@dataclass
class PathsConfig:
    """Where things go. ``run_dir`` is the run's own directory, made by Hydra."""

    output_root: str = OUTPUT_ROOT
    run_dir: str = "${hydra:runtime.output_dir}"
    #: Prepared data sets, shared by runs and sweep jobs (``lightning_args.run.cache``).
    cache_dir: str = f"${{oc.env:{CACHE_ENV},${{paths.output_root}}/cache}}"


@dataclass
class ModelConfig:
    """Base schema of a ``model`` option: a LightningModule class and its arguments.

    Subclass it with the module's arguments as typed fields, so that a typo or a wrong type in
    ``model.*`` fails when the command line is parsed.
    """

    _target_: str = MISSING


@dataclass
class DataConfig:
    """Base schema of a ``data`` option: a LightningDataModule class and its arguments."""

    _target_: str = MISSING


@dataclass
class Config:
    """The root of a lightning_args app's config.

    ``model`` and ``data`` are typed ``Any`` so that plain YAML options work too; options backed
    by a :class:`ModelConfig` / :class:`DataConfig` subclass are still validated field by field.
    ``logger`` and ``callbacks`` map a name to one config each, so several can be chosen at once.
    """

    model: Any = MISSING
    data: Any = MISSING
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    optimizer: OptimizerConfig | None = None
    scheduler: SchedulerConfig | None = None
    #: Several optimizers by name (GANs, meta-learning); used instead of ``optimizer``.
    optimizers: dict[str, NamedOptimizerConfig] = field(default_factory=dict)
    logger: dict[str, Any] = field(default_factory=dict)
    callbacks: dict[str, Any] = field(default_factory=dict)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)
    #: Seed of every random generator; ``null`` draws one (and records it in ``run.json``).
    seed: int | None = 42
    #: Evaluate the best checkpoint on the test set after fitting.
    test: bool = True
    #: A checkpoint to resume training from.
    ckpt_path: str | None = None
    #: A run directory that already holds a run is refused; ``true`` moves that run aside to
    #: ``<dir>.replaced-<time>`` first (it is never deleted).
    overwrite: bool = False
    #: k-fold cross-validation (``+cv=kfold``): one run per fold under ``folds/``, aggregated.
    cv: CVConfig | None = None
    #: Go on from another run's checkpoint with some hyperparameters changed (``fork.parent``).
    fork: ForkConfig = field(default_factory=ForkConfig)
    #: ``torch.compile`` for training (``compile.enabled=true``).
    compile: CompileConfig = field(default_factory=CompileConfig)
