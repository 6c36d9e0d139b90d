"""A job's link to its Optuna trial, across processes.

The sweeper asks Optuna for a trial, then launches the job with ``LIGHTNING_ARGS_TRIAL`` in its
environment (through ``hydra.job.env_set``, so it also reaches jobs on other machines). The job
opens the same storage, rebuilds the study's pruner from its config (Optuna does not store
pruners) and reports to ``optuna.trial.Trial(study, trial_id)``; the sweeper records the final
state when the job returns.

This module stays light: optuna is imported by :meth:`TrialLink.open` only.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import optuna

ENV = "LIGHTNING_ARGS_TRIAL"


@dataclass(frozen=True)
class TrialLink:
    """Where a job's trial lives: enough to report to it from any process."""

    storage: str
    study_name: str
    trial_id: int
    number: int
    n_objectives: int = 1
    pruner: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_env(cls) -> TrialLink | None:
        """The link of the job running in this process, or ``None`` outside an Optuna sweep."""
        text = os.environ.get(ENV)
        if not text:
            return None
        return cls(**json.loads(text))

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"), sort_keys=True)

    def to_override(self) -> str:
        """The Hydra override that puts this link into the job's environment.

        The JSON is single-quoted for Hydra's parser; quotes and ``$`` become JSON escapes, so
        neither the parser nor OmegaConf's interpolation ever sees one.

        >>> link = TrialLink("/tmp/it's.journal", "s", trial_id=3, number=3)
        >>> from hydra.core.override_parser.overrides_parser import OverridesParser
        >>> (o,) = OverridesParser.create().parse_overrides([link.to_override()])
        >>> TrialLink(**json.loads(o.value())) == link
        True
        """
        text = self.to_json().replace("'", "\\u0027").replace("$", "\\u0024")
        return f"++hydra.job.env_set.{ENV}='{text}'"

    def open(self) -> optuna.trial.Trial:
        """The live trial, ready for ``report`` and ``should_prune``."""
        import optuna
        from hydra.utils import instantiate

        from lightning_args.sweep.storage import is_journal, load_study

        pruner = instantiate(self.pruner) if self.pruner else optuna.pruners.NopPruner()
        study = load_study(self.storage, self.study_name, pruner)
        if not is_journal(self.storage):
            # An RDB storage's cache must know the study's trials before Trial() reads one.
            study.get_trials(deepcopy=False)
        return optuna.trial.Trial(study, self.trial_id)
