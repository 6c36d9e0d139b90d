"""The data-set cache: one build for many concurrent users, corruption detected, keys apart."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lightning_args.cache import cache_key, cached
from lightning_args.demos import DigitsDataModule

BUILDER = """
import json, os, sys, time, torch
from lightning_args.cache import cached

cache_dir, log = sys.argv[1], sys.argv[2]

def build():
    with open(log, "a") as f:
        f.write(f"build {os.getpid()}\\n")
    time.sleep(1.0)  # long enough for every process to want the entry at once
    return {"x": torch.arange(1000), "meta": {"n": 1000}}

value = cached(build, key={"kind": "slow"}, cache_dir=cache_dir)
print(json.dumps({"sum": int(value["x"].sum()), "n": value["meta"]["n"]}))
"""


def test_concurrent_processes_build_an_entry_once_and_all_read_it(tmp_path: Path) -> None:
    log = tmp_path / "builds.log"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", BUILDER, str(tmp_path / "cache"), str(log)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outputs = [json.loads(p.communicate(timeout=120)[0]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert outputs == [{"sum": 499500, "n": 1000}] * 4
    assert len(log.read_text().splitlines()) == 1  # one builder, three readers
    (entry,) = [p for p in (tmp_path / "cache").glob("data-*") if p.is_dir()]
    assert sorted(p.name for p in entry.iterdir()) == ["data.pt", "meta.json"]  # no temp files


def test_a_corrupted_entry_is_detected_and_rebuilt(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    calls = []

    def build() -> dict[str, torch.Tensor]:
        calls.append(1)
        return {"x": torch.ones(100)}

    cached(build, key={"a": 1}, cache_dir=tmp_path)
    (entry,) = [p for p in tmp_path.glob("data-*") if p.is_dir()]
    data = bytearray((entry / "data.pt").read_bytes())
    data[-20] ^= 0xFF  # one flipped byte
    (entry / "data.pt").write_bytes(bytes(data))

    value = cached(build, key={"a": 1}, cache_dir=tmp_path)
    assert torch.equal(value["x"], torch.ones(100))
    assert len(calls) == 2
    assert "corrupted (checksum mismatch): rebuilding it" in caplog.text
    assert cached(build, key={"a": 1}, cache_dir=tmp_path)["x"].sum() == 100
    assert len(calls) == 2  # the rebuilt entry is intact


def test_an_entry_without_meta_is_incomplete_and_rebuilt(tmp_path: Path) -> None:
    cached(lambda: {"x": torch.zeros(3)}, key={"a": 1}, cache_dir=tmp_path)
    (entry,) = [p for p in tmp_path.glob("data-*") if p.is_dir()]
    (entry / "meta.json").unlink()  # as if the builder died between its two renames
    value = cached(lambda: {"x": torch.ones(3)}, key={"a": 1}, cache_dir=tmp_path)
    assert torch.equal(value["x"], torch.ones(3))


def test_keys_that_differ_get_their_own_entries(tmp_path: Path) -> None:
    a = cached(lambda: {"x": torch.zeros(1)}, key={"scale": "unit"}, cache_dir=tmp_path)
    b = cached(lambda: {"x": torch.ones(1)}, key={"scale": "standard"}, cache_dir=tmp_path)
    assert (a["x"].item(), b["x"].item()) == (0.0, 1.0)
    assert len([p for p in tmp_path.glob("data-*") if p.is_dir()]) == 2
    assert cache_key({"scale": "unit"}) != cache_key({"scale": "standard"})


def test_digits_from_the_cache_equal_digits_prepared_directly(tmp_path: Path) -> None:
    direct = DigitsDataModule(scale="unit", split_seed=3)
    direct.setup("fit")
    for _ in range(2):  # the build, then the cached copy
        via_cache = DigitsDataModule(scale="unit", split_seed=3, cache_dir=str(tmp_path))
        via_cache.setup("fit")
        for split in ("train", "val", "test"):
            for key in ("image", "label"):
                assert torch.equal(direct.splits[split][key], via_cache.splits[split][key])
    (entry,) = [p for p in tmp_path.glob("digits-*") if p.is_dir()]
    meta = json.loads((entry / "meta.json").read_text())
    assert meta["key"]["split_seed"] == 3
    assert "batch_size" not in meta["key"]  # batching does not change the prepared data
