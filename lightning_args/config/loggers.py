"""The ``logger`` group. Several may be chosen at once: ``logger=[csv,tensorboard]``.

Each option lives under its own key of ``logger`` (``logger.csv``, ``logger.tensorboard``) and
writes inside the run directory.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class CSVLoggerConfig:
    """Metrics as ``<run_dir>/metrics.csv`` (and hyper-parameters as ``hparams.yaml``).

    Lightning's CSVLogger, except that a resumed run appends to the file instead of replacing it.
    """

    _target_: str = "lightning_args.loggers.CSVLogger"
    save_dir: str = "${paths.run_dir}"
    # Empty name and version put metrics.csv directly in the run directory.
    name: str = ""
    version: str = ""
    flush_logs_every_n_steps: int = 100


@dataclass
class TensorBoardLoggerConfig:
    """TensorBoard event files in ``<run_dir>/tensorboard/``."""

    _target_: str = "lightning.pytorch.loggers.TensorBoardLogger"
    save_dir: str = "${paths.run_dir}"
    name: str = "tensorboard"
    version: str = ""
    default_hp_metric: bool = False


@dataclass
class MLflowLoggerConfig:
    """An MLflow run per lightning_args run, in a local store shared by all runs.

    The MLflow run is named after the run directory (and tagged with its path); the resolved
    config is logged as parameters (``model.encoder.hidden``...). The store is an SQLite file
    (MLflow 3 refuses new ``./mlruns`` file stores): ``mlflow ui --backend-store-uri
    sqlite:///outputs/mlflow.db`` shows it. Needs ``pip install lightning-args[mlflow]``.
    """

    _target_: str = "lightning_args.loggers.MLflowLogger"
    run_dir: str = "${paths.run_dir}"
    experiment_name: str = "lightning_args"
    tracking_uri: str = "sqlite:///${paths.output_root}/mlflow.db"
