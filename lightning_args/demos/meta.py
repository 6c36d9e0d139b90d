"""Meta-learning on sinusoid regression: MAML, first-order MAML or Reptile, named optimizers.

Each batch is one task: ``y = a sin(x + b)`` with ``a`` in [0.1, 5] and ``b`` in [0, pi], a
support set to adapt on and a query set to judge the adaptation. The ``inner`` optimizer adapts a
copy of the network (``fast``) to the support set; the ``outer`` optimizer moves the
meta-parameters (``net``) towards what adapted well. Tasks are generated, nothing is downloaded.
"""

from __future__ import annotations

import copy
import functools
import itertools
import math
from collections.abc import Sequence

import lightning.pytorch as pl
import torch
from torch import nn
from torch.func import functional_call

from lightning_args.demos.config import MetaAlgorithm
from lightning_args.errors import ConfigValueError
from lightning_args.instantiate.optim import Optimization, OptimizerSpec
from lightning_args.modules.configured import ConfiguredModule
from lightning_args.modules.data import TensorBatches

Batch = dict[str, torch.Tensor]


def sinusoid_tasks(count: int, shots: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """``count`` tasks of ``shots`` support and ``shots`` query points each, shaped
    ``(count, shots, 1)``."""
    amplitude = torch.empty(count, 1, 1).uniform_(0.1, 5.0, generator=generator)
    phase = torch.empty(count, 1, 1).uniform_(0.0, math.pi, generator=generator)
    x = torch.empty(count, 2 * shots, 1).uniform_(-5.0, 5.0, generator=generator)
    y = amplitude * torch.sin(x + phase)
    return {
        "x_support": x[:, :shots],
        "y_support": y[:, :shots],
        "x_query": x[:, shots:],
        "y_query": y[:, shots:],
    }


class SinusoidTasks(pl.LightningDataModule):
    """Episodic data: one generated sinusoid task per batch; fixed tasks for val and test.

    Example:
        >>> dm = SinusoidTasks(train_tasks=4, shots=5)
        >>> dm.setup("fit")
        >>> {k: tuple(v.shape) for k, v in next(iter(dm.train_dataloader())).items()}["x_query"]
        (1, 5, 1)
    """

    def __init__(
        self, train_tasks: int = 2000, eval_tasks: int = 100, shots: int = 10, seed: int = 0
    ) -> None:
        super().__init__()
        if shots < 1 or train_tasks < 1 or eval_tasks < 1:
            raise ConfigValueError(
                f"data.shots={shots}, data.train_tasks={train_tasks}, data.eval_tasks="
                f"{eval_tasks}: expected each >= 1. Fix: data.shots=10"
            )
        self.train_tasks, self.eval_tasks, self.shots, self.seed = (
            train_tasks,
            eval_tasks,
            shots,
            seed,
        )
        self.tasks: dict[str, dict[str, torch.Tensor]] = {}

    def setup(self, stage: str) -> None:
        if self.tasks:
            return
        generator = torch.Generator().manual_seed(self.seed)
        self.tasks = {
            "train": sinusoid_tasks(self.train_tasks, self.shots, generator),
            "val": sinusoid_tasks(self.eval_tasks, self.shots, generator),
            "test": sinusoid_tasks(self.eval_tasks, self.shots, generator),
        }

    def train_dataloader(self) -> TensorBatches:
        seed = int(torch.initial_seed() % 2**31)
        return TensorBatches(self.tasks["train"], 1, shuffle=True, seed=seed)

    def val_dataloader(self) -> TensorBatches:
        return TensorBatches(self.tasks["val"], 1)

    def test_dataloader(self) -> TensorBatches:
        return TensorBatches(self.tasks["test"], 1)


def regressor(hidden: list[int]) -> nn.Sequential:
    """``1 -> hidden... -> 1`` with ReLU."""
    sizes = [1, *hidden, 1]
    layers: list[nn.Module] = []
    for a, b in itertools.pairwise(sizes):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def adapted_weights(
    net: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    steps: int,
    lr: float | Sequence[torch.Tensor],
    *,
    create_graph: bool = False,
) -> dict[str, torch.Tensor]:
    """``net``'s weights after ``steps`` of gradient descent on the MSE of ``(x, y)``.

    ``lr`` is one step size or one tensor per weight (Meta-SGD). With ``create_graph`` the
    result stays differentiable with respect to ``net``'s weights (and ``lr``) through every
    step: second-order MAML. ``net`` itself is not changed.

    >>> net = regressor([8])
    >>> x = torch.linspace(-1, 1, 5).unsqueeze(1)
    >>> before = nn.functional.mse_loss(net(x), 2 * x)
    >>> after = functional_call(net, adapted_weights(net, x, 2 * x, 20, 0.1), (x,))
    >>> bool(nn.functional.mse_loss(after, 2 * x) < before)
    True
    """
    weights: dict[str, torch.Tensor] = dict(net.named_parameters())
    rates: list[float | torch.Tensor] = [lr] * len(weights) if isinstance(lr, float) else list(lr)
    with torch.enable_grad():  # evaluation adapts too, inside Lightning's no_grad
        for _ in range(steps):
            loss = nn.functional.mse_loss(functional_call(net, weights, (x,)), y)
            grads = torch.autograd.grad(loss, list(weights.values()), create_graph=create_graph)
            weights = {
                name: w - rate * g
                for (name, w), g, rate in zip(weights.items(), grads, rates, strict=True)
            }
    return weights


def meta_optimization(
    *, inner_lr: float = 0.01, outer_lr: float = 1e-3, learn_inner_lr: bool = False
) -> Optimization:
    """What ``experiment=maml_sinusoid`` (and ``metasgd_sinusoid``) configure, for use without
    Hydra: SGD ``inner`` over ``fast``, Adam ``outer`` over ``net``, and with ``learn_inner_lr``
    Adam ``inner_lr`` over the learned step sizes.

    >>> list(meta_optimization(learn_inner_lr=True).optimizers)
    ['inner', 'outer', 'inner_lr']
    """
    optimizers = {
        "inner": OptimizerSpec(functools.partial(torch.optim.SGD, lr=inner_lr), ("fast",)),
        "outer": OptimizerSpec(functools.partial(torch.optim.Adam, lr=outer_lr), ("net",)),
    }
    if learn_inner_lr:
        optimizers["inner_lr"] = OptimizerSpec(
            functools.partial(torch.optim.Adam, lr=outer_lr), ("log_inner_lr",)
        )
    return Optimization(optimizers)


class SinusoidMetaLearner(ConfiguredModule):
    """Meta-learns an initialisation of a small regressor that adapts in ``inner_steps``.

    The named optimizers are ``inner`` (over ``fast``, the per-task copy) and ``outer`` (over
    ``net``). ``algorithm`` picks the outer direction: ``maml`` (second-order: the query loss
    back-propagated through the ``inner_steps`` steps of SGD at the inner optimizer's lr),
    ``fomaml`` (first-order MAML: the query loss's gradient at the adapted weights) or
    ``reptile`` (the adapted weights minus the initial ones). With ``maml`` and
    ``learn_inner_lr`` (Meta-SGD) every weight has its own step size (``log_inner_lr``, their
    logarithms), initialised to ``eval_lr`` and trained on the query loss by the optimizer that
    claims it; every optimizer but ``inner`` trains on the query loss.

    Validation adapts on each held-out task's support set (``inner_steps`` of SGD at ``eval_lr``,
    normally the inner optimizer's lr, or at the learned step sizes) and logs
    ``val/query_loss`` after adaptation (the objective) and ``val/query_loss_0`` before.
    Evaluation needs gradients: run it with ``trainer.inference_mode=false``.
    """

    def __init__(
        self,
        hidden: list[int] | None = None,
        inner_steps: int = 5,
        algorithm: MetaAlgorithm | str = MetaAlgorithm.fomaml,
        eval_lr: float = 0.01,
        learn_inner_lr: bool = False,
    ) -> None:
        super().__init__()
        self.algorithm = MetaAlgorithm(algorithm)
        if learn_inner_lr and self.algorithm is not MetaAlgorithm.maml:
            raise ConfigValueError(
                f"model.learn_inner_lr=true with model.algorithm={self.algorithm.value}: "
                "expected model.algorithm=maml (a learned step size gets its gradient through "
                "the inner loop). Fix: model.algorithm=maml, or model.learn_inner_lr=false"
            )
        if inner_steps < 1:
            raise ConfigValueError(
                f"model.inner_steps={inner_steps}: expected >= 1. Fix: model.inner_steps=5"
            )
        self.eval_lr = eval_lr
        self.net = regressor(list(hidden or [40, 40]))
        self.fast = copy.deepcopy(self.net)
        self.inner_steps = inner_steps
        # Logarithms: the step sizes stay positive, and an outer step changes them by a ratio.
        self.log_inner_lr = (
            nn.ParameterList(torch.full_like(p, math.log(eval_lr)) for p in self.net.parameters())
            if learn_inner_lr
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y: torch.Tensor = self.net(x)
        return y

    @staticmethod
    def _task(batch: Batch) -> tuple[torch.Tensor, ...]:
        keys = ("x_support", "y_support", "x_query", "y_query")
        return tuple(batch[k].squeeze(0) for k in keys)

    def _rates(self, lr: float) -> float | list[torch.Tensor]:
        return lr if self.log_inner_lr is None else [w.exp() for w in self.log_inner_lr]

    def training_step(self, batch: Batch, batch_idx: int) -> None:
        xs, ys, xq, yq = self._task(batch)
        if self.algorithm is MetaAlgorithm.maml:
            lr = float(self.opt("inner").optimizer.param_groups[0]["lr"])
            weights = adapted_weights(
                self.net, xs, ys, self.inner_steps, self._rates(lr), create_graph=True
            )
            query_loss = nn.functional.mse_loss(functional_call(self.net, weights, (xq,)), yq)
            self.log_interval_mean("train/query_loss", query_loss.detach(), prog_bar=True)
            self.train_on(query_loss, [n for n in self.optimizer_names if n != "inner"])
            return
        self.fast.load_state_dict(self.net.state_dict())
        for _ in range(self.inner_steps):
            with self.opt("inner") as inner:
                inner.backward(nn.functional.mse_loss(self.fast(xs), ys))
        query_loss = nn.functional.mse_loss(self.fast(xq), yq)
        self.log_interval_mean("train/query_loss", query_loss.detach(), prog_bar=True)
        if self.algorithm is MetaAlgorithm.fomaml:  # before "outer" freezes the fast weights
            directions = torch.autograd.grad(query_loss, list(self.fast.parameters()))
        with self.opt("outer") as outer:
            # A surrogate whose gradient with respect to ``net`` is the algorithm's direction.
            if self.algorithm is MetaAlgorithm.reptile:
                pairs = zip(self.net.parameters(), self.fast.parameters(), strict=True)
                terms = [0.5 * ((p - q.detach()) ** 2).sum() for p, q in pairs]
            else:
                steps = zip(self.net.parameters(), directions, strict=True)
                terms = [(p * g).sum() for p, g in steps]
            outer.backward(torch.stack(terms).sum())

    def _evaluate(self, batch: Batch, stage: str) -> None:
        xs, ys, xq, yq = self._task(batch)
        weights = adapted_weights(self.net, xs, ys, self.inner_steps, self._rates(self.eval_lr))
        with torch.no_grad():
            before = nn.functional.mse_loss(self.net(xq), yq)
            after = nn.functional.mse_loss(functional_call(self.net, weights, (xq,)), yq)
        self.log(f"{stage}/query_loss_0", before, sync_dist=True)
        self.log(f"{stage}/query_loss", after, prog_bar=True, sync_dist=True)

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self._evaluate(batch, "test")
