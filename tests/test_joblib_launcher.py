"""``launcher=joblib``: our joblib launcher sends what all jobs share to each worker once, from
a file checked by its digest before anything in it is unpickled."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import pickle
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from joblib import Parallel, delayed

from hydra_plugins.lightning_args_joblib import _preload, _shipping
from hydra_plugins.lightning_args_joblib._shipping import Shipment, Shipments, execute
from hydra_plugins.lightning_args_joblib.config import JoblibLauncherConfig
from hydra_plugins.lightning_args_joblib.lightning_args_joblib_launcher import (
    LightningArgsJoblibLauncher,
)
from lightning_args._compat import joblib as joblib_compat
from lightning_args._compat.hydra import joblib_parallel_settings
from lightning_args.errors import UntrustedPathError


class _Touches:
    """Unpickling it creates ``path``: what a hostile pickle could do instead."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> Any:
        return (Path.touch, (self.path,))


def _shipped(tmp_path: Path, data: bytes, digest_of: bytes) -> Shipment:
    path = tmp_path / "shared.pickle"
    path.write_bytes(data)
    return Shipment(str(path), hashlib.sha256(digest_of).hexdigest())


@pytest.fixture(autouse=True)
def _nothing_received() -> Any:
    _shipping._received.clear()
    yield
    _shipping._received.clear()


def test_a_shipment_changed_on_disk_is_refused_unread(tmp_path: Path) -> None:
    marker = tmp_path / "unpickled"
    hostile = pickle.dumps(_Touches(marker))
    shipment = _shipped(tmp_path, hostile, digest_of=b"what the sweeper wrote")
    with pytest.raises(UntrustedPathError, match="its SHA-256 differs"):
        execute(0, ["a=1"], shipment)
    assert not marker.exists()


def test_control_the_same_file_under_its_own_digest_is_unpickled(tmp_path: Path) -> None:
    """What the digest guards against: the same bytes, matching their digest, do run."""
    marker = tmp_path / "unpickled"
    hostile = pickle.dumps(_Touches(marker))
    with pytest.raises(TypeError):  # Path.touch returned None: not the four shared arguments
        execute(0, ["a=1"], _shipped(tmp_path, hostile, digest_of=hostile))
    assert marker.exists()


def test_one_shipment_per_task_function_in_a_private_file() -> None:
    launcher = SimpleNamespace(hydra_context=None, config={"x": 1})

    def task(cfg: Any) -> None:
        return None

    def other(cfg: Any) -> None:
        return None

    shipments = Shipments()
    first = shipments.of(launcher, task)
    assert shipments.of(launcher, task) is first
    second = shipments.of(launcher, other)
    assert second.digest != first.digest
    path = Path(first.path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700
    assert hashlib.sha256(path.read_bytes()).hexdigest() == first.digest


def _seen() -> tuple[int, bool]:
    time.sleep(0.2)  # each worker gets a call
    return os.getpid(), _PRELOADED in sys.modules


_PRELOADED = "colorsys"  # imported by neither a loky worker nor this test's functions


@pytest.mark.slow
@pytest.mark.parametrize(("preload", "imported"), [([_PRELOADED], True), ([], False)])
def test_the_jobs_run_in_the_workers_setup_started_with_their_imports(
    preload: list[str], imported: bool
) -> None:
    """The launches reuse the workers that ``setup`` started; ``preload`` is what they hold
    (the control: workers started without it have not imported the module)."""
    joblib_compat.release_workers(idle=True)  # fresh workers: none left by another test
    launcher = LightningArgsJoblibLauncher(**_settings(n_jobs=2))
    launcher.preload = preload
    launcher.setup(hydra_context=None, task_function=lambda cfg: None, config=None)
    if not preload:  # setup starts nothing: start the same workers by hand, importing nothing
        launcher.preloading = _preload.start(launcher, 2, [])
    assert launcher.preloading is not None
    launcher.preloading.join(timeout=120)
    started = set(launcher.preloading.pids)
    assert len(started) == 2
    try:
        settings = joblib_parallel_settings({**launcher.joblib, "n_jobs": 2})
        seen = Parallel(**settings)(delayed(_seen)() for _ in range(4))
    finally:
        joblib_compat.release_workers(idle=True)
    assert {pid for pid, _ in seen} <= started
    assert all(holds is imported for _, holds in seen)


def test_only_a_preloading_launcher_starts_workers_at_setup() -> None:
    launcher = LightningArgsJoblibLauncher(**_settings(n_jobs=2), preload=[])
    launcher.setup(hydra_context=None, task_function=lambda cfg: None, config=None)
    assert launcher.preloading is None
    assert JoblibLauncherConfig().preload == ["lightning.pytorch"]


def _settings(**changed: Any) -> dict[str, Any]:
    """The launcher's keywords as Hydra passes them: the config's fields, less its target."""
    config = JoblibLauncherConfig()
    fields = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
    del fields["_target_"], fields["preload"]
    return {**fields, **changed}


@pytest.mark.slow
def test_a_module_the_workers_cannot_import_is_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The jobs still run: each imports what it needs itself."""
    joblib_compat.release_workers(idle=True)
    launcher = LightningArgsJoblibLauncher(**_settings(n_jobs=2), preload=["no_such_module_here"])
    try:
        with caplog.at_level("WARNING"):
            launcher.setup(hydra_context=None, task_function=lambda cfg: None, config=None)
            assert launcher.preloading is not None
            launcher.preloading.join(timeout=120)
        settings = joblib_parallel_settings({**launcher.joblib, "n_jobs": 2})
        assert len(Parallel(**settings)(delayed(_seen)() for _ in range(2))) == 2
    finally:
        joblib_compat.release_workers(idle=True)
    (warning,) = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert "hydra.launcher.preload=['no_such_module_here']" in warning
    assert "ModuleNotFoundError" in warning
    assert "Fix: " in warning
