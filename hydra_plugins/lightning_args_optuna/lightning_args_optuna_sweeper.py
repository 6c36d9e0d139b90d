"""``hydra/sweeper=lightning_args_optuna``: the Hydra face of the sweeper; the work is in _impl.

Hydra imports this module at every start-up, so it imports neither optuna nor the logic: both
load in :meth:`LightningArgsOptunaSweeper.setup`, which only runs for ``-m``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

from hydra_plugins.lightning_args_optuna.config import SWEEPER, SweeperConfig, typed_settings

if TYPE_CHECKING:
    from hydra_plugins.lightning_args_optuna._impl import OptunaSweep


class LightningArgsOptunaSweeper(Sweeper):
    """Optuna search with pruning, asynchronous trials and resumable studies.

    Configured by :class:`~hydra_plugins.lightning_args_optuna.config.SweeperConfig`: Hydra
    passes ``config.hydra.sweeper``'s values, typed by that schema, which become one
    ``SweeperConfig`` handed to the sweep. The sampler and pruner stay config (the schema has
    ``_recursive_: false``): jobs need the pruner's config, not an object.
    """

    def __init__(self, **settings: Any) -> None:
        self.settings: SweeperConfig = typed_settings(SweeperConfig, settings, SWEEPER)
        self._sweep: OptunaSweep | None = None

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        from hydra_plugins.lightning_args_optuna._impl import OptunaSweep

        self._sweep = OptunaSweep(
            settings=self.settings,
            hydra_context=hydra_context,
            task_function=task_function,
            config=config,
        )

    def sweep(self, arguments: list[str]) -> Sequence[Sequence[Any]]:
        if self._sweep is None:
            raise RuntimeError("LightningArgsOptunaSweeper.sweep() called before setup()")
        return self._sweep.run(arguments)


__all__ = ["LightningArgsOptunaSweeper", "SweeperConfig"]
