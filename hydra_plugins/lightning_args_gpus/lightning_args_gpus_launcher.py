"""``hydra/launcher=lightning_args_gpus``: the Hydra face of trials packed onto GPUs; the work is
in _impl.

Hydra imports this module at every start-up, so it imports neither torch nor joblib nor the
logic: they load in :meth:`LightningArgsGpusLauncher.setup`, which only runs for ``-m``.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from hydra.core.utils import JobReturn
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

from hydra_plugins.lightning_args_gpus.config import PACKING_KEYS
from hydra_plugins.lightning_args_joblib.lightning_args_joblib_launcher import (
    LightningArgsJoblibLauncher,
)

if TYPE_CHECKING:
    from hydra_plugins.lightning_args_gpus._impl import PackedLaunches


class LightningArgsGpusLauncher(LightningArgsJoblibLauncher):
    """Our joblib launcher with ``trials_per_device`` jobs on each GPU, each seeing only its own;
    configured by :class:`~hydra_plugins.lightning_args_gpus.config.GpusLauncherConfig`.

    A :class:`~lightning_args.sweep.pacing.PacedLauncher`: lightning_args' sweepers start as
    many trial loops as :meth:`jobs_at_once` says, and with ``trials_per_device=auto`` let only
    the first trial run until it has been measured.
    """

    def __init__(self, **settings: Any) -> None:
        self.packing = {key: settings.pop(key, None) for key in PACKING_KEYS}
        super().__init__(**settings)  # what is left is joblib.Parallel's
        self._impl: PackedLaunches | None = None

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        from hydra_plugins.lightning_args_gpus._impl import PackedLaunches

        super().setup(hydra_context=hydra_context, task_function=task_function, config=config)
        self._impl = PackedLaunches(self, self.packing)

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        return self._ready().launch(job_overrides, initial_job_idx)

    def jobs_at_once(self) -> int:
        return self._ready().jobs_at_once()

    def admitted(self) -> AbstractContextManager[None]:
        return self._ready().gate.admitted()

    def _ready(self) -> PackedLaunches:
        if self._impl is None:
            raise RuntimeError("LightningArgsGpusLauncher used before setup()")
        return self._impl


__all__ = ["LightningArgsGpusLauncher"]
