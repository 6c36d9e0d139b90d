"""The study a sweep runs, and the trials a sweeper leaves RUNNING when it goes.

Opening one checks that a resumed study has the sweep's directions. A sweeper that dies cannot
close its trials: the others re-queue them (its process is gone, or its heartbeats stopped),
while one that is interrupted releases its own on the way down.
"""

from __future__ import annotations

import importlib.util
import logging
import socket
import sys
import threading
import time
import warnings
from typing import Any

import optuna
from hydra.utils import instantiate
from omegaconf import DictConfig
from optuna.trial import TrialState

from hydra_plugins.lightning_args_optuna._progress import Progress
from hydra_plugins.lightning_args_optuna.config import SAMPLERS
from lightning_args._compat import optuna as compat
from lightning_args.errors import SearchSpaceError, StorageError
from lightning_args.run.record import process_alive
from lightning_args.sweep.attrs import DUPLICATE, HEARTBEAT, HOST, INTERRUPTED, PID
from lightning_args.sweep.sampling import ContinuingSampler

_log = logging.getLogger(__name__)


def open_study(
    backend: optuna.storages.BaseStorage,
    *,
    url: str,
    study_name: str,
    directions: list[str],
    sampler: Any,
    pruner: dict[str, Any],
) -> optuna.Study:
    """Create the study in ``backend`` (what ``open_storage(url)`` returned), or resume it.

    ``sampler`` is ``hydra.sweeper.sampler`` (config, or a sampler object), ``pruner`` the
    pruner's config.
    """
    # Per-trial random streams: a resumed sweep continues the sampler's sequence instead of
    # starting it over, and sweepers sharing the study draw distinct values (sampling.py).
    continuing = ContinuingSampler(_sampler(sampler), seed=_seed(sampler))
    try:
        existing = optuna.load_study(study_name=study_name, storage=backend)
    except KeyError:
        existing = None
    if existing is not None:
        stored = [d.name.lower() for d in existing.directions]
        if stored != directions:
            raise StorageError(
                f"study {study_name!r} in {url} was created with direction "
                f"{stored}, not {directions}. Fix: hydra.sweeper.direction={stored} "
                "to continue it, or hydra.sweeper.study_name=<new name> for a new study"
            )
    return optuna.create_study(
        study_name=study_name,
        storage=backend,
        sampler=continuing,
        pruner=instantiate(pruner),
        directions=[optuna.study.StudyDirection[d.upper()] for d in directions],
        load_if_exists=True,
    )


#: Samplers outside Optuna: the module they need, and the extra that installs it.
_EXTRAS = {"optuna_integration.BoTorchSampler": (("optuna_integration", "botorch"), "botorch")}


def missing_extra(node: Any) -> str | None:
    """Why ``hydra.sweeper.sampler`` cannot be built here (a package of an extra is not
    installed), or ``None``."""
    target = node.get("_target_") if isinstance(node, DictConfig) else None
    if target not in _EXTRAS:
        return None
    modules, extra = _EXTRAS[target]
    absent = [m for m in modules if not _installed(m)]
    if not absent:
        return None
    return (
        f"hydra.sweeper.sampler {target} needs {', '.join(absent)}, which is not installed. "
        f"Fix: pip install 'lightning-args[{extra}]'"
    )


def _installed(module: str) -> bool:
    if module in sys.modules:  # optuna_integration replaces itself there, without a __spec__
        return True
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _sampler(node: Any) -> optuna.samplers.BaseSampler:
    missing = missing_extra(node)
    if missing is not None:
        raise SearchSpaceError(missing)
    with warnings.catch_warnings():
        # TPE's multivariate/group options are "experimental" in Optuna since 2.2: still useful.
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler = instantiate(node) if isinstance(node, DictConfig) else node
    if not isinstance(sampler, optuna.samplers.BaseSampler):
        raise SearchSpaceError(
            f"hydra.sweeper.sampler made a {type(sampler).__name__}, not an Optuna sampler. "
            f"Fix: hydra/sweeper/sampler=tpe (or {', '.join(n for n in SAMPLERS if n != 'tpe')})"
        )
    return sampler


