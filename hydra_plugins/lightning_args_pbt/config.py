"""The PBT sweeper's config (``hydra/sweeper=lightning_args_pbt``, or ``+sweep=pbt`` in the
example app): a documented dataclass, stored in Hydra's ConfigStore at import.

Importing this module is cheap (a dataclass): Hydra imports it at every start-up.
"""

# No `from __future__ import annotations`: Hydra execs plugin modules before registering them
# in sys.modules, and dataclasses then cannot resolve string annotations.

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore

PROVIDER = "lightning_args_pbt"
SWEEPER = "lightning_args_pbt"


@dataclass
class PBTSweeperConfig:
    """Population-based training over the hyperparameters ``params`` names.

    Attributes:
        population: members trained side by side.
        perturbation_interval: epochs between two exploit-and-explore steps of a member.
        intervals: intervals each member trains (``population * intervals`` jobs; each member
            trains ``intervals * perturbation_interval`` epochs).
        quantile_fraction: a member in the bottom fraction of the population's latest scores
            goes on from one in the top fraction (0.25: the bottom quarter copies the top one).
        resample_probability: the chance that an explored value is drawn afresh instead of
            perturbed.
        perturbation_factors: what a perturbed numeric value is multiplied by.
        direction: ``minimize`` or ``maximize`` (``min``/``max``) the job's objective.
        seed: the seed of the first values and of every exploit-and-explore decision.
        n_jobs: members training at once; ``null`` follows the launcher (joblib's ``n_jobs``,
            submitit's ``array_parallelism``; 1 with the basic launcher).
        params: the mutable hyperparameters in Hydra's sweep syntax, e.g.
            ``{optimizer.lr: tag(log, interval(1e-4, 1e-1))}``; only keys that can change
            mid-training (``lightning_args.run.fork.FORKABLE``).
        verbose: a member's output on the console instead of only in its run's log.
    """

    _target_: str = (
        "hydra_plugins.lightning_args_pbt.lightning_args_pbt_sweeper.LightningArgsPBTSweeper"
    )
    population: int = 8
    perturbation_interval: int = 2
    intervals: int = 4
    quantile_fraction: float = 0.25
    resample_probability: float = 0.25
    perturbation_factors: list[float] = field(default_factory=lambda: [0.8, 1.2])
    direction: Any = "maximize"
    seed: int = 0
    n_jobs: int | None = None
    params: dict[str, Any] | None = None
    verbose: bool = False


ConfigStore.instance().store(
    group="hydra/sweeper", name=SWEEPER, node=PBTSweeperConfig, provider=PROVIDER
)
