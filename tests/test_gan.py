"""The GAN demo: named optimizers in use, a sample-quality metric that means something."""

from __future__ import annotations

import csv
from functools import partial
from pathlib import Path

import pytest
import torch

from lightning_args.demos import GAN, DigitsDataModule
from lightning_args.demos.gan import image_grid, mmd2, save_png
from lightning_args.instantiate.optim import Optimization, OptimizerSpec
from tests.helpers import one_thread, quiet_trainer, read_record, run_app, run_dirs


@pytest.fixture(scope="module")
def digits() -> dict[str, torch.Tensor]:
    dm = DigitsDataModule(scale="unit")
    dm.setup("fit")
    return {name: split["image"] for name, split in dm.splits.items()}


def _train(loss: str, epochs: int, tmp_path: Path) -> GAN:
    torch.manual_seed(0)
    gan = GAN(loss=loss)
    adam = partial(torch.optim.Adam, lr=1e-3, betas=(0.5, 0.999))
    gan.set_optimization(
        Optimization(
            {
                "discriminator": OptimizerSpec(adam, ("discriminator",)),
                "generator": OptimizerSpec(adam, ("generator",)),
            }
        )
    )
    trainer = quiet_trainer(tmp_path, max_epochs=epochs, num_sanity_val_steps=0)
    with one_thread():
        trainer.fit(gan, datamodule=DigitsDataModule(batch_size=32, scale="unit"))
    return gan


def test_mmd_is_near_zero_for_held_out_real_digits(digits: dict[str, torch.Tensor]) -> None:
    assert abs(float(mmd2(digits["train"][:512], digits["val"]))) < 0.01


@pytest.mark.slow  # two minutes of training: the assertion is about what it learned
def test_a_trained_generator_is_far_better_than_noise(
    digits: dict[str, torch.Tensor], tmp_path: Path
) -> None:
    noise = float(mmd2(torch.rand(512, 1, 8, 8) * 2 - 1, digits["val"]))
    untrained = float(mmd2(GAN().generate(torch.randn(512, 32)).detach(), digits["val"]))
    gan = _train("non_saturating", 20, tmp_path)
    trained = float(mmd2(gan.generate(gan.eval_noise).detach(), digits["val"]))
    floor = float(mmd2(digits["train"][:512], digits["val"]))
    assert noise > 0.5
    assert untrained > 0.5
    assert floor < trained < noise / 3, (floor, trained, noise)
    assert gan.opt("generator").steps == gan.opt("discriminator").steps == 20 * 37


def test_wgan_gp_trains_with_finite_losses(tmp_path: Path) -> None:
    gan = _train("wgan_gp", 1, tmp_path)
    metrics = gan.trainer.callback_metrics
    assert torch.isfinite(metrics["val/mmd"])
    assert list((tmp_path / "samples").glob("epoch_000.png"))


def test_sample_grid_is_a_png(tmp_path: Path) -> None:
    from PIL import Image

    grid = image_grid(torch.randn(10, 1, 8, 8), columns=4)
    assert tuple(grid.shape) == (3 * 9 + 1, 4 * 9 + 1)
    save_png(grid, tmp_path / "grid.png")
    with Image.open(tmp_path / "grid.png") as image:
        assert image.size == (4 * (4 * 9 + 1), 4 * (3 * 9 + 1))


@pytest.mark.slow
def test_gan_run_writes_samples_and_returns_its_quality(tmp_path: Path) -> None:
    result = run_app("model=gan", "trainer.max_epochs=2", "logger=[csv,tensorboard]", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    (run,) = run_dirs(tmp_path)
    assert sorted(p.name for p in (run / "samples").glob("*.png")) == [
        "epoch_000.png",
        "epoch_001.png",
    ]
    with (run / "metrics.csv").open() as f:
        mmd = [float(row["val/mmd"]) for row in csv.DictReader(f) if row["val/mmd"]]
    assert len(mmd) == 2
    record = read_record(run)
    assert record["objective"]["metric"] == "val/mmd"
    assert record["objective"]["mode"] == "min"
    assert record["objective"]["value"] == pytest.approx(min(mmd))
    assert "test/mmd" in record["metrics"]
    events = b"".join(p.read_bytes() for p in (run / "tensorboard").glob("events.*"))
    assert b"samples" in events  # the grids went to TensorBoard too
