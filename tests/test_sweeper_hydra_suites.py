"""Hydra's own launcher test suites, run through this sweeper.

``LauncherTestSuite`` and ``IntegrationTestSuite`` drive a sweeper that has nothing to tune, or
Hydra's grid syntax (``a=1,2``): this sweeper treats a grid as a categorical search space, so the
cases that expect every grid point exactly once, in order, are the basic sweeper's contract and
are left out (each with its reason below).
"""

from __future__ import annotations

import pytest
from hydra.test_utils.launcher_common_tests import IntegrationTestSuite, LauncherTestSuite

# The suites expect jobs to run in their own directory, which depends on the version_base that
# the first Hydra app of the test session chose: say it.
SWEEPER = [
    "hydra/sweeper=lightning_args_optuna",
    "hydra.sweeper.plots=false",
    "hydra.job.chdir=true",
]


@pytest.mark.parametrize(("launcher_name", "overrides"), [("basic", SWEEPER), ("joblib", SWEEPER)])
class TestLauncherSuite(LauncherTestSuite):
    # Each of these sweeps a grid (a=1,2 / group=file1,file2) and expects the grid's points,
    # in order: a search samples them instead.
    test_sweep_2_jobs = None  # type: ignore[assignment]
    test_sweep_2_optimizers = None  # type: ignore[assignment]
    test_sweep_over_unspecified_mandatory_default = None  # type: ignore[assignment]
    test_sweep_and_override = None  # type: ignore[assignment]
    test_not_sweeping_hydra_overrides = None  # type: ignore[assignment]
    # Its task returns the string "foo": a search needs a number to optimise.
    test_sweep_with_custom_resolver = None  # type: ignore[assignment]


@pytest.mark.slow  # the suite runs its apps as Python processes
@pytest.mark.parametrize(
    ("task_launcher_cfg", "extra_flags"),
    [
        (
            {
                "defaults": [
                    {"override hydra/sweeper": "lightning_args_optuna"},
                    {"override hydra/launcher": "basic"},
                ],
                # The suite's tasks return None, which a search records as a failed trial; the
                # suite checks job directories and names, so failures may not stop the sweep.
                "hydra": {"sweeper": {"plots": False, "max_failure_rate": 1.0}},
            },
            ["-m"],
        ),
    ],
)
class TestIntegrationSuite(IntegrationTestSuite):
    # It runs one command twice in one directory and expects the job to run twice; this sweeper
    # resumes the study instead: the same command continues, finished trials do not rerun.
    test_to_absolute_path_multirun = None  # type: ignore[assignment]
