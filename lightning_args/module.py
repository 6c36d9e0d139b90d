"""``ConfiguredModule``: a LightningModule whose optimizer and scheduler come from config."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl

from lightning_args.errors import ConfigValueError
from lightning_args.optim import Optimization


class ConfiguredModule(pl.LightningModule):
    """A LightningModule that takes its optimizer and scheduler from the ``optimizer`` and
    ``scheduler`` config groups, so it writes no ``configure_optimizers``.

    :func:`lightning_args.build` hands the optimization over after instantiating the module;
    outside of it, call :meth:`set_optimization` yourself.

    Example:
        >>> import torch
        >>> from functools import partial
        >>> from lightning_args import ConfiguredModule
        >>> from lightning_args.optim import Optimization
        >>> class Tiny(ConfiguredModule):
        ...     def __init__(self) -> None:
        ...         super().__init__()
        ...         self.layer = torch.nn.Linear(2, 1)
        >>> module = Tiny()
        >>> module.set_optimization(Optimization(optimizer=partial(torch.optim.SGD, lr=0.1)))
        >>> type(module.configure_optimizers()["optimizer"]).__name__
        'SGD'
    """

    def __init__(self) -> None:
        super().__init__()
        self._optimization: Optimization | None = None

    def set_optimization(self, optimization: Optimization) -> None:
        """Use ``optimization`` in :meth:`configure_optimizers`."""
        self._optimization = optimization

    def configure_optimizers(self) -> Any:
        """The optimizer (and scheduler) built from config over the trainable parameters."""
        if self._optimization is None:
            raise ConfigValueError(
                f"{type(self).__name__} has no optimizer: the config has 'optimizer: null'. "
                "Fix: choose one, e.g. optimizer=adamw"
            )
        return self._optimization.configure(self)
