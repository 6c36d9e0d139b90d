"""The library's config groups serve an app outside this repository, with no file copied."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from hydra.core.plugins import Plugins
from hydra.plugins.search_path_plugin import SearchPathPlugin

from tests.conftest import read_record, run_app, run_dirs

MODULE = '''
import torch
import lightning.pytorch as pl
from lightning_args import ConfiguredModule, TensorBatches


class Line(ConfiguredModule):
    """Fits y = 3x - 1."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(1, width), torch.nn.Linear(width, 1))

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.net(x), y)
        self.log("train/loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val/mse", torch.nn.functional.mse_loss(self.net(x), y))

    test_step = validation_step


class Points(pl.LightningDataModule):
    def __init__(self, n: int) -> None:
        super().__init__()
        x = torch.linspace(-1, 1, n).unsqueeze(1)
        self.data = (x, 3 * x - 1)

    def train_dataloader(self):
        return TensorBatches(self.data, 16, shuffle=True)

    def val_dataloader(self):
        return TensorBatches(self.data, 64)

    test_dataloader = val_dataloader


class FoldedPoints(Points):
    """Points that k-fold cross-validation can split: the documented hook, nothing more."""

    def fold_samples(self):
        from lightning_args.modules.folds import FoldSamples

        return FoldSamples(len(self.data[0]))

    def use_fold(self, train, val):
        x, y = self.data
        self.fold = [(x[list(part)], y[list(part)]) for part in (train, val)]

    def train_dataloader(self):
        return TensorBatches(self.fold[0], 16, shuffle=True)

    def val_dataloader(self):
        return TensorBatches(self.fold[1], 64)
'''

# A plain ``hydra.main`` app: nothing of lightning_args is imported before composition, so the
# groups must come from the Hydra plugin.
APP = """
import hydra


@hydra.main(config_path="conf", config_name="config", version_base="1.3")
def main(cfg):
    import lightning_args

    return lightning_args.train(cfg)


if __name__ == "__main__":
    main()
"""

CONFIG = """
defaults:
  - lightning_args
  - trainer: cpu
  - optimizer: sgd
  - logger: [csv]
  - callbacks: [checkpoint]
  - _self_

model:
  _target_: user_model.Line
  width: 8
data:
  _target_: user_model.Points
  n: 128
optimizer:
  lr: 0.1
trainer:
  max_epochs: 30
  enable_progress_bar: false
objective:
  metric: val/mse
  mode: min
"""


def test_plugin_is_discovered() -> None:
    names = [p.__name__ for p in Plugins.instance().discover(SearchPathPlugin)]
    assert "LightningArgsSearchPathPlugin" in names


@pytest.mark.slow
def test_outside_project_trains_with_library_groups(tmp_path: Path) -> None:
    project = tmp_path / "user_project"
    (project / "conf").mkdir(parents=True)
    (project / "user_model.py").write_text(textwrap.dedent(MODULE))
    (project / "app.py").write_text(textwrap.dedent(APP))
    (project / "conf" / "config.yaml").write_text(textwrap.dedent(CONFIG))

    result = run_app("trainer.max_epochs=30", cwd=project, script=project / "app.py")

    assert result.returncode == 0, result.stderr[-3000:]
    (run,) = run_dirs(project)
    record = read_record(run)
    assert record["status"] == "completed"
    assert record["objective"]["value"] < 0.01  # it really learned the line
    assert (run / "checkpoints" / "last.ckpt").is_file()
    config = (run / ".hydra" / "config.yaml").read_text()
    assert "torch.optim.SGD" in config  # the optimizer came from the library's group
    assert "accelerator: cpu" in config


@pytest.mark.slow
@pytest.mark.parametrize("data", ["FoldedPoints", "Points"], ids=["hook", "control-no-hook"])
def test_outside_projects_datamodule_runs_kfold_with_the_hook_only(
    tmp_path: Path, data: str
) -> None:
    """#14: a user's DataModule needs only fold_samples() and use_fold() for +cv=kfold."""
    project = tmp_path / "user_project"
    (project / "conf").mkdir(parents=True)
    (project / "user_model.py").write_text(textwrap.dedent(MODULE))
    (project / "app.py").write_text(textwrap.dedent(APP))
    (project / "conf" / "config.yaml").write_text(textwrap.dedent(CONFIG))

    result = run_app(
        "+cv=kfold",
        "cv.folds=2",
        f"data._target_=user_model.{data}",
        cwd=project,
        script=project / "app.py",
    )

    (run,) = run_dirs(project)
    if data == "Points":
        assert result.returncode == 1
        assert "Points has no fold_samples() or use_fold()" in result.stderr
        return
    assert result.returncode == 0, result.stderr[-3000:]
    record = read_record(run)
    assert record["status"] == "completed"
    assert [f["status"] for f in record["cv"]["folds"]] == ["completed", "completed"]
    assert record["objective"]["value"] < 0.01  # each fold learned the line
