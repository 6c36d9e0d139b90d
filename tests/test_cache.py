"""The data-set cache: one build for many concurrent users, corruption detected, keys apart."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from lightning_args.demos import DigitsDataModule
from lightning_args.run.cache import cache_key, cached
from tests.helpers import start_app

BUILDER = """
import contextlib, json, os, sys, time, torch
import lightning_args.run.cache
from lightning_args.run.cache import cached

cache_dir, log, lock = sys.argv[1], sys.argv[2], sys.argv[3] == "lock"
if not lock:  # the control: the same processes without the builders' lock
    lightning_args.run.cache._locked = lambda path: contextlib.nullcontext()

def write(line):
    with open(log, "a") as f:  # one short append per line: lines never interleave
        f.write(line + "\\n")

def build():
    write(f"build {os.getpid()} {time.time()}")
    time.sleep(1.0)  # the others ask for the entry meanwhile (the test checks that they did)
    value = {"x": torch.arange(1000), "meta": {"n": 1000}}
    write(f"built {os.getpid()} {time.time()}")
    return value

print("ready", flush=True)
sys.stdin.readline()  # the start signal, given to every process at once
write(f"want {os.getpid()} {time.time()}")
value = cached(build, key={"kind": "slow"}, cache_dir=cache_dir)
print(json.dumps({"sum": int(value["x"].sum()), "n": value["meta"]["n"]}), flush=True)
"""


def build_together(tmp_path: Path, *, lock: bool, processes: int = 4) -> dict[str, list[float]]:
    """Start ``processes`` processes that ask the cache for one entry at the same moment (each
    waits, imports done, for a start signal sent to all at once); the times each logged, by
    event (``want``, ``build``, ``built``)."""
    script, log = tmp_path / "builder.py", tmp_path / "builds.log"
    script.write_text(BUILDER)
    procs, signals, outputs = [], [], []
    for _ in range(processes):
        child_in, signal = os.pipe()
        output, child_out = os.pipe()
        with os.fdopen(child_in, "rb") as stdin, os.fdopen(child_out, "wb") as stdout:
            procs.append(
                start_app(
                    str(tmp_path / "cache"),
                    str(log),
                    "lock" if lock else "no-lock",
                    cwd=tmp_path,
                    script=script,
                    stdin=stdin,
                    stdout=stdout,
                )
            )
        signals.append(os.fdopen(signal, "wb"))
        outputs.append(os.fdopen(output, "rb"))
    try:
        assert [out.readline() for out in outputs] == [b"ready\n"] * processes
        for go in signals:  # the barrier: nobody asks before everybody is ready
            go.write(b"go\n")
        for go in signals:
            go.flush()
        results = [json.loads(out.readline() or "null") for out in outputs]
        assert [p.wait(timeout=120) for p in procs] == [0] * processes
    finally:
        for stream in (*signals, *outputs):
            stream.close()
        for proc in procs:
            proc.kill()
    assert results == [{"sum": 499500, "n": 1000}] * processes  # every process got the value
    events: dict[str, list[float]] = {"want": [], "build": [], "built": []}
    for line in log.read_text().splitlines():
        event, _, when = line.split()
        events[event].append(float(when))
    assert len(events["want"]) == processes
    return events


@pytest.mark.slow
def test_concurrent_processes_build_an_entry_once_and_all_read_it(tmp_path: Path) -> None:
    events = build_together(tmp_path, lock=True)
    assert len(events["build"]) == 1  # one builder, three readers
    # Contention happened: every process asked while the one build was still running.
    assert max(events["want"]) < events["built"][0], events
    (entry,) = [p for p in (tmp_path / "cache").glob("data-*") if p.is_dir()]
    assert sorted(p.name for p in entry.iterdir()) == ["data.pt", "meta.json"]  # no temp files


@pytest.mark.slow
def test_control_without_the_lock_the_same_processes_build_it_several_times(
    tmp_path: Path,
) -> None:
    events = build_together(tmp_path, lock=False)
    assert max(events["want"]) < min(events["built"]), events  # the same contention
    assert len(events["build"]) > 1  # so the test above can fail


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
