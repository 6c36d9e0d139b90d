"""``hydra/launcher=lightning_args_gpus`` (``launcher=gpus`` in the example app): several trials
per GPU, each job seeing only its own device."""
