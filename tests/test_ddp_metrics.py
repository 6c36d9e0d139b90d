"""Metrics under DDP: two CPU processes (gloo) log what one process logs over the same data.

One process with batches of 2B and two with batches of B per rank see the same samples in every
step (each rank takes every other sample of the same permutation) and average the same
gradients, so their validation metrics agree to float precision, provided every rank holds as
many samples as the others (the digits' 1168 training and 270 validation images are even).
"""

from __future__ import annotations

from pathlib import Path

import pytest

import lightning_args
from lightning_args.demos import DigitsDataModule
from lightning_args.modules.data import TensorBatches
from tests.helpers import one_thread, quiet_trainer, read_record, run_app, run_dirs

pytestmark = pytest.mark.slow

DDP = ("trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2")
QUICK = ("trainer.max_epochs=1", "trainer.limit_train_batches=4", "test=false")
BATCH = 32  # per rank; one process takes batches of two ranks' size
TOLERANCE = 1e-4  # relative


@pytest.mark.parametrize(
    ("choice", "strategy", "metrics"),
    [
        # Without dropout, whose masks are drawn per rank.
        (("model.encoder.dropout=0",), "ddp", ("val/acc", "val/loss")),
        # The GAN draws its training noise per rank, so its training differs between one
        # process and two: both evaluate the initial generator (lr 0) on the fixed noise. Its
        # discriminator's steps leave the generator unused: DDP must be told to expect that.
        (
            (
                "model=gan",
                "optimizers.generator.optimizer.lr=0",
                "optimizers.discriminator.optimizer.lr=0",
            ),
            "ddp_find_unused_parameters_true",
            ("val/mmd",),
        ),
    ],
    ids=["classifier-means", "gan-mmd-over-gathered-images"],
)
def test_two_ranks_log_the_metrics_of_one_process(
    choice: tuple[str, ...], strategy: str, metrics: tuple[str, ...], tmp_path: Path
) -> None:
    ddp = (*DDP, f"trainer.strategy={strategy}", f"data.batch_size={BATCH}")
    logged = {}
    for name, extra in (("one", (f"data.batch_size={2 * BATCH}",)), ("ddp", ddp)):
        (tmp_path / name).mkdir()
        result = run_app(*choice, *QUICK, *extra, cwd=tmp_path / name)
        assert result.returncode == 0, result.stderr[-3000:]
        (run,) = run_dirs(tmp_path / name)
        logged[name] = read_record(run)["metrics"]
    for metric in metrics:
        assert logged["ddp"][metric] == pytest.approx(logged["one"][metric], rel=TOLERANCE), metric

    # The control: the same metrics over rank 0's half of the images (a metric that was not
    # synchronised, an MMD over one rank's images) fail this tolerance.
    (ddp_run,) = run_dirs(tmp_path / "ddp")
    loaded = lightning_args.load_run(ddp_run, checkpoint="last")
    assert isinstance(loaded.datamodule, DigitsDataModule)
    loaded.datamodule.setup("fit")
    half = TensorBatches({k: t[0::2] for k, t in loaded.datamodule.splits["val"].items()}, BATCH)
    with one_thread():
        (on_half,) = quiet_trainer(tmp_path / "half").validate(loaded.module, half, verbose=False)
    for metric in metrics:
        assert on_half[metric] != pytest.approx(logged["one"][metric], rel=TOLERANCE), metric
