"""The instantiate layer: a composed config to a module, a DataModule and a Trainer, every
``_target_`` checked before anything is built, named optimizers and schedulers from partials."""
