"""The package's layout (#18): a small tree, the public API, and the old module paths."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator

import pytest
from hydra.utils import get_object

import lightning_args
from lightning_args._util.aliases import OLD_MODULES, OldModule, OldModuleFinder
from tests.helpers import REPO

MAX_ENTRIES = 12  # the acceptance of #18: besides __init__.py and py.typed


def test_the_tree_has_a_dozen_entries_at_most() -> None:
    entries = sorted(
        p.name
        for p in (REPO / "lightning_args").iterdir()
        if p.name not in {"__init__.py", "py.typed", "__pycache__"}
    )
    assert len(entries) <= MAX_ENTRIES, entries


@pytest.mark.parametrize("name", lightning_args.__all__)
def test_every_public_name_imports(name: str) -> None:
    assert getattr(lightning_args, name) is not None
    exec(f"from lightning_args import {name}", {})


@pytest.mark.parametrize("old", sorted(OLD_MODULES))
def test_every_old_module_path_still_imports(old: str) -> None:
    module = importlib.import_module(old)
    assert isinstance(module, OldModule)
    homes = [importlib.import_module(home) for home in OLD_MODULES[old]]
    public = [n for home in homes for n in vars(home) if not n.startswith("_")]
    assert public, f"{old} forwards to modules with no public names"
    for name in public:
        assert getattr(module, name) is next(getattr(h, name) for h in homes if hasattr(h, name))
    with pytest.raises(AttributeError, match="has no attribute 'no_such_name'"):
        module.no_such_name  # noqa: B018


@pytest.mark.parametrize(
    ("stored", "now"),
    [
        ("lightning_args.loggers.CSVLogger", "lightning_args.loggers.CSVLogger"),
        (
            "lightning_args.checkpoint.BestAndLastCheckpoint",
            "lightning_args.callbacks.checkpoint.BestAndLastCheckpoint",
        ),
        ("lightning_args.checkpoint.load_from_checkpoint", "lightning_args.load_from_checkpoint"),
        (
            "lightning_args.devices.OneDevicePerJob",
            "lightning_args.callbacks.devices.OneDevicePerJob",
        ),
        ("lightning_args.app.PreFlight", "lightning_args.run.preflight.PreFlight"),
        (
            "lightning_args.ownership.ClaimRunDirectory",
            "lightning_args.run.ownership.ClaimRunDirectory",
        ),
        ("lightning_args.metrics.accuracy", "lightning_args.modules.metrics.accuracy"),
        (
            "lightning_args.sweep.pruning.TrialReporter",
            "lightning_args.callbacks.pruning.TrialReporter",
        ),
    ],
)
def test_a_stored_target_finds_the_same_object_as_hydra_does(stored: str, now: str) -> None:
    """What ``instantiate`` of a config written by the flat layout builds (Hydra's own lookup)."""
    assert get_object(stored) is get_object(now)


def test_importing_an_old_module_leaves_the_function_of_its_name() -> None:
    import lightning_args.reproduce
    import lightning_args.resume  # the old module: Python would set the package's attribute

    assert callable(lightning_args.resume)
    assert callable(lightning_args.reproduce)
    assert lightning_args.resume.__module__ == "lightning_args.run.resume"


@pytest.fixture
def without_finder() -> Iterator[str]:
    """The control: the finder taken off ``sys.meta_path`` and one old module forgotten."""
    finders = [f for f in sys.meta_path if isinstance(f, OldModuleFinder)]
    old = "lightning_args.rng"
    saved = sys.modules.pop(old, None)
    for finder in finders:
        sys.meta_path.remove(finder)
    try:
        yield old
    finally:
        sys.meta_path.extend(finders)
        if saved is not None:
            sys.modules[old] = saved


def test_control_without_the_finder_an_old_path_is_gone(without_finder: str) -> None:
    with pytest.raises(ModuleNotFoundError, match=r"lightning_args\.rng"):
        importlib.import_module(without_finder)


def test_the_package_still_pickles_by_name() -> None:
    """submitit and joblib pickle a job's function with cloudpickle, which finds the package by
    name: a package object of another class (an earlier way of keeping ``resume`` a function)
    made every submitit and joblib sweep fail with ``cannot pickle 'Package' object``."""
    import cloudpickle

    assert cloudpickle.loads(cloudpickle.dumps(lightning_args)) is lightning_args
    assert cloudpickle.loads(cloudpickle.dumps(lightning_args.train)) is lightning_args.train
