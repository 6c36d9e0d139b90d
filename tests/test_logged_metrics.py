"""A resume keeps what was logged before it (CI of a96b0be): a run interrupted after its last
training step only validates when resumed, so metrics logged in training (``train/loss``,
``lr-AdamW``) would be missing from its record. :class:`LoggedMetrics` keeps them in the
checkpoint; a checkpoint whose saved metrics are not numbers is refused by name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.demos.boring_classes import BoringModel

from lightning_args.callbacks.logged import LoggedMetrics, scalars
from lightning_args.errors import CheckpointError
from tests.helpers import quiet_trainer

# Resuming into the directory it trained in is the point here.
pytestmark = pytest.mark.filterwarnings("ignore:Checkpoint directory .* exists and is not empty")


class LogsInTraining(BoringModel):
    def training_step(self, batch: Any, batch_idx: int) -> Any:
        out = super().training_step(batch, batch_idx)
        self.log("train/only", 1.0 + self.current_epoch)
        return out


def fit(root: Path, logged: LoggedMetrics, ckpt_path: Path | None = None) -> Any:
    trainer = quiet_trainer(
        root,
        max_epochs=2,
        limit_train_batches=2,
        limit_val_batches=1,
        enable_checkpointing=True,
        callbacks=[logged, ModelCheckpoint(dirpath=root, save_last=True)],
    )
    trainer.fit(LogsInTraining(), ckpt_path=ckpt_path, weights_only=True)
    return trainer


def test_a_resume_with_no_training_left_keeps_the_metrics_logged_before(tmp_path: Path) -> None:
    first = fit(tmp_path, LoggedMetrics())
    assert first.callback_metrics["train/only"] == 2.0
    logged = LoggedMetrics()
    again = fit(tmp_path, logged, ckpt_path=tmp_path / "last.ckpt")
    assert logged.metrics(again)["train/only"] == 2.0
    # Control: what the resumed process logged itself lacks it.
    assert "train/only" not in scalars(again.callback_metrics)


@pytest.mark.parametrize(
    "saved",
    [
        {"metrics": {"train/only": "__import__('os')"}},
        {"metrics": ["train/only"]},
        {"metrics": {1: 2.0}},
        {"metrics": {"flag": True}},
    ],
)
def test_saved_metrics_that_are_not_numbers_are_refused_by_file(
    tmp_path: Path, saved: dict[str, Any]
) -> None:
    fit(tmp_path, LoggedMetrics())
    path = tmp_path / "last.ckpt"
    checkpoint = torch.load(path, weights_only=True)
    (key,) = [k for k in checkpoint["callbacks"] if k == LoggedMetrics.__qualname__]
    checkpoint["callbacks"][key] = saved
    torch.save(checkpoint, path)
    with pytest.raises(CheckpointError, match=r"last\.ckpt: the state of LoggedMetrics is .*Fix:"):
        fit(tmp_path, LoggedMetrics(), ckpt_path=path)
