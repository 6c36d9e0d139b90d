"""The joblib internals of ``lightning_args/_compat/joblib.py`` still hold (checked on 1.6.0)."""

from __future__ import annotations

import os
import time

import joblib
import pytest
from joblib.externals.loky import reusable_executor

from lightning_args._compat import joblib as joblib_compat


def _pid() -> int:
    time.sleep(0.2)  # both workers get one call
    return os.getpid()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.slow
def test_released_workers_exit_without_being_waited_for() -> None:
    pids = set(joblib.Parallel(n_jobs=2, backend="loky")(joblib.delayed(_pid)() for _ in range(2)))
    assert len(pids) == 2
    assert os.getpid() not in pids
    executor = reusable_executor._executor  # where the compat module looks
    assert executor is not None
    started = time.monotonic()
    assert joblib_compat.release_workers()
    assert time.monotonic() - started < 0.5  # returned at once
    deadline = time.monotonic() + 60
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(pid) for pid in pids)  # they exited on their own, unjoined
    # A later call gets a new pool.
    again = set(joblib.Parallel(n_jobs=2, backend="loky")(joblib.delayed(_pid)() for _ in range(2)))
    assert again.isdisjoint(pids)
    assert joblib_compat.release_workers()


def test_nothing_to_release_where_joblib_never_ran(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reusable_executor, "_executor", None)
    assert not joblib_compat.release_workers()


@pytest.mark.slow
def test_idle_workers_are_ended_at_once() -> None:
    pids = set(joblib.Parallel(n_jobs=2, backend="loky")(joblib.delayed(_pid)() for _ in range(2)))
    assert joblib_compat.release_workers(idle=True)
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(pid) for pid in pids)


def _pids(**settings: int) -> set[int]:
    calls = (joblib.delayed(_pid)() for _ in range(2))
    return set(joblib.Parallel(n_jobs=2, backend="loky", **settings)(calls))


@pytest.mark.slow
@pytest.mark.parametrize(("timeout", "kept"), [(300, True), (301, False)], ids=["same", "control"])
def test_a_call_with_the_same_settings_keeps_the_workers(timeout: int, kept: bool) -> None:
    """What the joblib launcher's preloading relies on (300 s is loky's default idle timeout);
    the control changes that one setting, and gets new workers."""
    joblib_compat.release_workers(idle=True)
    try:
        first, later = _pids(), _pids(idle_worker_timeout=timeout)
    finally:
        joblib_compat.release_workers(idle=True)
    assert (later == first) is kept
