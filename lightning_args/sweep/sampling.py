"""A sampler whose random sequence continues across restarts and sweepers: one stream per trial.

An Optuna sampler draws from one random generator, seeded when the sampler is built. The sweeper
builds its sampler again on every start, so a seeded sampler on a study that already has trials
would start its sequence over and, in its random start-up phase, suggest the values of the first
trials again; sweepers sharing a study with the same seed would suggest the same values as each
other.

:class:`ContinuingSampler` wraps the configured sampler and gives each trial a random stream of
its own, derived from the seed and the trial's place in the study, and installs it in the
sampler's generators whenever the sampler works on that trial:

- a trial the sampler draws is the study's ``k``-th drawn trial, ``k`` counting the trials with
  smaller numbers that were drawn too (not queued): its stream is ``SeedSequence([seed, 0, k,
  i])`` for the sampler's ``i``-th generator;
- a queued trial (``Study.enqueue_trial``: an interrupted trial's values queued again, or values
  a user queued) is given its values; the few a queue may lack (a define-by-run parameter) come
  from ``SeedSequence([seed, 1, number, i])``, and it uses up no ``k``.

So the ``k``-th draw of a resumed sweep is the ``k``-th draw of an uninterrupted one: an
interrupted trial keeps its values when it runs again and the next new trial draws what the
uninterrupted sweep drew next. Sweepers that share a study never get the same ``k`` (a trial is
asked and counted under the study's budget lock), so they draw distinct values even with one seed.

What a sampler then suggests is a function of the seed, ``k`` and the study's history:

- RandomSampler, and the random start-up phase of TPE, NSGA-II, CMA-ES and GP (their inner
  random sampler): a function of the seed and ``k`` alone, exactly what an uninterrupted sweep
  suggests;
- the model-based phase of TPE, GP, CMA-ES and NSGA-II's later generations: also a function of
  the trials so far, so the same as an uninterrupted sweep when the history is (one sweeper,
  ``n_jobs=1``, trials whose results repeat); with parallel trials the history depends on timing;
- QMCSampler: its points come from its own counter in the study (Optuna's), which continues
  across restarts already; only its fallback random sampler gets these streams;
- a sampler keeping no generator Optuna's way (:func:`~lightning_args._compat.optuna.
  random_states` finds none) is passed through unchanged.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler
from optuna.trial import FrozenTrial, TrialState

from lightning_args._compat import optuna as compat

_log = logging.getLogger(__name__)

_DRAWN, _QUEUED = 0, 1  # the two kinds of stream, kept apart in the SeedSequence
_SEED_SPACE = 2**64  # SeedSequence takes non-negative integers


class ContinuingSampler(BaseSampler):
    """``sampler``, drawing each trial's values from that trial's own stream (module docstring).

    ``seed``: the sampler's seed (``hydra.sweeper.sampler.seed``); ``None`` draws one for this
    process, so that suggestions stay distinct but are not reproducible.
    """

    def __init__(self, sampler: BaseSampler, seed: int | None) -> None:
        self.sampler = sampler
        self._entropy = (
            int(np.random.SeedSequence().entropy) if seed is None else int(seed) % _SEED_SPACE  # type: ignore[arg-type]
        )
        self._states = compat.random_states(sampler)
        self._streams: dict[int, list[np.random.RandomState]] = {}
        self._lock = threading.Lock()
        if not self._states:
            _log.info(
                "%s keeps no random generator the sweeper can give per-trial streams to: its "
                "suggestions follow its own sequence (a resumed sweep may repeat some; the "
                "duplicate guard skips exact repeats)",
                type(sampler).__name__,
            )

    # --- streams ---------------------------------------------------------------------------

    def stream_key(self, study: optuna.Study, trial: FrozenTrial) -> tuple[int, int]:
        """``(kind, index)`` of the trial's stream: ``(0, k)`` for the ``k``-th drawn trial,
        ``(1, number)`` for a queued one."""
        if compat.from_queue(trial):
            return _QUEUED, trial.number
        drawn = sum(
            1
            for t in compat.all_trials(study)
            if t.number < trial.number and not compat.from_queue(t)
        )
        return _DRAWN, drawn

    def _install(self, study: optuna.Study, trial: FrozenTrial) -> None:
        """Point the sampler's generators at ``trial``'s streams (made on first use)."""
        if not self._states:
            return
        streams = self._streams.get(trial.number)
        if streams is None:
            kind, index = self.stream_key(study, trial)
            streams = [
                np.random.RandomState(
                    np.random.MT19937(np.random.SeedSequence([self._entropy, kind, index, i]))
                )
                for i in range(len(self._states))
            ]
            self._streams[trial.number] = streams
        for state, stream in zip(self._states, streams, strict=True):
            compat.install(state, stream)

    # --- BaseSampler, delegated ------------------------------------------------------------

    def infer_relative_search_space(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        with self._lock:
            self._install(study, trial)
            return self.sampler.infer_relative_search_space(study, trial)

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        with self._lock:
            self._install(study, trial)
            return self.sampler.sample_relative(study, trial, search_space)

    def sample_independent(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        with self._lock:
            self._install(study, trial)
            return self.sampler.sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        # Called while the trial is asked, under the sweeper's budget lock: the trial's place
        # among the study's trials (its stream) is fixed here, before another sweeper asks.
        with self._lock:
            self._install(study, trial)
            self.sampler.before_trial(study, trial)

    def after_trial(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        with self._lock:
            self._install(study, trial)
            try:
                self.sampler.after_trial(study, trial, state, values)
            except RuntimeError as error:
                # Grid and brute force ask the study to stop once every configuration ran; the
                # sweeper's budget ends a finite space already (it ran each once).
                if not compat.is_stop_request(error):
                    raise
            finally:
                self._streams.pop(trial.number, None)  # the trial is done: so is its stream

    def reseed_rng(self) -> None:
        """Forget the seed: later trials draw from fresh, unrepeatable streams."""
        with self._lock:
            self._entropy = int(np.random.SeedSequence().entropy) % _SEED_SPACE  # type: ignore[arg-type]
            self._streams.clear()
            self.sampler.reseed_rng()

    def __repr__(self) -> str:
        return f"ContinuingSampler({self.sampler!r})"
