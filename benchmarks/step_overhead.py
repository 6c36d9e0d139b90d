"""Time per training step of the digits MLP, three ways, in one process.

Compared (same model, optimizer, batch size 64, torch threads and training data):

  hand-written loop      plain PyTorch over in-memory tensor slices: the floor
  lightning_args         the default config composed with Hydra, ``lightning_args.build``,
                         ``trainer.fit``: cosine scheduler, CSV logger and the module's
                         training-loss logging kept; no checkpoints, validation or bar
  Lightning+DataLoader   the common template: a LightningModule that ``self.log``s every step,
                         fed by ``DataLoader(TensorDataset(x, y), shuffle=True)``

Each variant is warmed up once, then the three run in turn, ``--repeats`` rounds of ``--epochs``
epochs; the table shows milliseconds per optimizer step (fit time / ``trainer.global_step``) and
the median's ratio to the hand-written loop. torch runs on 1 thread by default: with 2 threads on
a 2-core machine, any other load makes a step 5-50x slower.
Target (from the issue): lightning_args at most 1.7x the hand-written loop. The script prints
PASS/FAIL and always exits 0.

    python benchmarks/step_overhead.py [--epochs 80] [--repeats 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from lightning.pytorch.loggers import CSVLogger
from omegaconf import DictConfig
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import lightning_args
from lightning_args.demos import DigitsDataModule

CONF_DIR = str(Path(__file__).resolve().parents[1] / "conf")
BATCH_SIZE = 64
TARGET_RATIO = 1.7
# The same Trainer settings for both Lightning variants: the training loop and the logger only.
QUIET_TRAINER: dict[str, Any] = {
    "enable_progress_bar": False,
    "enable_model_summary": False,
    "enable_checkpointing": False,
    "limit_val_batches": 0,
    "num_sanity_val_steps": 0,
}
QUIET_OVERRIDES = [
    "callbacks=[]",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    # Without it Lightning adds a ModelCheckpoint of its own.
    "trainer.enable_checkpointing=false",
    "trainer.limit_val_batches=0",
    "trainer.num_sanity_val_steps=0",
]

Run = Callable[[int, Path], tuple[float, int]]  # (epochs, tmp dir) -> (seconds, steps)


def make_net() -> nn.Module:
    """The ``model: mlp`` default: 64 -> 256 -> 10, ReLU, dropout 0.1."""
    return nn.Sequential(
        nn.Flatten(), nn.Linear(64, 256), nn.ReLU(), nn.Dropout(0.1), nn.Linear(256, 10)
    )


def make_optimizer(params: Iterable[nn.Parameter]) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=1e-3, weight_decay=1e-2)


def train_split() -> tuple[torch.Tensor, torch.Tensor]:
    datamodule = DigitsDataModule(batch_size=BATCH_SIZE)
    datamodule.setup("fit")
    train = datamodule.splits["train"]
    return train["image"], train["label"]


def hand_written(x: torch.Tensor, y: torch.Tensor) -> Run:
    def run(epochs: int, tmp: Path) -> tuple[float, int]:
        net = make_net()
        optimizer = make_optimizer(net.parameters())
        steps = 0
        start = time.perf_counter()
        for _ in range(epochs):
            order = torch.randperm(len(y))
            xs, ys = x[order], y[order]
            for i in range(0, len(ys), BATCH_SIZE):
                loss = F.cross_entropy(net(xs[i : i + BATCH_SIZE]), ys[i : i + BATCH_SIZE])
                optimizer.zero_grad()
                loss.backward()  # type: ignore[no-untyped-call]
                optimizer.step()
                steps += 1
        return time.perf_counter() - start, steps

    return run


def fit(trainer: pl.Trainer, module: pl.LightningModule, **data: Any) -> tuple[float, int]:
    start = time.perf_counter()
    trainer.fit(module, **data)
    return time.perf_counter() - start, trainer.global_step


def compose_app(overrides: list[str]) -> DictConfig:
    """The app's config (``conf/config.yaml``) as ``train.py`` would compose it."""
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return compose("config", overrides=[*QUIET_OVERRIDES, *overrides])


