"""Where the suite's wall time goes, per worker (a pytest plugin, loaded by conftest.py).

With ``LIGHTNING_ARGS_TEST_TIMELINE=FILE`` every test appends one line to ``FILE`` when it ends:
the worker, its start and end (seconds since the epoch) and its node id, tab-separated.
``python -m tests.timeline FILE`` then prints each worker's busy time, its idle tail (from its
last test to the end of the whole run) and its longest tests: what ``--durations`` cannot show.
"""

from __future__ import annotations

import os
import sys
import time
from collections import defaultdict
from collections.abc import Generator
from pathlib import Path

import pytest

ENV = "LIGHTNING_ARGS_TEST_TIMELINE"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, object, object]:
    path = os.environ.get(ENV)
    start = time.time()
    try:
        return (yield)
    finally:
        if path:
            worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
            with open(path, "a") as out:  # one short line: appends from workers do not mix
                out.write(f"{worker}\t{start:.3f}\t{time.time():.3f}\t{item.nodeid}\n")


def report(path: Path, longest: int = 8) -> str:
    rows = [line.split("\t") for line in path.read_text().splitlines() if line.count("\t") == 3]
    spans: dict[str, list[tuple[float, float, str]]] = defaultdict(list)
    for worker, start, end, nodeid in rows:
        spans[worker].append((float(start), float(end), nodeid))
    first = min(s for runs in spans.values() for s, _, _ in runs)
    last = max(e for runs in spans.values() for _, e, _ in runs)
    lines = [f"{len(rows)} tests, {last - first:.0f} s from the first start to the last end"]
    for worker, runs in sorted(spans.items()):
        busy = sum(e - s for s, e, _ in runs)
        tail = last - max(e for _, e, _ in runs)
        lines.append(
            f"{worker}: {len(runs)} tests, busy {busy:.0f} s, idle at the end {tail:.0f} s"
        )
        for s, e, nodeid in sorted(runs, key=lambda r: r[0] - r[1])[:longest]:
            lines.append(f"  {e - s:6.1f} s  at {s - first:5.0f} s  {nodeid}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(report(Path(sys.argv[1])))
