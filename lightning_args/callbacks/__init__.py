"""The Lightning callbacks a run installs (Lightning's convention: one module per concern):
checkpoints, random states, logged metrics, interrupts, requeue on preemption, one device per
job, pruning."""
