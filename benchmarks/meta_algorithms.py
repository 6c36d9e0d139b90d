"""Second-order MAML, first-order MAML, Reptile and Meta-SGD on sinusoids: quality and cost.

Each algorithm meta-trains the demo's 1-40-40-1 regressor (``SinusoidMetaLearner``, inner SGD
lr 0.01 for 5 steps, outer Adam lr 1e-3) on ``--tasks`` generated tasks for ``--epochs`` epochs,
once per seed, in one process on one torch thread. Printed side by side: the query MSE after 5
adaptation steps on 50 unseen tasks (Meta-SGD adapts with its learned step sizes, the others at
lr 0.01), the same from random initialisations, and milliseconds per meta-step (fit time over
outer-optimizer steps), with each median's ratio to first-order MAML. A report: it exits 0.

    python benchmarks/meta_algorithms.py [--tasks 1500] [--epochs 2] [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import lightning.pytorch as pl
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

VARIANTS = {  # name -> (algorithm, learn_inner_lr)
    "maml": ("maml", False),
    "fomaml": ("fomaml", False),
    "reptile": ("reptile", False),
    "metasgd": ("maml", True),
}


def query_loss(
    net: nn.Module, tasks: dict[str, torch.Tensor], lr: float | list[torch.Tensor]
) -> float:
    losses = []
    for i in range(len(tasks["x_support"])):
        weights = adapted_weights(net, tasks["x_support"][i], tasks["y_support"][i], 5, lr)
        with torch.no_grad():
            predicted = functional_call(net, weights, (tasks["x_query"][i],))
            losses.append(nn.functional.mse_loss(predicted, tasks["y_query"][i]))
    return float(torch.stack(losses).mean())


def meta_train(variant: str, seed: int, tasks: int, epochs: int, root: Path) -> tuple[float, float]:
    """(query loss on unseen tasks, ms per meta-step)."""
    algorithm, learned = VARIANTS[variant]
    pl.seed_everything(seed, verbose=False)
    learner = SinusoidMetaLearner(algorithm=algorithm, eval_lr=0.01, learn_inner_lr=learned)
    learner.set_optimization(meta_optimization(learn_inner_lr=learned))
    trainer = pl.Trainer(
        max_epochs=epochs,
        inference_mode=False,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=root,
    )
    data = SinusoidTasks(train_tasks=tasks, shots=10, seed=seed)
    start = time.perf_counter()
    trainer.fit(learner, datamodule=data)
    elapsed = time.perf_counter() - start
    unseen = sinusoid_tasks(50, 10, torch.Generator().manual_seed(1234))
    rates = (
        0.01 if learner.log_inner_lr is None else [w.detach().exp() for w in learner.log_inner_lr]
    )
    return query_loss(learner.net, unseen, rates), 1000 * elapsed / learner.opt("outer").steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1500)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    torch.set_num_threads(1)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    results: dict[str, list[tuple[float, float]]] = {v: [] for v in VARIANTS}
    with tempfile.TemporaryDirectory() as root:
        meta_train("fomaml", 0, 50, 1, Path(root))  # warm-up
        for seed in args.seeds:  # interleaved, so that machine load hits every variant alike
            for variant in VARIANTS:
                results[variant].append(
                    meta_train(variant, seed, args.tasks, args.epochs, Path(root))
                )
    unseen = sinusoid_tasks(50, 10, torch.Generator().manual_seed(1234))
    randoms = []
    for seed in args.seeds:
        torch.manual_seed(seed)
        randoms.append(query_loss(regressor([40, 40]), unseen, 0.01))
    base_loss = statistics.median(loss for loss, _ in results["fomaml"])
    base_ms = statistics.median(ms for _, ms in results["fomaml"])
    print(f"{args.tasks} tasks x {args.epochs} epochs, seeds {args.seeds}; medians (min-max)")
    print(f"{'variant':<10} {'query MSE':>22} {'ratio':>6} {'ms/meta-step':>20} {'ratio':>6}")
    for variant, rows in results.items():
        losses, times = [loss for loss, _ in rows], [ms for _, ms in rows]
        loss, ms = statistics.median(losses), statistics.median(times)
        print(
            f"{variant:<10} {loss:>8.3f} ({min(losses):.3f}-{max(losses):.3f}) "
            f"{loss / base_loss:>6.2f} {ms:>7.2f} ({min(times):.2f}-{max(times):.2f}) "
            f"{ms / base_ms:>6.2f}"
        )
    low, high = min(randoms), max(randoms)
    print(f"{'random':<10} {statistics.median(randoms):>8.3f} ({low:.3f}-{high:.3f})")


if __name__ == "__main__":
    main()
