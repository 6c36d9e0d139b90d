"""``hydra/sweeper=lightning_args_pbt``: the Hydra face of population-based training; the work
is in _impl.

Hydra imports this module at every start-up, so it imports neither torch nor the logic: both
load in :meth:`LightningArgsPBTSweeper.setup`, which only runs for ``-m``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

from hydra_plugins.lightning_args_optuna.config import typed_settings
from hydra_plugins.lightning_args_pbt.config import SWEEPER, PBTSweeperConfig

if TYPE_CHECKING:
    from hydra_plugins.lightning_args_pbt._impl import PBTSweep


class LightningArgsPBTSweeper(Sweeper):
    """Population-based training: members that copy better members' checkpoints and perturb
    their hyperparameters every ``perturbation_interval`` epochs, asynchronously, through any
    Hydra launcher; configured by
    :class:`~hydra_plugins.lightning_args_pbt.config.PBTSweeperConfig`."""

    def __init__(self, **settings: Any) -> None:
        self.settings: PBTSweeperConfig = typed_settings(PBTSweeperConfig, settings, SWEEPER)
        self._sweep: PBTSweep | None = None

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        from hydra_plugins.lightning_args_pbt._impl import PBTSweep

        self._sweep = PBTSweep(self.settings, hydra_context, task_function, config)

    def sweep(self, arguments: list[str]) -> Sequence[Sequence[Any]]:
        if self._sweep is None:
            raise RuntimeError("LightningArgsPBTSweeper.sweep() called before setup()")
        return self._sweep.run(arguments)


__all__ = ["LightningArgsPBTSweeper", "PBTSweeperConfig"]
