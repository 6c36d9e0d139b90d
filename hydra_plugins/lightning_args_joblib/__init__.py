"""``hydra/launcher=lightning_args_joblib`` (``launcher=joblib`` in the example app): Hydra's
joblib launcher, with what every job of a launch shares sent to each worker once."""
