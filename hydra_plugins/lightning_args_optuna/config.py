"""The sweeper's config: documented dataclasses, stored in Hydra's ConfigStore at import.

The keys are those of ``hydra-optuna-sweeper`` (``sampler``, ``direction``, ``storage``,
``study_name``, ``n_trials``, ``n_jobs``, ``max_failure_rate``, ``params``), so an app switches by
changing the sweeper's name::

    defaults:
      - override /hydra/sweeper: lightning_args_optuna
      - override /hydra/sweeper/sampler: tpe
      - override /hydra/sweeper/pruner: median

Importing this module is cheap (dataclasses only): Hydra imports it at every start-up.
"""

# No `from __future__ import annotations`: Hydra execs plugin modules before registering them
# in sys.modules, and dataclasses then cannot resolve string annotations.

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from lightning_args._compat.hydra import store_lazily

PROVIDER = "lightning_args_optuna"
SWEEPER = "lightning_args_optuna"


class Direction(str, Enum):
    """Whether the objective returned by each job is minimised or maximised.

    The one definition of the sweeper's directions: ``Direction("max")`` and
    ``Direction("Minimize")`` are accepted too (``min``/``max``, in any case).
    """

    minimize = "minimize"
    maximize = "maximize"

    @classmethod
    def _missing_(cls, value: object) -> "Direction | None":
        name = str(value).lower()
        return next((d for d in cls if name in (d.value, d.value[:3])), None)


# --- samplers (hydra/sweeper/sampler=<name>) -----------------------------------------------


@dataclass
class SamplerConfig:
    """Base of the sampler options; ``seed`` makes the sequence of suggestions repeatable.

    The sweeper gives every trial a random stream of its own, derived from ``seed`` and the
    trial's place in the study (``lightning_args.sweep.sampling``): a resumed sweep continues the
    sequence instead of starting it over, and sweepers sharing a study with one seed still draw
    distinct values.
    """

    _target_: str = "???"
    seed: int | None = None


@dataclass
class TPESamplerConfig(SamplerConfig):
    """Tree-structured Parzen estimator (Optuna's default sampler).

    Unlike Optuna's own defaults, ``multivariate`` and ``group`` are on (parameters are modelled
    jointly, which suits conditional, define-by-run spaces such as architecture search) and so
    is ``constant_liar`` (parallel workers do not suggest the same point).
    """

    _target_: str = "optuna.samplers.TPESampler"
    n_startup_trials: int = 10
    multivariate: bool = True
    group: bool = True
    constant_liar: bool = True


@dataclass
class RandomSamplerConfig(SamplerConfig):
    """Independent uniform sampling: the baseline."""

    _target_: str = "optuna.samplers.RandomSampler"


@dataclass
class CmaEsSamplerConfig(SamplerConfig):
    """CMA-ES for continuous spaces (needs the ``cmaes`` package)."""

    _target_: str = "optuna.samplers.CmaEsSampler"
    n_startup_trials: int = 1


@dataclass
class NSGAIISamplerConfig(SamplerConfig):
    """NSGA-II, for multi-objective studies (``direction: [minimize, minimize]``)."""

    _target_: str = "optuna.samplers.NSGAIISampler"
    population_size: int = 50


@dataclass
class QMCSamplerConfig(SamplerConfig):
    """Quasi-Monte Carlo (Sobol or Halton): evenly spread points."""

    _target_: str = "optuna.samplers.QMCSampler"
    qmc_type: str = "sobol"
    scramble: bool = True


@dataclass
class GPSamplerConfig(SamplerConfig):
    """Bayesian optimisation with a Gaussian process (Optuna's ``GPSampler``): the most out of
    small budgets (tens of trials) over numeric spaces; each suggestion costs a model fit, so
    it is slower per trial than TPE. Needs torch and scipy (lightning_args has both).

    Its first ``n_startup_trials`` are random. Parameters that not every trial has (an option's
    own space, ``search_space_group``) are outside its model: Optuna samples them independently
    (at random) and warns once per parameter (``warn_independent_sampling``).
    """

    _target_: str = "optuna.samplers.GPSampler"
    n_startup_trials: int = 10
    deterministic_objective: bool = False
    warn_independent_sampling: bool = True


@dataclass
class BoTorchSamplerConfig(SamplerConfig):
    """Bayesian optimisation with BoTorch (optuna-integration's ``BoTorchSampler``, what Ax runs
    on): Gaussian processes and acquisition functions from BoTorch, for small budgets over
    numeric spaces. Needs the ``botorch`` extra (``pip install lightning-args[botorch]``),
    imported only when this option is chosen.

    Its first ``n_startup_trials`` are random (they get the sweeper's per-trial streams); the
    model-based suggestions are seeded by BoTorch's own counter from ``seed``, which starts
    again when a sweep is resumed. ``consider_running_trials`` is on (unlike Optuna's default),
    so that parallel trials do not all suggest the same point.
    """

    _target_: str = "optuna_integration.BoTorchSampler"
    n_startup_trials: int = 10
    consider_running_trials: bool = True


