"""ConfiguredModule: cheap interval logging, and attribute handling that stays nn.Module's."""

from __future__ import annotations

import csv
from functools import partial
from pathlib import Path

import pytest
import torch
from lightning.pytorch.loggers import CSVLogger

from lightning_args import ConfiguredModule, TensorBatches
from lightning_args.instantiate.optim import Optimization
from tests.conftest import quiet_trainer


class Counting(ConfiguredModule):
    """Its loss on batch ``i`` is exactly ``i``, so logged means are known in advance."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(()))

    def training_step(self, batch: tuple[torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = self.w * 0 + float(batch_idx)
        self.log_interval_mean("train/loss", loss)
        return loss


def test_interval_mean_is_logged_every_n_steps(tmp_path: Path) -> None:
    module = Counting()
    module.set_optimization(Optimization.single(partial(torch.optim.SGD, lr=0.1)))
    trainer = quiet_trainer(
        tmp_path, max_epochs=1, log_every_n_steps=3, logger=CSVLogger(tmp_path, name="", version="")
    )
    trainer.fit(module, train_dataloaders=TensorBatches((torch.zeros(9),), 1))
    with (tmp_path / "metrics.csv").open() as f:
        logged = [float(row["train/loss"]) for row in csv.DictReader(f) if row["train/loss"]]
    assert logged == [1.0, 4.0, 7.0]  # means of 0..2, 3..5, 6..8


def test_module_attributes_still_register_parameters_and_submodules() -> None:
    module = Counting()
    module.layer = torch.nn.Linear(2, 2)
    module._current_fx_name = "training_step"
    assert "layer.weight" in dict(module.named_parameters())
    assert module._current_fx_name == "training_step"
    with pytest.raises(TypeError):
        module.w = torch.zeros(())  # nn.Module still guards its parameters
