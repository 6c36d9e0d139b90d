"""What the sweeper relies on inside Optuna (``lightning_args/_compat/optuna.py``), and the
per-trial random streams built on it (``lightning_args/sweep/sampling.py``).

In process and fast: every test builds in-memory studies (or a journal of one trial). When an
Optuna upgrade moves one of the internals, a test here fails and names it.
"""

from __future__ import annotations

import json
import threading
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import optuna
import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf
from optuna.storages.journal import JournalFileOpenLock, JournalFileSymlinkLock

from hydra_plugins.lightning_args_optuna.config import SAMPLERS
from lightning_args._compat import optuna as compat
from lightning_args.sweep.sampling import ContinuingSampler

optuna.logging.set_verbosity(optuna.logging.WARNING)
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)

Params = tuple[tuple[str, object], ...]


def shipped(name: str, seed: int = 0) -> optuna.samplers.BaseSampler:
    """The sampler that ``hydra/sweeper/sampler=<name>`` builds."""
    node = OmegaConf.structured(SAMPLERS[name])
    node.seed = seed
    if name == "grid":  # the sweep fills a grid from its space (_finite.py)
        node.search_space = {"x": [0, 1, 2]}
    sampler: optuna.samplers.BaseSampler = instantiate(node)
    return sampler


def objective(trial: optuna.trial.Trial) -> float:
    x = trial.suggest_float("x", 0.0, 1.0)
    size = trial.suggest_categorical("size", [1, 2, 3])
    return (x - 0.3) ** 2 + 0.01 * size


def run(study: optuna.Study, n: int) -> None:
    for _ in range(n):
        trial = study.ask()
        study.tell(trial, objective(trial))


def drawn(study: optuna.Study) -> list[Params]:
    return [tuple(sorted(t.params.items())) for t in study.get_trials()]


# --- the internals ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_every_shipped_sampler_keeps_its_generators_where_the_compat_module_looks(
    name: str,
) -> None:
    sampler = shipped(name)
    states = compat.random_states(sampler)
    assert states, f"{type(sampler).__name__}: no LazyRandomState found"
    for state in states:
        stream = np.random.RandomState(7)
        compat.install(state, stream)
        assert state.rng is stream


@pytest.mark.parametrize("name", ["grid", "bruteforce"])
def test_a_finite_sampler_asks_the_study_to_stop_once_its_space_ran(name: str) -> None:
    choices = [0, 1, 2] if name == "grid" else [0]  # the grid of shipped() has 3 points

    def run_all(study: optuna.Study) -> None:
        for _ in choices:
            trial = study.ask()
            trial.suggest_categorical("x", choices)
            study.tell(trial, 0.0)  # the last one: the sampler calls Study.stop

    with pytest.raises(RuntimeError) as raised:
        run_all(optuna.create_study(sampler=shipped(name)))
    assert compat.is_stop_request(raised.value)
    assert not compat.is_stop_request(RuntimeError("another error"))
    # The sweeper's sampler lets the request go: every trial is told, nothing is raised.
    wrapped = optuna.create_study(sampler=ContinuingSampler(shipped(name), seed=0))
    run_all(wrapped)
    assert [t.state.name for t in wrapped.trials] == ["COMPLETE"] * len(choices)


def test_an_installed_stream_is_what_the_sampler_draws_from() -> None:
    sampler = optuna.samplers.RandomSampler(seed=0)
    (state,) = compat.random_states(sampler)
    compat.install(state, np.random.RandomState(123))
    study = optuna.create_study(sampler=sampler)
    value = study.ask().suggest_float("x", 0.0, 1.0)
    assert value == np.random.RandomState(123).uniform(0.0, 1.0)


def test_tpe_draws_its_start_up_trials_from_its_inner_random_sampler() -> None:
    sampler = optuna.samplers.TPESampler(seed=0, n_startup_trials=5)
    own, inner = compat.random_states(sampler)
    assert own is sampler._rng
    compat.install(inner, np.random.RandomState(5))
    value = optuna.create_study(sampler=sampler).ask().suggest_float("x", 0.0, 1.0)
    assert value == np.random.RandomState(5).uniform(0.0, 1.0)


def test_nsga2_strategies_share_the_samplers_generator() -> None:
    sampler = optuna.samplers.NSGAIISampler(seed=0)
    states = compat.random_states(sampler)
    assert sampler._child_generation_strategy._rng in states  # found once, through the sampler
    assert len({id(s) for s in states}) == len(states)


def test_queued_trials_are_told_apart_from_drawn_ones() -> None:
    study = optuna.create_study()
    study.enqueue_trial({"x": 0.5})
    queued, fresh = study.ask(), study.ask()
    assert compat.from_queue(compat.frozen(queued))
    assert not compat.from_queue(compat.frozen(fresh))
    assert compat.fixed_params(compat.frozen(queued)) == {"x": 0.5}
    assert compat.fixed_params(compat.frozen(fresh)) is None
    assert [t.number for t in compat.all_trials(study)] == [0, 1]
    assert compat.trial_id(queued) == study.get_trials()[0]._trial_id
    assert compat.storage(study) is study._storage


def test_all_trials_sees_past_a_hyperband_bracket() -> None:
    # A sampler may be handed a bracket's view of the study; counting must see every trial.
    pruner = optuna.pruners.HyperbandPruner(min_resource=1, max_resource=9)
    study = optuna.create_study(pruner=pruner)
    for _ in range(12):
        trial = study.ask()
        trial.report(objective(trial), step=1)
        trial.should_prune()  # builds the pruner's brackets
        study.tell(trial, objective(trial))
    bracket = optuna.pruners._filter_study(study, study.get_trials()[-1])
    assert len(bracket.get_trials()) < 12
    assert len(compat.all_trials(bracket)) == 12


