"""Registers lightning_args' config groups in Hydra's ConfigStore, and its resolvers.

After :func:`register` has run (importing ``lightning_args`` runs it; so does Hydra's plugin scan,
through ``hydra_plugins/lightning_args_plugin``), any Hydra app can say in its primary config::

    defaults:
      - lightning_args        # the root schema, and run directories that never collide
      - trainer: cpu
      - optimizer: adamw
      - scheduler: cosine
      - logger: [csv, tensorboard]
      - callbacks: [checkpoint, lr_monitor]
      - model: my_model
      - data: my_data
      - _self_
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from omegaconf import OmegaConf

from lightning_args import config as c
from lightning_args._compat.hydra import store_lazily
from lightning_args.config.run_dirs import unique_dir
from lightning_args.sweep.names import study_name_resolver

PROVIDER = "lightning_args"
ROOT = "lightning_args"

# group -> option name -> schema. Group options that may be chosen several at once are stored
# under their own key (``logger.csv``) so that ``logger=[csv,tensorboard]`` keeps both.
GROUPS: dict[str, dict[str, type[Any]]] = {
    "trainer": {
        "default": c.TrainerConfig,
        "cpu": c.CPUTrainerConfig,
        "gpu": c.GPUTrainerConfig,
        "ddp": c.DDPTrainerConfig,
        "debug": c.DebugTrainerConfig,
    },
    "optimizer": {"adam": c.AdamConfig, "adamw": c.AdamWConfig, "sgd": c.SGDConfig},
    "scheduler": {
        "cosine": c.CosineSchedulerConfig,
        "step": c.StepSchedulerConfig,
        "onecycle": c.OneCycleSchedulerConfig,
    },
}
# Groups an app's defaults leave out and a run adds (``+cv=kfold``).
ADDED_GROUPS: dict[str, dict[str, type[Any]]] = {
    "cv": {"kfold": c.CVConfig},
}
MULTI_GROUPS: dict[str, dict[str, type[Any]]] = {
    "logger": {
        "csv": c.CSVLoggerConfig,
        "tensorboard": c.TensorBoardLoggerConfig,
        "mlflow": c.MLflowLoggerConfig,
    },
    "callbacks": {
        "checkpoint": c.CheckpointConfig,
        "early_stopping": c.EarlyStoppingConfig,
        "lr_monitor": c.LearningRateMonitorConfig,
        "rich_progress": c.RichProgressBarConfig,
    },
}


_ROOT_DIR = "${oc.select:paths.output_root,outputs}"
RUN_DIR = "${lightning_args.unique_dir:" + _ROOT_DIR + "/runs/${now:%Y-%m-%d_%H-%M-%S}}"
SWEEP_DIR = _ROOT_DIR + "/sweeps/${now:%Y-%m-%d_%H-%M-%S}"


@dataclass
class _Root(c.Config):
    # Hydra merges this into its own ``hydra`` node; typed Any because Hydra owns the schema.
    hydra: Any = field(
        default_factory=lambda: {
            "run": {"dir": RUN_DIR},
            "sweep": {"dir": SWEEP_DIR, "subdir": "${hydra.job.num}"},
            # In this order: nothing is created for a run that pre-flight refuses.
            "callbacks": {
                "preflight": {"_target_": "lightning_args.run.preflight.PreFlight"},
                "claim_run_directory": {
                    "_target_": "lightning_args.run.ownership.ClaimRunDirectory"
                },
            },
        }
    )


_registered = False
_lock = threading.Lock()


def register() -> None:
    """Store every group and resolver; idempotent and cheap (no torch import)."""
    global _registered
    with _lock:
        if _registered:
            return
        # Each schema becomes a DictConfig when an app first uses it: every Hydra app here
        # registers these, most of them use few or none.
        store_lazily(ROOT, _Root, provider=PROVIDER)
        for group, options in {**GROUPS, **ADDED_GROUPS}.items():
            for name, node in options.items():
                store_lazily(name, node, group=group, provider=PROVIDER)
        # ``scheduler=none`` must set the node to null, which only a global package can do.
        store_lazily(
            "none", {"scheduler": None}, group="scheduler", package="_global_", provider=PROVIDER
        )
        for group, options in MULTI_GROUPS.items():
            for name, node in options.items():
                store_lazily(name, node, group=group, package=f"{group}.{name}", provider=PROVIDER)
        if not OmegaConf.has_resolver("lightning_args.unique_dir"):
            OmegaConf.register_new_resolver("lightning_args.unique_dir", unique_dir)
        if not OmegaConf.has_resolver("lightning_args.study"):
            OmegaConf.register_new_resolver("lightning_args.study", study_name_resolver)
        _registered = True
