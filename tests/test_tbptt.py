"""Truncated BPTT by key: chunks that carry a state, one optimizer step per chunk, and a
truncation that must span the task's dependency for the task to be learnt."""

from __future__ import annotations

import math
import re
from functools import partial
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch

from lightning_args.demos import DelayedRecall, RecurrentTagger
from lightning_args.demos.sequences import recall_accuracy, recall_bce
from lightning_args.errors import ConfigKeyError, ConfigValueError
from lightning_args.instantiate.optim import Optimization
from lightning_args.modules.tbptt import TBPTT
from lightning_args.modules.terms import Term
from tests.helpers import one_thread, quiet_trainer, read_record, run_app, run_dirs


def tagger(steps: int | None, hidden_size: int = 32) -> RecurrentTagger:
    model = RecurrentTagger(
        losses={"bce": Term(recall_bce, "logits", "y")},
        metrics={"acc": Term(recall_accuracy, "logits", "y")},
        tbptt=None if steps is None else {"steps": steps, "keys": ["x", "y"]},
        hidden_size=hidden_size,
    )
    model.set_optimization(Optimization.single(partial(torch.optim.Adam, lr=0.01)))
    return model


def test_chunks_with_the_carried_state_compute_what_the_whole_sequence_does() -> None:
    torch.manual_seed(0)
    model, split = tagger(3), TBPTT(steps=3, keys=("x",))
    batch = {"x": torch.randn(2, 10, 1)}
    state: dict[str, torch.Tensor] = {}
    logits = []
    for chunk in split.chunks(batch):
        assert chunk["x"].shape[1] <= 3
        outputs = model({**chunk, **state})
        state = split.carry(outputs)
        assert not state["hidden"].requires_grad  # gradients stop at the boundary
        logits.append(outputs["logits"])
    torch.testing.assert_close(torch.cat(logits, dim=1), model(batch)["logits"])


def test_each_chunk_is_one_optimizer_step(tmp_path: Path) -> None:
    model = tagger(5)
    data = DelayedRecall(train_size=64, eval_size=8, length=23, delay=2, batch_size=16)
    trainer = quiet_trainer(tmp_path, max_epochs=1, limit_val_batches=0)
    trainer.fit(model, datamodule=data)
    # 4 batches of 23 steps: 5 chunks each (the last one 3 steps long).
    assert model.opt("default").steps == 4 * math.ceil(23 / 5)
    assert trainer.global_step == 4 * 5


def test_a_run_resumed_from_a_mid_epoch_checkpoint_ends_as_an_uninterrupted_one(
    tmp_path: Path,
) -> None:
    def fitted(ckpt_path: Path | None = None, **kwargs: object) -> RecurrentTagger:
        pl.seed_everything(0, verbose=False)
        model = tagger(5)
        data = DelayedRecall(train_size=128, eval_size=8, length=23, delay=2, batch_size=16)
        trainer = quiet_trainer(tmp_path, max_epochs=2, limit_val_batches=0, **kwargs)
        trainer.fit(model, datamodule=data, ckpt_path=ckpt_path)
        return model

    whole = fitted()
    # A checkpoint after 3 of the first epoch's 8 batches (15 optimizer steps: 5 chunks each),
    # between two batches as every checkpoint is: no chunk sequence is cut.
    saver = pl.callbacks.ModelCheckpoint(tmp_path / "ckpt", every_n_train_steps=15, save_top_k=-1)
    fitted(enable_checkpointing=True, callbacks=[saver], max_steps=15)
    (checkpoint,) = (tmp_path / "ckpt").iterdir()
    assert checkpoint.name == "epoch=0-step=15.ckpt"
    resumed = fitted(checkpoint)
    for a, b in zip(whole.parameters(), resumed.parameters(), strict=True):
        torch.testing.assert_close(a, b)


BATCH = {"x": torch.zeros(2, 6, 1), "y": torch.zeros(2, 6)}


@pytest.mark.parametrize(
    ("tbptt", "error", "message"),
    [
        (
            {"steps": 0, "keys": ["x"]},
            ConfigValueError,
            "model.tbptt.steps=0: expected a positive number",
        ),
        ({"steps": 2, "keys": []}, ConfigValueError, "model.tbptt.keys=[]: expected the batch"),
        (
            {"steps": 2, "keys": ["x", "z"]},
            ConfigKeyError,
            "model.tbptt.keys: 'z' is not a key of the batch: it has 'x', 'y'",
        ),
        (
            {"steps": 2, "keys": ["x", "y"], "time_dim": 2},
            ConfigValueError,
            "model.tbptt.time_dim=2, but batch['y'] has shape (2, 6)",
        ),
    ],
    ids=["steps", "no-keys", "missing-key", "time-dim"],
)
def test_a_wrong_tbptt_config_names_the_key_and_the_fix(
    tbptt: dict[str, object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=re.escape(message)) as raised:
        list(TBPTT.of(tbptt).chunks(BATCH))
    assert "Fix:" in str(raised.value)


def test_a_state_key_the_model_does_not_return_names_the_outputs() -> None:
    split = TBPTT(steps=2, keys=("x",), state=("h",))
    with pytest.raises(ConfigKeyError, match=r"'h' is not a key of the model's outputs: it has "):
        split.carry({"logits": torch.zeros(1), "hidden": torch.zeros(1)})


@pytest.mark.slow
@pytest.mark.parametrize(
    ("steps", "learns"),
    [(12, True), (6, False), (3, False)],
    ids=["twice-the-delay", "the-delay", "half-the-delay"],
)
def test_a_truncation_learns_the_delay_only_when_it_spans_it(
    steps: int, learns: bool, tmp_path: Path
) -> None:
    pl.seed_everything(0, verbose=False)
    model = tagger(steps)
    data = DelayedRecall(train_size=1024, eval_size=256, length=48, delay=6, batch_size=64)
    trainer = quiet_trainer(tmp_path, max_epochs=5, num_sanity_val_steps=0)
    with one_thread():
        trainer.fit(model, datamodule=data)
    accuracy = float(trainer.callback_metrics["val/acc"])
    # Chance is 0.5; a chunk no longer than the delay never sees an input and the target that
    # recalls it together, so only what the untrained carried state happens to keep is read.
    assert accuracy > 0.95 if learns else accuracy < 0.75, accuracy


@pytest.mark.slow
def test_the_experiment_runs_from_the_command_line(tmp_path: Path) -> None:
    result = run_app(
        "experiment=tbptt_recall",
        "trainer.max_epochs=2",
        "data.train_size=256",
        "data.eval_size=64",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (run,) = run_dirs(tmp_path)
    record = read_record(run)
    assert record["status"] == "completed"
    assert record["objective"]["metric"] == "val/acc"
    assert {"val/acc", "val/loss", "test/acc", "train/loss"} <= set(record["metrics"])
