"""``ConfiguredModule``: a LightningModule whose optimizers come from config, by name."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import lightning.pytorch as pl
import torch

from lightning_args._compat import lightning as compat
from lightning_args.errors import CheckpointError, ConfigValueError
from lightning_args.instantiate.optim import Optimization, OptimizerSpec

STATE_KEY = "lightning_args_optimizers"


class NamedOptimizer:
    """One optimizer of a :class:`ConfiguredModule`: ``with module.opt(name) as o: ...``.

    Inside the block only this optimizer's parameters require gradients (when there are
    several); leaving it without an error steps the optimizer.
    """

    def __init__(self, module: ConfiguredModule, name: str, spec: OptimizerSpec) -> None:
        self.module = module
        self.name = name
        self.spec = spec
        self.pending = 0  # backward passes since the last step (gradient accumulation)
        self.steps = 0  # optimizer steps taken

    @property
    def optimizer(self) -> Any:
        """The (Lightning-wrapped) torch optimizer."""
        return self.module._lightning_optimizer(self.name)

    @property
    def due(self) -> bool:
        """Whether this optimizer trains on the current batch (its ``frequency``)."""
        return self.module.trainer.fit_loop.total_batch_idx % self.spec.frequency == 0

    def __enter__(self) -> NamedOptimizer:
        self.module._used_this_step = True
        if len(self.module._named) > 1:
            self.module.toggle_optimizer(self.optimizer)
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: Any) -> None:
        if len(self.module._named) > 1:
            self.module.untoggle_optimizer(self.optimizer)
        if kind is None:
            self.step()

    def backward(self, loss: torch.Tensor) -> None:
        """Back-propagate ``loss`` (scaled for accumulation) into this optimizer's parameters."""
        self.module.manual_backward(loss / self.spec.accumulate)
        self.pending += 1

    def step(self, *, partial: bool = False) -> None:
        """Clip, step, zero the gradients and step a per-step scheduler, once ``accumulate``
        backward passes are in (or any, with ``partial``: the end of an epoch)."""
        if self.pending < (1 if partial else self.spec.accumulate):
            return
        optimizer = self.optimizer
        if self.spec.gradient_clip_val is not None:
            self.module.clip_gradients(
                optimizer,
                gradient_clip_val=self.spec.gradient_clip_val,
                gradient_clip_algorithm=self.spec.gradient_clip_algorithm,
            )
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        self.pending = 0
        self.steps += 1
        sched = self.spec.scheduler
        if sched is not None and sched.interval == "step" and self.steps % sched.frequency == 0:
            scheduler = self.module._scheduler(self.name)
            if scheduler is not None:
                scheduler.step()


