"""``hydra/launcher=lightning_args_joblib``: the Hydra face of the joblib launcher; the work is
in _shipping and _preload.

Hydra imports this module at every start-up, so it imports neither joblib nor the logic: they
load when a sweep sets the launcher up.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from hydra.core.utils import JobReturn
from hydra.types import HydraContext, TaskFunction
from hydra_plugins.hydra_joblib_launcher.joblib_launcher import JoblibLauncher
from omegaconf import DictConfig

if TYPE_CHECKING:
    from hydra_plugins.lightning_args_joblib._preload import Preloading
    from hydra_plugins.lightning_args_joblib._shipping import Shipments


class LightningArgsJoblibLauncher(JoblibLauncher):  # type: ignore[misc]  # untyped upstream
    """Hydra's joblib launcher, its shared job arguments sent once per worker and its workers
    started (importing ``preload``) at :meth:`setup`; configured by
    :class:`~hydra_plugins.lightning_args_joblib.config.JoblibLauncherConfig`."""

    def __init__(self, *, preload: Sequence[str] = (), **settings: Any) -> None:
        super().__init__(**settings)  # what is left is joblib.Parallel's
        self.preload = list(preload)
        #: The thread that starts the workers with their imports, once :meth:`setup` has run.
        self.preloading: Preloading | None = None
        self._shipments: Shipments | None = None

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        super().setup(hydra_context=hydra_context, task_function=task_function, config=config)
        if self.preload:  # only a sweep sets a launcher up: its workers start now
            from hydra_plugins.lightning_args_joblib._preload import start

            self.preloading = start(self, self.joblib.get("n_jobs", -1), self.preload)

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        n_jobs = self.joblib.get("n_jobs", -1)
        return self.launch_with(job_overrides, initial_job_idx, self.task_function, n_jobs)

    def launch_with(
        self,
        job_overrides: Sequence[Sequence[str]],
        initial_job_idx: int,
        task_function: Callable[[Any], Any] | None,
        n_jobs: int,
    ) -> Sequence[JobReturn]:
        """:meth:`launch` with this task function and this many workers (the GPU launcher's)."""
        from hydra_plugins.lightning_args_joblib._shipping import Shipments, launch

        if task_function is None:
            raise RuntimeError(f"{type(self).__name__}.launch() called before setup()")
        if self._shipments is None:
            self._shipments = Shipments()
        return launch(self, self._shipments, job_overrides, initial_job_idx, task_function, n_jobs)


__all__ = ["LightningArgsJoblibLauncher"]