def ours(overrides: list[str]) -> Run:
    def run(epochs: int, tmp: Path) -> tuple[float, int]:
        cfg = compose_app([f"trainer.max_epochs={epochs}", f"paths.run_dir={tmp}", *overrides])
        built = lightning_args.build(cfg)
        return fit(built.trainer, built.module, datamodule=built.datamodule)

    return run


class Template(pl.LightningModule):
    """The usual hand-written LightningModule: same net and optimizer, logs every step."""

    def __init__(self) -> None:
        super().__init__()
        self.net = make_net()

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], idx: int) -> torch.Tensor:
        x, y = batch
        loss = F.cross_entropy(self.net(x), y)
        self.log("train/loss", loss, on_step=True)
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return make_optimizer(self.parameters())


def template(x: torch.Tensor, y: torch.Tensor) -> Run:
    def run(epochs: int, tmp: Path) -> tuple[float, int]:
        loader = DataLoader(TensorDataset(x, y), batch_size=BATCH_SIZE, shuffle=True)
        trainer = pl.Trainer(
            accelerator="cpu",
            devices=1,
            max_epochs=epochs,
            logger=CSVLogger(tmp, name="", version=""),
            default_root_dir=tmp,
            **QUIET_TRAINER,
        )
        return fit(trainer, Template(), train_dataloaders=loader)

    return run


def ms_per_step(variants: dict[str, Run], epochs: int, repeats: int) -> dict[str, list[float]]:
    """Warm every variant up with a 2-epoch run, then time them in turn, ``repeats`` rounds."""
    times: dict[str, list[float]] = {name: [] for name in variants}
    for round_ in range(repeats + 1):
        for name, run in variants.items():
            with tempfile.TemporaryDirectory() as tmp:
                seconds, steps = run(epochs if round_ else 2, Path(tmp))
            if round_:
                times[name].append(1000 * seconds / steps)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=80, help="19 steps each (default 80)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (default 1: robust to other load)"
    )
    parser.add_argument(
        "--override",
        action="append",
        default=[],
        help="extra Hydra override for the lightning_args variant (repeatable)",
    )
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    x, y = train_split()
    variants = {
        "hand-written loop": hand_written(x, y),
        "lightning_args": ours(args.override),
        "Lightning+DataLoader": template(x, y),
    }
    steps = args.epochs * -(-len(y) // BATCH_SIZE)
    print(
        f"digits MLP 64-256-10, batch {BATCH_SIZE}, {len(y)} samples, {steps} steps/run, "
        f"{args.repeats} runs each, torch {torch.__version__}, {torch.get_num_threads()} thread(s)"
    )
    cfg = compose_app(args.override)
    scheduler = cfg.scheduler._target_.rsplit(".", 1)[-1] if cfg.scheduler else None
    print(
        f"lightning_args: model {cfg.model.encoder._target_.rsplit('.', 1)[-1]}, "
        f"scheduler {scheduler}, "
        f"loggers {list(cfg.logger)}, trainer.log_every_n_steps={cfg.trainer.log_every_n_steps}"
    )
    times = ms_per_step(variants, args.epochs, args.repeats)
    median = {name: statistics.median(t) for name, t in times.items()}
    floor = median["hand-written loop"]
    print(f"{'variant':<22}{'median ms/step':>16}{'min ms/step':>13}{'vs loop':>9}")
    for name, ms in median.items():
        print(f"{name:<22}{ms:>16.3f}{min(times[name]):>13.3f}{ms / floor:>8.2f}x")
    ratio = median["lightning_args"] / floor
    verdict = "PASS" if ratio <= TARGET_RATIO else "FAIL"
    print(f"{verdict}: lightning_args is {ratio:.2f}x the loop (target <= {TARGET_RATIO}x)")


if __name__ == "__main__":
    main()
