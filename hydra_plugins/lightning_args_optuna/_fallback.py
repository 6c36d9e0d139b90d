"""What a model-based sampler leaves out of its model, said before any job starts.

Optuna's GPSampler and CmaEsSampler, and optuna-integration's BoTorchSampler, model the
parameters that every trial has (their
"intersection search space"); CMA-ES also leaves out categorical ones. The parameters they leave
out are sampled independently, at random, by their fallback sampler: a space whose options
declare their own parameters (``model/encoder=choice(mlp,cnn)``) is such a case.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from omegaconf import DictConfig

from lightning_args.sweep.space import Param

GP = "optuna.samplers.GPSampler"
BOTORCH = "optuna_integration.BoTorchSampler"
CMAES = "optuna.samplers.CmaEsSampler"
_OPTION = {GP: "gp", BOTORCH: "botorch", CMAES: "cmaes"}


def left_out(node: Any, params: Sequence[Param], conditional: Sequence[str]) -> str | None:
    """Why some parameters are sampled at random by ``hydra.sweeper.sampler`` (``node``), or
    ``None``. ``conditional``: the parameters only some trials have.

    >>> from omegaconf import OmegaConf
    >>> from lightning_args.sweep.space import parse
    >>> params = parse(["lr=interval(0.1,1)", "act=choice(relu,tanh)"], where="x").params
    >>> said = left_out(OmegaConf.create({"_target_": CMAES}), params, [])
    >>> said.split(": ")[1]
    "act is sampled independently at random (Optuna's fallback). Fix"
    """
    target = str(node.get("_target_")) if isinstance(node, DictConfig) else None
    option = _OPTION.get(str(target))
    if option is None:
        return None
    names = list(conditional)
    if target == CMAES:
        categorical = [
            p.name for p in params if type(p.distribution).__name__ == "CategoricalDistribution"
        ]
        names = list(dict.fromkeys([*categorical, *names]))
    if not names:
        return None
    kind = "numeric parameters" if target == CMAES else "parameters"
    return (
        f"hydra/sweeper/sampler={option} models only the {kind} every trial has: "
        f"{', '.join(names)} {'is' if len(names) == 1 else 'are'} sampled independently at "
        "random (Optuna's fallback). Fix: hydra/sweeper/sampler=tpe models them all "
        "(multivariate, group)"
    )