def journal_of_one_trial(path: Path) -> bytes:
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))
    study = optuna.create_study(study_name="s", storage=storage)
    study.tell(study.ask(), 1.0)
    return path.read_bytes()


def load(path: Path) -> optuna.Study:
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))
    return optuna.load_study(study_name="s", storage=storage)


def test_a_torn_last_journal_line_is_skipped_until_records_follow_it(tmp_path: Path) -> None:
    path = tmp_path / "study.journal"
    whole = journal_of_one_trial(path)
    path.write_bytes(whole[:-37])  # the trial's result, torn
    study = load(path)  # read without complaint: the torn record is skipped
    assert [t.state.name for t in study.get_trials()] == ["RUNNING"]
    study.set_user_attr("a", 1)  # lands after the torn bytes: one line that does not parse,
    assert load(path).user_attrs == {}  # skipped (lost) while it is the last one
    with pytest.raises(json.JSONDecodeError):  # and fatal once another record follows it,
        study.set_user_attr("b", 2)  # for its writer
    with pytest.raises(json.JSONDecodeError):  # and for every reader
        load(path)


def test_journal_writers_hold_the_lock_file_beside_the_journal(tmp_path: Path) -> None:
    path = tmp_path / "study.journal"
    journal_of_one_trial(path)
    for lock_class in (JournalFileOpenLock, JournalFileSymlinkLock):
        backend = optuna.storages.journal.JournalFileBackend(
            str(path), lock_obj=lock_class(str(path))
        )
        held = JournalFileOpenLock(str(path))  # what the repair takes
        held.acquire()
        size = path.stat().st_size
        writer = threading.Thread(target=backend.append_logs, args=([{"op_code": 0}],))
        writer.start()
        writer.join(timeout=0.3)
        assert writer.is_alive(), lock_class.__name__  # waits for the lock
        assert path.stat().st_size == size
        held.release()
        writer.join(timeout=10)
        assert path.stat().st_size > size


# --- per-trial streams ------------------------------------------------------------------------

SAMPLER_KINDS: dict[str, Callable[[], optuna.samplers.BaseSampler]] = {
    "random": lambda: optuna.samplers.RandomSampler(seed=0),
    "tpe": lambda: shipped("tpe"),  # start-up phase (10 trials) and 4 trials past it
}


def resumed(
    make: Callable[[], optuna.samplers.BaseSampler], before: int, after: int
) -> list[Params]:
    """A study of ``before`` trials, then a new sampler (a new start) asks ``after`` more."""
    storage = optuna.storages.InMemoryStorage()
    run(optuna.create_study(study_name="s", storage=storage, sampler=make()), before)
    study = optuna.load_study(study_name="s", storage=storage, sampler=make())
    run(study, after)
    return drawn(study)


@pytest.mark.parametrize("kind", sorted(SAMPLER_KINDS))
def test_a_restarted_sampler_continues_the_sequence_of_an_uninterrupted_one(kind: str) -> None:
    def make() -> optuna.samplers.BaseSampler:
        return ContinuingSampler(SAMPLER_KINDS[kind](), seed=0)

    uninterrupted = optuna.create_study(sampler=make())
    run(uninterrupted, 14)
    assert resumed(make, 5, 9) == drawn(uninterrupted)


@pytest.mark.parametrize("kind", sorted(SAMPLER_KINDS))
def test_control_a_plain_seeded_sampler_restarts_its_sequence(kind: str) -> None:
    # Without the per-trial streams (Optuna as it is), the restarted sampler asks the first
    # trials' values again: the repeats the streams remove.
    params = resumed(SAMPLER_KINDS[kind], 5, 5)
    assert params[5:] == params[:5]


def test_a_queued_trial_uses_up_no_draw() -> None:
    # An interrupted trial's values are queued again: the trials after it draw what an
    # uninterrupted study drew next.
    def make() -> optuna.samplers.BaseSampler:
        return ContinuingSampler(optuna.samplers.RandomSampler(seed=3), seed=3)

    uninterrupted = optuna.create_study(sampler=make())
    run(uninterrupted, 6)
    study = optuna.create_study(sampler=make())
    run(study, 2)
    lost = study.ask()
    objective(lost)
    study.tell(lost, state=optuna.trial.TrialState.FAIL)
    study.enqueue_trial(lost.params)
    run(study, 4)
    complete = [
        tuple(sorted(t.params.items()))
        for t in study.get_trials()
        if t.state == optuna.trial.TrialState.COMPLETE
    ]
    assert complete == drawn(uninterrupted)


def test_sweepers_sharing_a_study_with_one_seed_draw_distinct_values() -> None:
    storage = optuna.storages.InMemoryStorage()
    optuna.create_study(study_name="s", storage=storage)
    sweepers = [
        optuna.load_study(
            study_name="s",
            storage=storage,
            sampler=ContinuingSampler(optuna.samplers.RandomSampler(seed=0), seed=0),
        )
        for _ in range(3)
    ]
    for _ in range(4):
        for study in sweepers:
            run(study, 1)
    params = drawn(sweepers[0])
    assert len(params) == 12
    assert len({dict(p)["x"] for p in params}) == 12  # no two x alike


def test_an_unseeded_sampler_still_draws_distinct_values() -> None:
    storage = optuna.storages.InMemoryStorage()
    for _ in range(2):
        sampler = ContinuingSampler(optuna.samplers.RandomSampler(), seed=None)
        run(
            optuna.create_study(
                study_name="s", storage=storage, load_if_exists=True, sampler=sampler
            ),
            3,
        )
    params = drawn(optuna.load_study(study_name="s", storage=storage))
    assert len(set(params)) == 6
