"""A minimal Lightning + Hydra app, as a user of hydra-optuna-sweeper writes one: the yardstick
of ``benchmarks/vs_hydra_optuna_sweeper.py``.

The same digits MLP as the example app (``train.py``: 8x8 digits standardised by the training
split, 15 % validation, 20 % test held out, AdamW, batch 64), written the common way: a
``LightningModule``, a ``DataLoader`` over a ``TensorDataset``, a ``Trainer`` with no logger and
no checkpoints, the task function returning the last ``val/acc``. It runs unchanged with either
sweeper (``hydra/sweeper=optuna``: hydra-optuna-sweeper; ``hydra/sweeper=lightning_args_optuna``:
ours) and imports nothing of lightning_args. Each job writes ``timing.json`` into its own
directory: when the task function started and ended, and how long its fit took.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import hydra
from omegaconf import DictConfig

STARTED = time.time()  # the job process imported this module: what a worker's start-up ends at


@hydra.main(config_path="conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> float:
    began = time.time()
    import lightning.pytorch as pl
    import torch
    from sklearn.datasets import load_digits
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    pl.seed_everything(cfg.seed, verbose=False)
    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32).reshape(-1, 64)
    y = torch.tensor(digits.target, dtype=torch.int64)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    n_test, n_val = round(len(y) * 0.2), round(len(y) * 0.15)
    # The first n_test are the held-out test split, which no sweep looks at.
    val, train = order[n_test : n_test + n_val], order[n_test + n_val :]
    mean, std = x[train].mean(), x[train].std()
    x = (x - mean) / std

    class MLP(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            layers: list[nn.Module] = []
            width_in = 64
            for _ in range(cfg.model.depth):
                layers += [nn.Linear(width_in, cfg.model.width), nn.ReLU()]
                layers.append(nn.Dropout(cfg.model.dropout))
                width_in = cfg.model.width
            self.net = nn.Sequential(*layers, nn.Linear(width_in, 10))

        def training_step(self, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
            inputs, labels = batch
            loss = nn.functional.cross_entropy(self.net(inputs), labels)
            self.log("train/loss", loss)
            return loss

        def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor]) -> None:
            inputs, labels = batch
            acc = (self.net(inputs).argmax(-1) == labels).float().mean()
            self.log("val/acc", acc)

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.AdamW(
                self.parameters(), lr=cfg.optimizer.lr, weight_decay=cfg.optimizer.weight_decay
            )

    def loader(index: torch.Tensor, shuffle: bool) -> DataLoader[tuple[torch.Tensor, ...]]:
        return DataLoader(TensorDataset(x[index], y[index]), batch_size=64, shuffle=shuffle)

    trainer = pl.Trainer(
        max_epochs=cfg.max_epochs,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=10,
    )
    fit_began = time.time()
    trainer.fit(MLP(), loader(train, True), loader(val, False))
    fit_s = time.time() - fit_began
    value = float(trainer.callback_metrics["val/acc"])
    timing = {
        "process_started": STARTED,
        "began": began,
        "ended": time.time(),
        "fit_s": fit_s,
        "epochs": trainer.current_epoch,
        "value": value,
    }
    (Path.cwd() / "timing.json").write_text(json.dumps(timing))  # hydra.job.chdir: the job's dir
    return value


if __name__ == "__main__":
    main()
