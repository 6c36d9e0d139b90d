"""The module paths of the flat layout (before 2026-12), still importable.

Run directories and checkpoints written before the layout move store ``_target_``\\ s such as
``lightning_args.loggers.CSVLogger``, ``lightning_args.checkpoint.BestAndLastCheckpoint`` or
``lightning_args.app.PreFlight`` (in ``.hydra/hydra.yaml``), and user code may import them.
Instead of a file per old module, :class:`OldModuleFinder` (on :data:`sys.meta_path` once
``lightning_args`` is imported) answers for each name of :data:`OLD_MODULES` with a small module
whose attributes are those of the module (or modules, where one was split) that now holds
them: the very same objects, so ``isinstance`` checks and the trust policy, which judges a
target by its real ``__module__``, see no difference.

An alias is read-only in effect: to monkeypatch, patch the new module.

>>> import lightning_args, lightning_args.checkpoint as old
>>> from lightning_args.callbacks.checkpoint import BestAndLastCheckpoint
>>> old.BestAndLastCheckpoint is BestAndLastCheckpoint
True
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import types
from collections.abc import Sequence
from typing import Any

#: Each module of the flat layout and the module(s) that hold its names now, searched in order.
OLD_MODULES: dict[str, tuple[str, ...]] = {
    "lightning_args.app": ("lightning_args.run.app", "lightning_args.run.preflight"),
    "lightning_args.atomic": ("lightning_args._util.atomic",),
    "lightning_args.builder": ("lightning_args.instantiate.builder",),
    "lightning_args.cache": ("lightning_args.run.cache",),
    "lightning_args.checkpoint": (
        "lightning_args.callbacks.checkpoint",
        "lightning_args.run.checkpoint",
    ),
    "lightning_args.confine": ("lightning_args.run.confine",),
    "lightning_args.data": ("lightning_args.modules.data",),
    "lightning_args.devices": ("lightning_args.callbacks.devices",),
    "lightning_args.hydra_errors": ("lightning_args.run.explain",),
    "lightning_args.hydra_patches": ("lightning_args._compat.hydra",),
    "lightning_args.interrupt": ("lightning_args.callbacks.interrupt",),
    "lightning_args.keyed": ("lightning_args.modules.keyed",),
    "lightning_args.lazy": ("lightning_args._util.lazy",),
    "lightning_args.metrics": ("lightning_args.modules.metrics",),
    "lightning_args.module": ("lightning_args.modules.configured",),
    "lightning_args.optim": ("lightning_args.instantiate.optim",),
    "lightning_args.ownership": ("lightning_args.run.ownership",),
    "lightning_args.record": ("lightning_args.run.record",),
    "lightning_args.reproduce": ("lightning_args.run.reproduce",),
    "lightning_args.requeue": ("lightning_args.callbacks.requeue",),
    "lightning_args.resume": ("lightning_args.run.resume",),
    "lightning_args.rng": ("lightning_args.callbacks.rng",),
    "lightning_args.runs": ("lightning_args.run.load",),
    "lightning_args.store": ("lightning_args.config.store",),
    "lightning_args.targets": ("lightning_args.instantiate.targets",),
    "lightning_args.terms": ("lightning_args.modules.terms",),
    "lightning_args.trust": ("lightning_args.run.trust",),
    "lightning_args.sweep._optuna_compat": ("lightning_args._compat.optuna",),
    "lightning_args.sweep.pruning": ("lightning_args.callbacks.pruning",),
}


class OldModule(types.ModuleType):
    """An old module name: each attribute is looked up in the modules that hold it now."""

    def __init__(self, name: str, homes: Sequence[str]) -> None:
        super().__init__(name, f"Moved to {', '.join(homes)}.")
        self.__homes = tuple(homes)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # importlib probes dunders; they are not forwarded
            raise AttributeError(name)
        for home in self.__homes:
            module = importlib.import_module(home)
            if hasattr(module, name):
                return getattr(module, name)
        raise AttributeError(
            f"module {self.__name__!r} (now {', '.join(self.__homes)}) has no attribute {name!r}"
        )

    def __dir__(self) -> list[str]:
        return sorted({n for home in self.__homes for n in dir(importlib.import_module(home))})


class OldModuleFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds the names of :data:`OLD_MODULES` (and only those) and loads them as
    :class:`OldModule`\\ s."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in OLD_MODULES:
            return None
        return importlib.machinery.ModuleSpec(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        return OldModule(spec.name, OLD_MODULES[spec.name])

    def exec_module(self, module: types.ModuleType) -> None:
        """Nothing to run: the attributes are found on access."""


def current_module(module: str, name: str) -> str:
    """The module that holds ``module``'s attribute ``name`` now: ``module`` itself unless it is
    a name of :data:`OLD_MODULES`.

    >>> current_module("lightning_args.metrics", "accuracy")
    'lightning_args.modules.metrics'
    """
    for home in OLD_MODULES.get(module, ()):
        if hasattr(importlib.import_module(home), name):
            return home
    return module


def install(package: str) -> None:
    """Put :class:`OldModuleFinder` on :data:`sys.meta_path` (once), and keep ``package``'s
    functions that share a name with an old module (``resume``, ``reproduce``) as they are.

    Importing ``lightning_args.resume`` for the first time would make Python set the package's
    attribute ``resume`` to that module; a module already in :data:`sys.modules` is returned
    as it is, so those few are made now. (The package's class is left alone: ``pickle``, which
    submitit and joblib use to send a job, must still find the module by name.)
    """
    if not any(isinstance(finder, OldModuleFinder) for finder in sys.meta_path):
        sys.meta_path.append(OldModuleFinder())
    module = sys.modules[package]
    for old, homes in OLD_MODULES.items():
        parent, _, name = old.rpartition(".")
        if parent == package and callable(vars(module).get(name)) and old not in sys.modules:
            sys.modules[old] = OldModule(old, homes)