class ConfiguredModule(pl.LightningModule):
    """A LightningModule whose optimizers and schedulers come from config, by name.

    When ``training_step`` returns a loss, every configured optimizer that is due trains on it:
    with the ``optimizer`` and ``scheduler`` groups that is the one ``default`` optimizer, and
    several named ones give, e.g., a backbone and a head their own learning rates. Optimizers
    with losses of their own (``optimizers: {generator: ..., discriminator: ...}``) are used by
    name::

        def training_step(self, batch, batch_idx):
            with self.opt("discriminator") as d:
                d.backward(self.discriminator_loss(batch))
            if self.opt("generator").due:          # e.g. frequency: 5
                with self.opt("generator") as g:
                    g.backward(self.generator_loss(batch))

    Leaving the ``with`` block steps the optimizer (after clipping, once its ``accumulate``
    backward passes are in), zeroes its gradients and steps a per-step scheduler; per-epoch
    schedulers step at the end of each training epoch, after any half-filled accumulation
    window has stepped (as Lightning does). Optimizer and scheduler states are saved in
    checkpoints by name. Training uses Lightning's manual optimization; a subclass that
    overrides ``on_train_epoch_end``, ``on_save_checkpoint`` or ``on_load_checkpoint`` calls
    ``super()``.

    Example:
        >>> import torch
        >>> from functools import partial
        >>> from lightning_args import ConfiguredModule
        >>> from lightning_args.instantiate.optim import Optimization
        >>> class Tiny(ConfiguredModule):
        ...     def __init__(self) -> None:
        ...         super().__init__()
        ...         self.layer = torch.nn.Linear(2, 1)
        >>> module = Tiny()
        >>> module.set_optimization(Optimization.single(partial(torch.optim.SGD, lr=0.1)))
        >>> type(module.configure_optimizers()[0]["optimizer"]).__name__
        'SGD'
    """

    def __init__(self) -> None:
        super().__init__()
        self.automatic_optimization = False
        self._optimization: Optimization | None = None
        self._named: dict[str, NamedOptimizer] = {}
        self._restored_counters: dict[str, dict[str, int]] = {}
        self._used_this_step = False
        self._step_depth = 0
        self._running: dict[str, tuple[torch.Tensor, int]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "training_step" in cls.__dict__:
            cls.training_step = _training_on_returned_loss(cls.__dict__["training_step"])  # type: ignore[method-assign]

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

    @property
    def optimizer_names(self) -> list[str]:
        """The names of the configured optimizers, in config order."""
        return list(self._optimization.optimizers) if self._optimization else []

    def opt(self, name: str) -> NamedOptimizer:
        """The optimizer called ``name``: ``with self.opt(name) as o: o.backward(loss)``.

        ``self.opt(name).due`` says whether its ``frequency`` includes the current batch.
        """
        if name not in self._named:
            raise ConfigValueError(
                f"no optimizer named {name!r}: the config names "
                f"{', '.join(map(repr, self._named)) or 'none'}. Fix: use one of them, or add "
                f"optimizers.{name} to the config"
            )
        return self._named[name]

    def configure_optimizers(self) -> Any:
        """Every named optimizer (and scheduler) built from config, in config order."""
        if self._optimization is None:
            raise ConfigValueError(
                f"{type(self).__name__} has no optimizer: the config has 'optimizer: null' and "
                "no 'optimizers'. Fix: choose one, e.g. optimizer=adamw"
            )
        configured = self._optimization.configure(self)
        self._named = {
            name: NamedOptimizer(self, name, spec)
            for name, spec in self._optimization.optimizers.items()
        }
        for name, counters in self._restored_counters.items():
            if name in self._named:
                self._named[name].pending = counters["pending"]
                self._named[name].steps = counters["steps"]
        return configured

    def train_on(self, loss: torch.Tensor, names: Iterable[str] | None = None) -> None:
        """One backward pass of ``loss``, then step each optimizer in ``names`` that is due.

        ``names`` defaults to every optimizer: that is what returning a loss from
        ``training_step`` does. Optimizers that are named but not due on this batch have their
        gradients dropped, so that their next step sees only the batches they train on; those
        not named are left alone. Unlike ``with self.opt(name)``, no parameter is frozen, so one
        loss can train several optimizers at once (a network and its learned learning rates),
        and a step may call it several times (once per chunk of truncated BPTT).
        """
        self._used_this_step = True
        handles = list(self._named.values()) if names is None else [self.opt(n) for n in names]
        windows = {h.spec.accumulate for h in handles}
        if len(windows) > 1:
            raise ConfigValueError(
                f"one loss trains optimizers with different 'accumulate' "
                f"({', '.join(f'{h.name}: {h.spec.accumulate}' for h in handles)}): expected "
                "one value. Fix: give them the same accumulate, or train each with "
                "`with self.opt(name) as o: o.backward(loss)`"
            )
        self.manual_backward(loss / (windows.pop() if windows else 1))
        for handle in handles:
            if handle.due:
                handle.pending += 1
                handle.step()
            else:
                handle.optimizer.zero_grad(set_to_none=True)

    def _lightning_optimizer(self, name: str) -> Any:
        optimizers = self.optimizers(use_pl_optimizer=True)
        if not isinstance(optimizers, list):
            return optimizers
        return optimizers[list(self._named).index(name)]

    def _scheduler(self, name: str) -> Any:
        configs = self.trainer.lr_scheduler_configs
        index = list(self._named).index(name)
        owner = self.trainer.optimizers[index]
        return next((c.scheduler for c in configs if c.scheduler.optimizer is owner), None)

    def on_train_epoch_end(self) -> None:
        # As Lightning does with accumulate_grad_batches, an epoch's last gradients are not
        # carried into the next epoch (nor lost in an end-of-epoch checkpoint): step them now.
        for handle in self._named.values():
            handle.step(partial=True)
        for name, handle in self._named.items():
            sched = handle.spec.scheduler
            scheduler = self._scheduler(name)
            if scheduler is None or sched is None or sched.interval != "epoch":
                continue
            if sched.monitor is None:
                scheduler.step()
                continue
            metrics = self.trainer.callback_metrics
            if sched.monitor not in metrics:
                raise ConfigValueError(
                    f"scheduler monitor {sched.monitor!r} of optimizer {name!r} was not logged "
                    f"this epoch; logged: {', '.join(sorted(metrics)) or 'none'}. Fix: set the "
                    "scheduler's monitor to one of them"
                )
            scheduler.step(metrics[sched.monitor])

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[STATE_KEY] = {
            "names": list(self._named),
            "scheduled": [n for n, h in self._named.items() if h.spec.scheduler is not None],
            "counters": {
                n: {"pending": h.pending, "steps": h.steps} for n, h in self._named.items()
            },
            # log_interval_mean's sums of a logging interval that a checkpoint cuts in two
            "running": {n: (t.detach().cpu(), c) for n, (t, c) in self._running.items()},
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        saved = checkpoint.get(STATE_KEY)
        if saved is None:
            return
        self._running = {n: (t, int(c)) for n, (t, c) in saved.get("running", {}).items()}
        if self._optimization is None:
            return
        names, current = list(saved["names"]), self.optimizer_names
        if sorted(names) != sorted(current):
            raise CheckpointError(
                f"the checkpoint's optimizers are {names}, the config's are {current}: "
                "expected the same names. Fix: resume with the config the run was trained with"
            )
        # Lightning restores optimizer and scheduler states by position: reorder them by name.
        if "optimizer_states" in checkpoint:
            states = checkpoint["optimizer_states"]
            checkpoint["optimizer_states"] = [states[names.index(n)] for n in current]
        scheduled = list(saved.get("scheduled", []))
        if checkpoint.get("lr_schedulers") and scheduled:
            states = checkpoint["lr_schedulers"]
            checkpoint["lr_schedulers"] = [
                states[scheduled.index(n)] for n in current if n in scheduled
            ]
        self._restored_counters = dict(saved["counters"])

    def log_interval_mean(self, name: str, value: torch.Tensor, *, prog_bar: bool = False) -> None:
        """Log the mean of a training-step value over each logging interval, cheaply.

        ``self.log`` costs about 0.6 ms per call in Lightning's result collection
        (``benchmarks/step_overhead.py``): as much as a whole step of a small model. This keeps a
        running sum on the value's device (one addition per step) and calls ``self.log`` only on
        the steps Lightning writes its loggers, every ``trainer.log_every_n_steps`` batches; the
        value logged is the mean since the previous one.
        """
        total, count = self._running.get(name, (value.detach(), 0))
        total = value.detach() if count == 0 else total + value.detach()
        count += 1
        every = compat.log_every_n_steps(self.trainer)
        if (self.trainer.fit_loop.total_batch_idx + 1) % every == 0:
            self.log(name, total / count, prog_bar=prog_bar, on_step=True, on_epoch=False)
            count = 0
        self._running[name] = (total, count)


def _training_on_returned_loss(step: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a ``training_step`` so that a returned loss trains the configured optimizers.

    A step that used ``self.opt(...)`` itself is left alone; nested calls through ``super()``
    count once.
    """

    @functools.wraps(step)
    def training_step(self: ConfiguredModule, *args: Any, **kwargs: Any) -> Any:
        outer = self._step_depth == 0
        if outer:
            self._used_this_step = False
        self._step_depth += 1
        try:
            output = step(self, *args, **kwargs)
        finally:
            self._step_depth -= 1
        if outer and not self._used_this_step and self._named:
            loss = output.get("loss") if isinstance(output, Mapping) else output
            if isinstance(loss, torch.Tensor):
                self.train_on(loss)
        return output

    return training_step
