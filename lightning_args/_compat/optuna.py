"""Every use of Optuna's private or version-dependent internals, in one module.

Checked on optuna 5.0.0 (:data:`CHECKED_ON`), by reading its source:

- ``optuna/samplers/_lazy_random_state.py``: a sampler keeps its random generator in a
  ``LazyRandomState``, whose ``_rng`` is a ``numpy.random.RandomState`` (``None`` until first
  use). RandomSampler, TPESampler, NSGAIISampler, NSGAIIISampler, CmaEsSampler (``_cma_rng``),
  GPSampler, GridSampler and BruteForceSampler hold one as an attribute; TPE, NSGA-II, CMA-ES
  and QMC also hold an inner RandomSampler (``_random_sampler`` / ``_independent_sampler``)
  with one of its own. NSGA-II's strategies share the sampler's object. QMCSampler's own
  sequence is not a ``LazyRandomState``: it is a counter in the study's system attributes.
- ``optuna/study/study.py``: ``Study.enqueue_trial`` stores the values of a queued trial in
  the system attribute ``fixed_params``, which stays on the trial once it is asked.
- ``optuna/samplers/_grid.py`` and ``_brute_force.py``: once every configuration ran, their
  ``after_trial`` calls ``Study.stop``, which outside ``Study.optimize`` raises a
  ``RuntimeError`` saying it "is supposed to be invoked inside an objective function or a
  callback" (``optuna/study/study.py``).
- ``Study._storage`` / ``FrozenTrial._trial_id`` / ``Trial._trial_id``: the storage and a
  trial's id in it (the public storage API takes ids).
- ``optuna/storages/journal/_file.py`` (what ``lightning_args/sweep/journal.py`` relies on): a
  journal is one JSON object a line. ``JournalFileBackend.append_logs`` writes while holding its
  lock object; ``JournalFileOpenLock(path)`` and ``JournalFileSymlinkLock(path)`` are both the
  file ``<path>.lock``, so either excludes the other. ``read_logs`` skips a last line that has
  no line end or does not parse, but raises (``JSONDecodeError``) on such a line once another
  follows it: an append after a torn last record makes the journal unreadable.

``tests/test_optuna_compat.py`` fails when any of these stops holding (on an Optuna upgrade:
run it first, then update :data:`CHECKED_ON`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import optuna
    from optuna.samplers._lazy_random_state import LazyRandomState
    from optuna.storages import BaseStorage
    from optuna.trial import FrozenTrial

CHECKED_ON = "5.0.0"
FIXED_PARAMS = "fixed_params"  # Study.enqueue_trial's system attribute


def random_states(sampler: optuna.samplers.BaseSampler) -> list[LazyRandomState]:
    """The random generators ``sampler`` draws from: its own and its inner samplers', each once,
    in a fixed order (attribute order, depth first)."""
    from optuna.samplers import BaseSampler
    from optuna.samplers._lazy_random_state import LazyRandomState

    found: list[LazyRandomState] = []
    seen: set[int] = set()

    def walk(obj: BaseSampler) -> None:
        if id(obj) in seen:
            return
        seen.add(id(obj))
        for value in vars(obj).values():
            if isinstance(value, LazyRandomState) and id(value) not in seen:
                seen.add(id(value))
                found.append(value)
            elif isinstance(value, BaseSampler):
                walk(value)

    walk(sampler)
    return found


def install(state: LazyRandomState, rng: np.random.RandomState) -> None:
    """Make ``state`` (and every sampler part that shares it) draw from ``rng`` from now on."""
    state._rng = rng


def from_queue(trial: FrozenTrial) -> bool:
    """Whether ``trial`` was queued (``Study.enqueue_trial``: by the user, or by the sweeper
    after an interruption) rather than sampled: its values were given, not drawn."""
    return FIXED_PARAMS in trial.system_attrs


def is_stop_request(error: BaseException) -> bool:
    """Whether ``error`` is ``Study.stop`` refusing to run outside ``Study.optimize``: what
    GridSampler and BruteForceSampler raise from ``after_trial`` once their space is covered."""
    return isinstance(error, RuntimeError) and "`Study.stop` is supposed to be invoked" in str(
        error
    )


def fixed_params(trial: FrozenTrial) -> dict[str, Any] | None:
    """The values ``Study.enqueue_trial`` queued for ``trial``, or ``None`` (it was drawn)."""
    fixed = trial.system_attrs.get(FIXED_PARAMS)
    return dict(fixed) if isinstance(fixed, dict) else None


def storage(study: optuna.Study) -> BaseStorage:
    """The study's storage (``Study._storage``)."""
    return study._storage


def trial_id(trial: optuna.trial.Trial | FrozenTrial) -> int:
    """A trial's id in its storage (what the storage API takes)."""
    return trial._trial_id


def all_trials(study: optuna.Study) -> list[FrozenTrial]:
    """Every trial of the study, straight from its storage.

    Not ``study.get_trials()``: a sampler may be handed a view of the study that holds only some
    of its trials (HyperbandPruner's bracket study), and counting must see them all.
    """
    return study._storage.get_all_trials(study._study_id, deepcopy=False)


def frozen(trial: optuna.trial.Trial) -> FrozenTrial:
    """The stored state of a live trial (its system attributes included)."""
    return trial.study._storage.get_trial(trial._trial_id)
