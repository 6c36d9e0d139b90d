"""``ConfiguredModule``: a LightningModule whose optimizer and scheduler come from config."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import torch

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
        self._running: dict[str, tuple[torch.Tensor, int]] = {}

    def __setattr__(self, name: str, value: Any) -> None:
        # Lightning sets ``_current_fx_name`` around every hook call, ~46 times per training
        # step, and nn.Module.__setattr__ checks parameters, buffers and submodules each time.
        # It is always a plain string or None, so it can skip those checks.
        if name == "_current_fx_name":
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    def set_optimization(self, optimization: Optimization) -> None:
        """Use ``optimization`` in :meth:`configure_optimizers`."""
        self._optimization = optimization

    def log_interval_mean(self, name: str, value: torch.Tensor, *, prog_bar: bool = False) -> None:
        """Log the mean of a training-step value over each logging interval, cheaply.

        ``self.log`` costs about 0.6 ms per call in Lightning's result collection
        (``benchmarks/step_overhead.py``): as much as a whole step of a small model. This keeps a
        running sum on the value's device (one addition per step) and calls ``self.log`` only on
        the steps Lightning writes its loggers, every ``trainer.log_every_n_steps``; the value
        logged is the mean since the previous one.
        """
        total, count = self._running.get(name, (value.detach(), 0))
        total = value.detach() if count == 0 else total + value.detach()
        count += 1
        if (self.global_step + 1) % self.trainer.log_every_n_steps == 0:  # type: ignore[attr-defined]
            self.log(name, total / count, prog_bar=prog_bar, on_step=True, on_epoch=False)
            count = 0
        self._running[name] = (total, count)

    def configure_optimizers(self) -> Any:
        """The optimizer (and scheduler) built from config over the trainable parameters."""
        if self._optimization is None:
            raise ConfigValueError(
                f"{type(self).__name__} has no optimizer: the config has 'optimizer: null'. "
                "Fix: choose one, e.g. optimizer=adamw"
            )
        return self._optimization.configure(self)
