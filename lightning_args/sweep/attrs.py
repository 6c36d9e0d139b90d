"""The user attributes the sweeper leaves on each trial in the study's storage: one definition.

The sweeper writes them, the summary (:mod:`lightning_args.sweep.report`) reads them, and a user
sees them in ``optuna-dashboard``. This module imports nothing heavy.
"""

from __future__ import annotations

OVERRIDES = "overrides"  # the job's task overrides: ready to paste
ERROR = "error"  # why a FAIL failed
HOST, PID = "sweeper_host", "sweeper_pid"  # who runs it: a dead sweeper's RUNNING trials go back
HEARTBEAT = "sweeper_heartbeat"  # when its sweeper last said it lives (unix time)
INTERRUPTED = "interrupted"  # a trial whose sweeper died: re-queued, not counted
# The sampler suggested values that a COMPLETE, PRUNED or RUNNING trial already has: closed (FAIL)
# without running, not counted toward n_trials. The value is the number of the earlier trial.
DUPLICATE = "duplicate_of"
# A COMPLETE trial added from an earlier run (hydra.sweeper.warm_start): that run's directory.
WARM_START = "warm_start_from"
# The study's own attribute: what the last sweeper's warm start used and skipped, and why.
WARM_START_REPORT = "warm_start"
# The study's own attribute: its n_trials as the last sweeper to start set it (the budget all its
# sweepers share), read by ``lightning-args watch``.
N_TRIALS = "n_trials"
# What a trial's steps count: "epoch" (the default, absent) or "fold" (a k-fold trial).
STEP_UNIT = "step_unit"