def _seed(node: Any) -> int | None:
    """The sampler config's ``seed`` (``None``: unseeded, or a sampler object)."""
    seed = node.get("seed") if isinstance(node, DictConfig) else None
    return None if seed is None else int(seed)


def requeue_interrupted(study: optuna.Study, grace_period: float) -> list[optuna.trial.FrozenTrial]:
    """Trials left RUNNING by a sweeper that died: mark them failed, re-queue their values.

    A sweeper on this host is dead when its process is; one on another machine (a
    distributed sweep) when its heartbeat is older than ``grace_period``. Checked before
    every new trial (under the budget lock), so a dead sweeper's trials go to those still
    running. Returns the study's trials, those re-queued now marked interrupted.
    """
    host, now = socket.gethostname(), time.time()
    storage = compat.storage(study)
    trials = study.get_trials(deepcopy=False)
    for i, trial in enumerate(trials):
        running = trial.state == TrialState.RUNNING
        if not running or not _dead(trial.user_attrs, host, now, grace_period):
            continue
        if trial.user_attrs.get(DUPLICATE) is not None:
            # Closing a duplicate was under way: it never ran, nothing to queue again.
            storage.set_trial_state_values(compat.trial_id(trial), TrialState.FAIL)
        else:
            storage.set_trial_user_attr(compat.trial_id(trial), INTERRUPTED, True)
            storage.set_trial_state_values(compat.trial_id(trial), TrialState.FAIL)
            study.enqueue_trial(trial.params, skip_if_exists=False)
            _log.info("Trial %d was interrupted: its values are queued again", trial.number)
        trials[i] = storage.get_trial(compat.trial_id(trial))
    return trials


def _dead(attrs: dict[str, Any], host: str, now: float, grace_period: float) -> bool:
    """Whether the sweeper that runs a RUNNING trial with these user attributes is gone."""
    if attrs.get(INTERRUPTED):
        return False
    if attrs.get(HOST) == host:
        return not process_alive(attrs.get(PID))
    heartbeat = attrs.get(HEARTBEAT)
    return heartbeat is not None and now - float(heartbeat) > grace_period


def heartbeats(study: optuna.Study, progress: Progress, interval: float | None) -> threading.Event:
    """Mark this sweeper's running trials as alive every ``interval`` seconds
    (``hydra.sweeper.heartbeat_interval``), until the returned event is set."""
    stop = threading.Event()
    if not interval:
        return stop

    storage = compat.storage(study)

    def beat() -> None:
        while not stop.wait(interval):
            with progress.lock:
                running = list(progress.running.values())
            for trial in running:
                try:
                    storage.set_trial_user_attr(compat.trial_id(trial), HEARTBEAT, time.time())
                except Exception:  # finished meanwhile, or a storage hiccup: next beat
                    _log.debug("no heartbeat for trial %d", trial.number, exc_info=True)

    threading.Thread(target=beat, name="sweeper-heartbeat", daemon=True).start()
    return stop


def interrupt(study: optuna.Study, progress: Progress) -> None:
    """On Ctrl-C or a crash: running trials become interrupted failures, values re-queued."""
    # Trial threads may still be claiming or recording: wait for the lock, though not for
    # long (a thread may be waiting for another sweeper's budget lock while holding it).
    locked = progress.lock.acquire(timeout=5.0)
    try:
        running = list(progress.running.values())
    finally:
        if locked:
            progress.lock.release()
    for trial in running:
        try:
            compat.storage(study).set_trial_user_attr(compat.trial_id(trial), INTERRUPTED, True)
            study.tell(trial, state=TrialState.FAIL)
            study.enqueue_trial(trial.params, skip_if_exists=False)
        except Exception:  # best effort while going down; the next start re-checks
            _log.debug("could not release trial %d", trial.number, exc_info=True)