@dataclass
class NSGAIIISamplerConfig(SamplerConfig):
    """NSGA-III: NSGA-II with reference points, for three objectives or more."""

    _target_: str = "optuna.samplers.NSGAIIISampler"
    population_size: int = 50
    dividing_parameter: int = 3


@dataclass
class GridSamplerConfig(SamplerConfig):
    """Every point of a grid, each once, in an order shuffled by ``seed``: for final ablations.

    ``search_space`` null (the default) builds the grid from the sweep's space, which must be
    finite (``choice`` and ``range`` only) and the same for every trial (no option's own
    space adds parameters to some trials only: use ``bruteforce`` there). The sweep runs at
    most ``n_trials`` of its points, and ends once every point ran.
    """

    _target_: str = "optuna.samplers.GridSampler"
    #: ``{name: [values]}`` (Optuna's form), or null: the sweep's own ``choice``/``range``.
    search_space: Any = None


@dataclass
class BruteForceSamplerConfig(SamplerConfig):
    """Every configuration of a finite space, each once, conditional spaces included (an
    option's own parameters are enumerated only where it is chosen). The space must be finite:
    ``choice`` and ``range`` only."""

    _target_: str = "optuna.samplers.BruteForceSampler"
    avoid_premature_stop: bool = False


# --- pruners (hydra/sweeper/pruner=<name>) -------------------------------------------------
# A job rebuilds its study's pruner from this config (Optuna does not store pruners), so every
# option must be plain data that ``hydra.utils.instantiate`` turns into the pruner.


@dataclass
class PrunerConfig:
    """Base of the pruner options. Steps are epochs: each validation reports one value."""

    _target_: str = "???"


@dataclass
class NopPrunerConfig(PrunerConfig):
    """Never prune."""

    _target_: str = "optuna.pruners.NopPruner"


@dataclass
class MedianPrunerConfig(PrunerConfig):
    """Stop a trial whose value is worse than the median of earlier trials at the same step.

    Steps are epochs. The first ``n_startup_trials`` trials always finish, and no trial is
    judged before ``n_warmup_steps`` epochs (Optuna's defaults are 5 and 0; a few epochs of
    warm-up keep a slow starter from being cut at its first validation).
    """

    _target_: str = "optuna.pruners.MedianPruner"
    n_startup_trials: int = 3
    n_warmup_steps: int = 3
    interval_steps: int = 1
    n_min_trials: int = 1


@dataclass
class PercentilePrunerConfig(PrunerConfig):
    """Like median, at another percentile (``25.0`` keeps only the best quarter)."""

    _target_: str = "optuna.pruners.PercentilePruner"
    percentile: float = 25.0
    n_startup_trials: int = 3
    n_warmup_steps: int = 3
    interval_steps: int = 1
    n_min_trials: int = 1


@dataclass
class SuccessiveHalvingPrunerConfig(PrunerConfig):
    """Asynchronous successive halving (ASHA): promote the best ``1/reduction_factor``."""

    _target_: str = "optuna.pruners.SuccessiveHalvingPruner"
    min_resource: Any = "auto"
    reduction_factor: int = 4
    min_early_stopping_rate: int = 0


@dataclass
class HyperbandPrunerConfig(PrunerConfig):
    """Hyperband: several successive-halving brackets; ``max_resource`` is the epoch budget."""

    _target_: str = "optuna.pruners.HyperbandPruner"
    min_resource: int = 1
    max_resource: Any = "auto"
    reduction_factor: int = 3


@dataclass
class WilcoxonPrunerConfig(PrunerConfig):
    """The Wilcoxon signed-rank test against the best trial, step by step: made for scores
    per instance, such as the folds of a k-fold trial (``+cv=kfold``, one step per fold).

    All ``n`` folds worse than the best trial's gives ``p = 2**-n``: with ``p_threshold=0.1`` a
    trial is pruned after 4 folds at the earliest, with ``0.3`` after 2 (needs scipy).
    """

    _target_: str = "optuna.pruners.WilcoxonPruner"
    p_threshold: float = 0.1
    n_startup_steps: int = 2


# --- the sweeper ---------------------------------------------------------------------------


