"""The joblib launcher's config (``hydra/launcher=lightning_args_joblib``, or ``launcher=joblib``
in the example app): Hydra's joblib launcher's dataclass under our plugin's target, stored in
Hydra's ConfigStore at import.

Importing this module is cheap (a dataclass): Hydra imports it at every start-up.
"""

# No `from __future__ import annotations`: Hydra execs plugin modules before registering them
# in sys.modules, and dataclasses then cannot resolve string annotations.

from dataclasses import dataclass, field

from hydra.core.config_store import ConfigStore
from hydra_plugins.hydra_joblib_launcher.config import JobLibLauncherConf

PROVIDER = "lightning_args_joblib"
LAUNCHER = "lightning_args_joblib"


@dataclass
class JoblibLauncherConfig(JobLibLauncherConf):  # type: ignore[misc]  # untyped upstream
    """Jobs in joblib's worker processes, as Hydra's joblib launcher runs them (every key of
    its config keeps its meaning: ``n_jobs``, ``backend``, ``timeout``, ...).

    What all jobs of a sweep share (the sweep's config, Hydra's context and singletons, the task
    function: about 150 KB pickled) reaches each worker once, through a file only this process
    and its workers read, checked by its SHA-256 digest before it is unpickled; a job carries
    its own overrides and that digest. Hydra's launcher pickles it all again for every job.

    The workers start as soon as the launcher is set up, each importing ``preload``, so that
    the imports overlap the sweeper's own preparation instead of delaying the first trials.
    """

    #: Modules each worker imports as it starts, while the sweeper prepares the sweep; ``[]``
    #: starts the workers at the first launch instead, as Hydra's joblib launcher does.
    preload: list[str] = field(default_factory=lambda: ["lightning.pytorch"])

    _target_: str = (
        "hydra_plugins.lightning_args_joblib.lightning_args_joblib_launcher."
        "LightningArgsJoblibLauncher"
    )


ConfigStore.instance().store(
    group="hydra/launcher", name=LAUNCHER, node=JoblibLauncherConfig, provider=PROVIDER
)
