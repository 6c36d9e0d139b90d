"""A kill while a checkpoint is being written never leaves a corrupt ``last.ckpt``.

The Trainers that ``lightning_args.build`` makes save through ``AtomicCheckpointIO``. This test
kills a process (SIGKILL) in the middle of rewriting a large checkpoint, and reads the file back
after each kill.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
import torch

import lightning_args
from lightning_args.run.checkpoint import AtomicCheckpointIO
from tests.helpers import start_app

WRITER = """
import sys, tempfile, torch
tempfile.tempdir = None  # a forked process: find the temp dir from this process's TMPDIR
from lightning_args.run.checkpoint import AtomicCheckpointIO
io, path = AtomicCheckpointIO(), sys.argv[1]
payload = torch.randn(12_000_000)  # ~48 MB
for version in range(1, 1000):
    checkpoint = {"version": version, "payload": payload * 0 + version}
    print("saving", version, flush=True)
    io.save_checkpoint(checkpoint, path)
"""


@pytest.mark.slow
def test_sigkill_during_save_leaves_a_loadable_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "checkpoints" / "last.ckpt"
    system_tmp = tmp_path / "system-tmp"
    system_tmp.mkdir()
    writer = tmp_path / "writer.py"
    writer.write_text(WRITER)
    interrupted = 0
    for trial in range(6):
        read_end, write_end = os.pipe()
        with os.fdopen(write_end, "wb") as out:  # the child keeps its own copy
            proc = start_app(
                str(path), script=writer, cwd=tmp_path, env={"TMPDIR": str(system_tmp)}, stdout=out
            )
        with os.fdopen(read_end) as lines:
            while lines.readline().split()[1] != str(2 + trial % 3):  # a few saves in
                pass
            time.sleep(0.01 * trial)  # into the write of that save
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        interrupted += (path.parent / f".last.ckpt.{proc.pid}.tmp").exists()

        checkpoint = torch.load(path, weights_only=True)  # whole, never half written
        assert torch.all(checkpoint["payload"] == checkpoint["version"])
    assert interrupted >= 1, "no kill landed during a write: the test proved nothing"
    # Nothing went through the system's temp dir (mkstemp's "tmp*" files), which may be another
    # file system, where a rename is a copy.
    assert not list(system_tmp.glob("tmp*"))


def test_build_writes_checkpoints_atomically(tmp_path: Path, compose_app) -> None:  # type: ignore[no-untyped-def]
    built = lightning_args.build(compose_app())
    assert isinstance(built.trainer.strategy.checkpoint_io, AtomicCheckpointIO)


def test_last_checkpoint_is_the_last_epoch_after_the_best(tmp_path: Path, compose_app) -> None:  # type: ignore[no-untyped-def]
    # Minimising accuracy: the best is the first epoch; Lightning 2.6 alone would then never
    # write last.ckpt again.
    cfg = compose_app("trainer.max_epochs=3", "objective.mode=min", "test=false")
    lightning_args.train(cfg)
    folder = Path(cfg.paths.run_dir) / "checkpoints"
    best = torch.load(folder / "best.ckpt", weights_only=True)
    last = torch.load(folder / "last.ckpt", weights_only=True)
    assert (best["epoch"], last["epoch"]) == (0, 2)