@dataclass
class SweeperConfig:
    """``hydra/sweeper=lightning_args_optuna``.

    Attributes:
        sampler: ``hydra/sweeper/sampler=tpe|random|cmaes|nsgaii|qmc|gp|botorch|nsgaiii|
            grid|bruteforce`` (see :data:`SAMPLERS`).
        pruner: ``hydra/sweeper/pruner=none|median|percentile|successive_halving|hyperband``;
            each job reports ``objective.metric`` after every validation and stops when pruned.
        direction: ``minimize``/``maximize``, or a list of them for a multi-objective study
            (the task then returns one value per direction).
        storage: an Optuna storage URL (``sqlite:///x.db``, ``postgresql+psycopg2://...``,
            needs the ``postgres`` extra) or a journal file path (``*.journal``, or
            ``journal:<path>``). ``null``: a journal file inside the sweep directory, so that
            re-running the same command resumes the study. Sweepers on several machines share
            a study through a journal file on a shared file system or through PostgreSQL (same
            ``storage``, ``study_name`` and ``hydra.sweep.dir``).
        study_name: ``null``: derived from the command's overrides (the same command, the same
            study).
        n_trials: the study's total, shared by every sweeper of the study: trials finished or
            running in the storage count toward it, whichever sweeper runs them. With sqlite or
            MySQL (no cross-process lock) sweepers running at once may exceed it by up to
            (sweepers - 1).
        n_jobs: trials running at once. Each trial starts as soon as a slot frees (no batches);
            needs an out-of-process launcher (``hydra/launcher=joblib`` or submitit). ``null``
            (the default): as many as the launcher runs at once, joblib's ``n_jobs`` (-1: every
            core) or submitit's ``array_parallelism``; 1 with Hydra's basic launcher.
        max_failure_rate: the sweep stops once more than this fraction of ``n_trials`` failed
            (raised, or returned NaN/inf). Pruned trials are not failures.
        params: the search space, ``key: expression`` in Hydra's sweep syntax
            (``choice(a,b)``, ``range(1,5)``, ``interval(0,1)``, ``int(interval(8,64))``,
            ``tag(log, interval(1e-4,1e-1))``) or a plain value. Command-line sweeps join it.
        search_space_group: where config-group options declare what they make tunable:
            ``<search_space_group>/<group>/<option>.yaml`` is sampled only in trials that use
            that option (define-by-run). ``null`` turns the lookup off.
        heartbeat_interval: seconds between the marks a sweeper leaves on its running trials
            (``null``: none). A sweeper on *another* machine takes a running trial whose mark
            is older than ``grace_period`` for one whose sweeper died: it marks it failed
            (interrupted) and queues its values again. On the same machine a dead sweeper is
            recognised at once by its process id. Machines' clocks must agree (NTP) to well
            within ``grace_period``.
        grace_period: seconds without a heartbeat after which another machine's running trial
            is taken over. A trial's job may run longer: the mark is the sweeper's, not the
            job's.
        plots: write PNG plots of the study into the sweep directory at the end.
        max_redraws: how many times in a row a new trial may repeat the values of one that ran
            (COMPLETE or PRUNED) or runs before the sweeper gives up drawing. Each repeat is
            closed without running, marked ``duplicate_of`` (not counted toward ``n_trials``,
            counted in ``summary.yaml``), and another trial is drawn. When the repeats run out,
            a finite space (all ``choice``/``range``) gets a configuration no trial has; any
            other space stops this sweeper. A finite space whose every configuration ran ends
            the sweep there, whatever ``n_trials`` says. Queued trials (an interrupted trial's
            values, or values queued with ``study.enqueue_trial``) always run as given.
        enqueue: configurations to run first, in order, each exactly as given: a list of
            mappings (``[{optimizer.lr: 0.003, model/encoder: cnn}, ...]``, also on the command
            line) or of override lists (``[[optimizer.lr=0.003, model/encoder=cnn]]`` in YAML;
            quoted on the command line, ``[["optimizer.lr=0.003"]]``), for example the best
            configuration so far or a paper's defaults. Every key must be a parameter of the
            search space and every value one it can take; parameters an entry leaves out are
            sampled. They count toward ``n_trials``, are exempt from the duplicate guard, and
            are queued once: re-running the command does not queue them again.
        constraints: bounds on metrics the runs log, ``{metric: "<= 100000"}`` (or ``">= x"``),
            e.g. ``{size/generator: "<= 100000"}`` for the GAN. A completed trial outside one
            is infeasible: it stays COMPLETE, its constraint values (Optuna's
            ``Trial.set_constraint``) steer TPE, GP and NSGA-II/III away from it, and the
            summary's best is the best feasible trial. A metric the run did not log fails the
            trial, saying which it logged.
        warm_start: folders of earlier runs (``[outputs/runs, outputs/sweeps/<study>]``, any
            depth) to add to the study as completed trials, so that the sampler starts from
            what they measured instead of random start-up trials. A run is used when it
            completed, measured this study's ``objective.metric``, holds a value of every
            searched parameter inside the space, and its config is what this sweep composes
            for those values on every other key (paths, seed, loggers, callbacks and the
            progress bar aside); the others are skipped, and the summary counts them by
            reason. Used runs count toward ``n_trials`` and are added once.
        batched: run trials in synchronous batches of ``n_jobs`` (one ``launch`` per batch,
            each waiting for its slowest trial), as ``hydra-optuna-sweeper`` does. Only for
            comparison (``benchmarks/sweep_efficiency.py``); the default starts trials as slots
            free.
        verbose: show every trial's own output on the sweep's console, as Hydra's sweepers
            do. ``false`` (the default): a trial's output (Lightning's banners and tables,
            warnings, anything it prints) goes to its run directory's ``<job name>.log``
            (``train.log``) beside its log records; the console shows one line per trial as it
            starts and ends and, on a terminal, a table of the study updated in place.
        refresh: seconds between two readings of the study for that table (a terminal only).
    """

    _target_: str = (
        "hydra_plugins.lightning_args_optuna.lightning_args_optuna_sweeper."
        "LightningArgsOptunaSweeper"
    )
    # Hydra 1.3 would otherwise instantiate the sampler and pruner before the sweeper sees them;
    # the sweeper builds both itself (jobs need the pruner's config, not an object).
    _recursive_: bool = False
    defaults: list[Any] = field(default_factory=lambda: [{"sampler": "tpe"}, {"pruner": "none"}])
    sampler: Any = "???"
    pruner: Any = "???"
    direction: Any = Direction.minimize
    storage: str | None = None
    study_name: str | None = None
    n_trials: int = 20
    n_jobs: int | None = None
    max_failure_rate: float = 0.0
    params: dict[str, Any] | None = None
    search_space_group: str | None = "search_space"
    heartbeat_interval: float | None = 30.0
    grace_period: float = 300.0
    plots: bool = True
    max_redraws: int = 10
    enqueue: list[Any] | None = None
    warm_start: list[str] | None = None
    constraints: Any = None  # {metric: bound}; Any: a dict node would refuse new keys (struct)
    batched: bool = False
    verbose: bool = False
    refresh: float = 1.0


