"""A run, start to end: the lifecycle (:mod:`~lightning_args.run.app`), its record
(``run.json``), its one writer, continuing it (resume, reproduce), reading it back (load,
checkpoints) and what a file read back may build (trust, confine)."""
