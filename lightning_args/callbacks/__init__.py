"""The Lightning callbacks a run installs (Lightning's convention: one module per concern):
checkpoints, random states, interrupts, requeue on preemption, one device per job, pruning."""
