"""Optuna search for lightning_args apps: the search space, the job's link to its trial, reports.

The Hydra plugin (``hydra/sweeper=lightning_args_optuna``) drives a study from the sweeper
process; a training job finds its trial through :func:`trial_link` and reports to it.
"""