SAMPLERS: dict[str, type[SamplerConfig]] = {
    "tpe": TPESamplerConfig,
    "random": RandomSamplerConfig,
    "cmaes": CmaEsSamplerConfig,
    "nsgaii": NSGAIISamplerConfig,
    "qmc": QMCSamplerConfig,
    "gp": GPSamplerConfig,
    "botorch": BoTorchSamplerConfig,
    "nsgaiii": NSGAIIISamplerConfig,
    "grid": GridSamplerConfig,
    "bruteforce": BruteForceSamplerConfig,
}
PRUNERS: dict[str, type[PrunerConfig]] = {
    "none": NopPrunerConfig,
    "median": MedianPrunerConfig,
    "percentile": PercentilePrunerConfig,
    "successive_halving": SuccessiveHalvingPrunerConfig,
    "hyperband": HyperbandPrunerConfig,
    "wilcoxon": WilcoxonPrunerConfig,
}


def typed_settings(schema: Any, settings: dict[str, Any], option: str) -> Any:
    """``schema(**settings)``, a sweeper plugin's settings; a key the schema lacks (where
    ``hydra.sweeper`` is an untyped node naming the plugin's class) is one message."""
    from dataclasses import fields

    known = {f.name for f in fields(schema)}
    unknown = sorted(set(settings) - known)
    if unknown:
        from lightning_args.errors import ConfigValueError

        raise ConfigValueError(
            f"hydra.sweeper.{unknown[0]} is not a setting of {schema.__name__}: "
            f"expected one of {', '.join(sorted(k for k in known if not k.startswith('_')))}"
            f". Fix: remove it, or choose the sweeper with hydra/sweeper={option}"
        )
    return schema(**settings)


def register() -> None:
    """Store the sweeper and its sampler and pruner options."""
    store_lazily(SWEEPER, SweeperConfig, group="hydra/sweeper", provider=PROVIDER)
    for name, sampler in SAMPLERS.items():
        store_lazily(name, sampler, group="hydra/sweeper/sampler", provider=PROVIDER)
    for name, pruner in PRUNERS.items():
        store_lazily(name, pruner, group="hydra/sweeper/pruner", provider=PROVIDER)


register()
