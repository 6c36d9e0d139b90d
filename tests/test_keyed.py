"""Dict-passing models: losses and metrics declared by key, logged by name."""

from __future__ import annotations

import csv
from functools import partial
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from lightning.pytorch.loggers import CSVLogger

from lightning_args import ConfigKeyError, ConfigValueError, TensorBatches
from lightning_args.demos import Classifier, MLPEncoder
from lightning_args.instantiate.optim import Optimization
from lightning_args.modules.keyed import KeyedModule
from lightning_args.modules.metrics import accuracy
from lightning_args.modules.terms import Term, evaluate
from tests.conftest import quiet_trainer

OUTPUTS = {"logits": torch.tensor([[2.0, 0.0]]), "features": torch.zeros(1, 3)}
BATCH = {"image": torch.zeros(1, 2), "label": torch.tensor([0])}


@pytest.mark.parametrize(
    ("term", "message"),
    [
        (
            Term(F.cross_entropy, "logit", "label"),
            r"model\.losses\.ce\.input='logit' is not a key of the model's outputs: it has "
            r"'logits', 'features'\. Fix: model\.losses\.ce\.input=logits",
        ),
        (
            Term(F.cross_entropy, "logits", "labels"),
            r"model\.losses\.ce\.target='labels' is not a key of the model's batch: it has "
            r"'image', 'label'\. Fix: model\.losses\.ce\.target=label",
        ),
        (
            Term(F.cross_entropy, "logits", "y"),
            r"Fix: model\.losses\.ce\.target=<one of them>",
        ),
    ],
)
def test_a_misspelled_key_lists_the_keys_that_exist(term: Term, message: str) -> None:
    with pytest.raises(ConfigKeyError, match=message):
        evaluate({"ce": term}, OUTPUTS, BATCH, "model.losses")


def test_terms_are_weighted() -> None:
    terms = {"ce": Term(F.cross_entropy, "logits", "label", weight=3.0)}
    plain = F.cross_entropy(OUTPUTS["logits"], BATCH["label"])
    torch.testing.assert_close(evaluate(terms, OUTPUTS, BATCH, "model.losses")["ce"], 3 * plain)


class TwoHeads(KeyedModule):
    """A regression and a classification output from one layer; two losses."""

    def __init__(self) -> None:
        super().__init__(
            losses={
                "ce": {"fn": F.cross_entropy, "input": "logits", "target": "label"},
                "mse": {"fn": F.mse_loss, "input": "value", "target": "value", "weight": 0.5},
            },
            metrics={"acc": {"fn": accuracy, "input": "logits", "target": "label"}},
        )
        self.layer = torch.nn.Linear(2, 3)

    def forward(self, batch):  # type: ignore[no-untyped-def]
        out = self.layer(batch["x"])
        return {"logits": out[:, :2], "value": out[:, 2]}


def test_every_loss_and_metric_is_logged_by_name(tmp_path: Path) -> None:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(40, 2, generator=generator)
    data = {"x": x, "label": (x[:, 0] > 0).long(), "value": x.sum(1)}
    module = TwoHeads()
    module.set_optimization(Optimization.single(partial(torch.optim.SGD, lr=0.1)))
    trainer = quiet_trainer(
        tmp_path, max_epochs=2, log_every_n_steps=2, logger=CSVLogger(tmp_path, name="", version="")
    )
    trainer.fit(module, TensorBatches(data, 8, shuffle=True), TensorBatches(data, 20))
    with (tmp_path / "metrics.csv").open() as f:
        columns = set(next(csv.reader(f)))
    assert {
        "train/loss",
        "train/ce",
        "train/mse",
        "val/loss",
        "val/ce",
        "val/mse",
        "val/acc",
    } <= columns


def test_a_module_without_losses_is_refused() -> None:
    with pytest.raises(ConfigValueError, match="has no losses"):
        Classifier(encoder=MLPEncoder((1, 8, 8)), head=torch.nn.Linear, losses={})


def test_an_encoder_must_say_its_width() -> None:
    with pytest.raises(ConfigValueError, match="no integer 'out_features'"):
        Classifier(
            encoder=torch.nn.Flatten(),
            head=torch.nn.Linear,
            losses={"ce": Term(F.cross_entropy, "logits", "label")},
        )


def test_hydra_partials_are_called_directly() -> None:
    """Hydra 1.3.8's partials re-check their target on every call; a term calls the function."""
    from hydra.utils import instantiate

    fn = instantiate({"_target_": "torch.nn.functional.cross_entropy", "_partial_": True})
    term = Term.of({"fn": fn, "input": "logits", "target": "label"})
    assert type(term.fn) is partial
    assert term.fn.func is F.cross_entropy
    torch.testing.assert_close(
        term.fn(OUTPUTS["logits"], BATCH["label"]), fn(OUTPUTS["logits"], BATCH["label"])
    )
