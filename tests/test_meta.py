"""Meta-learning with named inner and outer optimizers: the learned initialisation adapts."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn
from torch.func import functional_call

from lightning_args.demos import SinusoidMetaLearner, SinusoidTasks
from lightning_args.demos.meta import (
    adapted_weights,
    meta_optimization,
    regressor,
    sinusoid_tasks,
)
from lightning_args.errors import ConfigValueError
from tests.helpers import one_thread, quiet_trainer, read_record, run_app, run_dirs


def _meta_learn(
    algorithm: str, tmp_path: Path, *, learn_inner_lr: bool = False
) -> SinusoidMetaLearner:
    torch.manual_seed(0)
    learner = SinusoidMetaLearner(algorithm=algorithm, eval_lr=0.01, learn_inner_lr=learn_inner_lr)
    learner.set_optimization(meta_optimization(learn_inner_lr=learn_inner_lr))
    trainer = quiet_trainer(tmp_path, max_epochs=2, inference_mode=False, limit_val_batches=0)
    with one_thread():
        trainer.fit(learner, datamodule=SinusoidTasks(train_tasks=1500, shots=10, seed=0))
    return learner


def _loss_after_adapting(
    net: nn.Module,
    tasks: dict[str, torch.Tensor],
    steps: int,
    lr: float | list[torch.Tensor] = 0.01,
) -> float:
    losses = []
    for i in range(len(tasks["x_support"])):
        weights = adapted_weights(net, tasks["x_support"][i], tasks["y_support"][i], steps, lr)
        with torch.no_grad():
            adapted = functional_call(net, weights, (tasks["x_query"][i],))
            losses.append(nn.functional.mse_loss(adapted, tasks["y_query"][i]))
    return float(torch.stack(losses).mean())


@pytest.mark.slow
@pytest.mark.parametrize("algorithm", ["maml", "fomaml", "reptile"])
def test_meta_learned_init_adapts_to_unseen_tasks_far_better(
    algorithm: str, tmp_path: Path
) -> None:
    learner = _meta_learn(algorithm, tmp_path)
    unseen = sinusoid_tasks(50, 10, torch.Generator().manual_seed(1234))
    torch.manual_seed(1)
    with one_thread():  # 200 tiny adaptations: threads only contend on two busy cores
        random_losses = [_loss_after_adapting(regressor([40, 40]), unseen, 5) for _ in range(3)]
        meta = _loss_after_adapting(learner.net, unseen, 5)
    assert meta < 0.5 * min(random_losses), (meta, random_losses)
    # Second-order MAML adapts inside the graph: the inner optimizer only lends its lr.
    inner_steps = 0 if algorithm == "maml" else 2 * 1500 * 5
    assert learner.opt("inner").steps == inner_steps
    assert learner.opt("outer").steps == 2 * 1500


@pytest.mark.slow
def test_meta_sgd_learns_step_sizes_that_adapt_better_than_the_initial_ones(
    tmp_path: Path,
) -> None:
    learner = _meta_learn("maml", tmp_path, learn_inner_lr=True)
    assert learner.log_inner_lr is not None
    rates = [w.detach().exp() for w in learner.log_inner_lr]
    assert learner.opt("inner_lr").steps == 2 * 1500
    assert any(not torch.allclose(r, torch.full_like(r, 0.01)) for r in rates)
    unseen = sinusoid_tasks(50, 10, torch.Generator().manual_seed(1234))
    with one_thread():
        learned = _loss_after_adapting(learner.net, unseen, 5, rates)
        fixed = _loss_after_adapting(learner.net, unseen, 5, 0.01)
    assert learned < fixed, (learned, fixed)


def test_learned_step_sizes_need_second_order_maml() -> None:
    with pytest.raises(
        ConfigValueError, match=r"model.learn_inner_lr=true with model.algorithm=fomaml"
    ):
        SinusoidMetaLearner(algorithm="fomaml", learn_inner_lr=True)


def test_tasks_are_reproducible_and_split() -> None:
    a, b = (
        SinusoidTasks(train_tasks=5, eval_tasks=3, seed=7),
        SinusoidTasks(train_tasks=5, eval_tasks=3, seed=7),
    )
    a.setup("fit")
    b.setup("fit")
    torch.testing.assert_close(a.tasks["val"]["y_query"], b.tasks["val"]["y_query"])
    assert not torch.equal(a.tasks["val"]["x_support"], a.tasks["test"]["x_support"][:3])


@pytest.mark.slow
@pytest.mark.parametrize(
    "choice",
    [
        ("experiment=maml_sinusoid",),
        ("experiment=maml_sinusoid", "model.algorithm=maml"),
        ("experiment=metasgd_sinusoid",),
    ],
    ids=["fomaml", "maml", "metasgd"],
)
def test_experiment_runs_from_the_command_line(choice: tuple[str, ...], tmp_path: Path) -> None:
    result = run_app(
        *choice,
        "trainer.max_epochs=1",
        "data.train_tasks=300",
        "data.eval_tasks=20",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (run,) = run_dirs(tmp_path)
    record = read_record(run)
    assert record["status"] == "completed"
    assert record["objective"]["metric"] == "val/query_loss"
    metrics = record["metrics"]
    assert metrics["test/query_loss"] < metrics["test/query_loss_0"]
