"""Data set-up of a run with an empty cache against the next run's, with the cache filled.

Each measurement is a fresh process (as each run is): it imports torch and the DataModule, then
times ``DigitsDataModule(cache_dir=...).setup("fit")`` alone. "first run" starts from an empty
cache directory (scikit-learn is imported, the digits are loaded, split, scaled, then written to
the cache); "second run" finds the entry and reads it back (checksum verified). The two kinds
alternate ``--repeats`` times; the table shows medians. Target: the second run at least 10x
faster than the first.

    .venv/bin/python benchmarks/data_cache.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

PROBE = """
import json, sys, time
import torch
from lightning_args.demos import DigitsDataModule
dm = DigitsDataModule(cache_dir=sys.argv[1])
start = time.perf_counter()
dm.setup("fit")
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "train": len(dm.splits["train"]["label"])}))
"""


def setup_seconds(cache_dir: Path) -> float:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(cache_dir)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    result = json.loads(out.strip().splitlines()[-1])
    assert result["train"] == 1168, result
    return float(result["seconds"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    first, second = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats):
            cache = Path(tmp) / f"cache-{i}"
            first.append(setup_seconds(cache))  # empty: builds and writes the entry
            second.append(setup_seconds(cache))  # filled by the previous process
            shutil.rmtree(cache)
    cold, warm = statistics.median(first), statistics.median(second)
    print(f"{'data set-up of':<28}{'median s':>10}{'runs':>6}")
    print(f"{'first run (empty cache)':<28}{cold:>10.4f}{len(first):>6}")
    print(f"{'second run (cache filled)':<28}{warm:>10.4f}{len(second):>6}")
    ratio = cold / warm
    verdict = "PASS" if ratio >= 10 else "FAIL"
    print(f"\nsecond run {ratio:.1f}x faster (target: at least 10x): {verdict}")


if __name__ == "__main__":
    main()
