"""``compile.enabled=true``: the module's forward compiled by ``torch.compile``, in place.

``nn.Module.compile`` compiles the module's calls (``self(batch)``: its ``forward`` and hooks),
where a model's computation is. The step methods stay eager: compiling them too (what
``trainer.fit(torch.compile(module))`` does) traces ``self.log`` and the module's Python-side
bookkeeping, which recompiles for every new value until torch gives up at its recompile limit
(seen on the digits MLP: 40 s of compiling for a 5 s run). In place, the module keeps its class
and its weights' names: checkpoints have no ``_orig_mod.`` prefix, and load (``load_run``),
resume and fork without compiling.
"""

from __future__ import annotations

import lightning.pytorch as pl

from lightning_args.config.compile import CompileConfig


def for_training(module: pl.LightningModule, config: CompileConfig) -> pl.LightningModule:
    """``module``, its calls compiled as ``config`` says where it is enabled (in place).

    Example:
        >>> from lightning.pytorch.demos.boring_classes import BoringModel
        >>> from lightning_args._compat.torch import is_compiled
        >>> module = for_training(BoringModel(), CompileConfig(enabled=True))
        >>> is_compiled(module), list(module.state_dict())
        (True, ['layer.weight', 'layer.bias'])
    """
    if config.enabled:
        module.compile(mode=config.mode, dynamic=config.dynamic, fullgraph=config.fullgraph)
    return module


__all__ = ["for_training"]
