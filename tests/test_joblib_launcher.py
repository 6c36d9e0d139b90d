"""``launcher=joblib``: our joblib launcher sends what all jobs share to each worker once, from
a file checked by its digest before anything in it is unpickled."""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from hydra_plugins.lightning_args_joblib import _shipping
from hydra_plugins.lightning_args_joblib._shipping import Shipment, Shipments, execute
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
