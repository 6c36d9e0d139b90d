"""Every use of joblib's private or version-dependent internals, in one module.

Checked on joblib 1.6.0 (:data:`CHECKED_ON`), by reading its source:

- ``joblib/externals/loky/reusable_executor.py``: the loky backend (the one Hydra's joblib
  launcher hard-codes) runs every ``Parallel`` call of a process in one module-level executor,
  ``_executor`` (``None`` until the first call), and keeps its workers for later calls: they
  live until ``idle_worker_timeout`` (300 s) or the interpreter's exit. ``joblib/executor.py``:
  a call keeps that executor when its settings (its backend's keywords, the workers'
  environment, the timeout) equal the previous call's, so our joblib launcher's workers, started
  at setup through the launches' own settings, are the ones that run its jobs (tested in
  ``tests/test_joblib_compat.py`` and ``tests/test_joblib_launcher.py``).
- ``joblib/externals/loky/process_executor.py``: at exit, loky joins its manager thread, which
  sends each worker a sentinel and then joins the worker processes, so the sweeper's exit waits
  while every worker finalizes an interpreter that holds torch and Lightning (seconds).
  ``shutdown(wait=False)`` starts the same and returns at once; a later ``Parallel`` call
  makes a new executor. ``kill_workers=True`` terminates the workers instead of letting each
  finalize its interpreter.

``tests/test_joblib_compat.py`` fails when any of these stops holding (on a joblib upgrade: run
it first, then update :data:`CHECKED_ON`).
"""

from __future__ import annotations

import sys

CHECKED_ON = "1.6.0"
_EXECUTOR_MODULE = "joblib.externals.loky.reusable_executor"


def release_workers(*, idle: bool = False) -> bool:
    """Let the workers of joblib's reusable executor go, without waiting for them: whether
    there was an executor to release. A later ``Parallel`` call makes a new executor.

    They finish what they run, then exit while this process goes on. ``idle=True`` says that
    every call has returned (the sweepers, once no trial is left to launch): nothing runs in
    them, so they are terminated rather than left to finalize torch and Lightning, which took
    0.5 s of a sweep's exit here (median of 3 sweeps of 24 1-epoch trials: 0.95 s from the
    summary to the exit, against 0.45 s).
    """
    module = sys.modules.get(_EXECUTOR_MODULE)  # joblib never used here: nothing to release
    executor = getattr(module, "_executor", None)
    if executor is None:
        return False
    executor.shutdown(wait=False, kill_workers=idle)
    return True
