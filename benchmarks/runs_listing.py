"""``lightning-args runs`` over hundreds of run directories: how long listing takes.

One real run is trained first (``trainer.max_epochs=1``, in a temporary directory); its
``run.json`` and ``.hydra/config.yaml`` are then copied into ``--runs`` run directories with
varied values (learning rate, status, metrics), as a sweep or a busy week would leave them.
Each command runs as a fresh process (what a user types), ``--repeats`` times; the table shows
median seconds and the time per run. Also shown: ``python -c "import torch"`` alone, the cost
that listing avoids. Target: 500 runs listed (and filtered) in under 2 s.

    .venv/bin/python benchmarks/runs_listing.py [--runs 500] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_SECONDS = 2.0


def seconds(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - start


def make_runs(root: Path, n: int) -> None:
    template = root / "template"
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "train.py"),
            "trainer.max_epochs=1",
            f"hydra.run.dir={template}",
        ],
        check=True,
        capture_output=True,
        cwd=ROOT,
    )
    record = json.loads((template / "run.json").read_text())
    config = (template / ".hydra" / "config.yaml").read_text()
    for i in range(n):
        run = root / "runs" / f"2026-11-26_12-00-{i:04d}"
        (run / ".hydra").mkdir(parents=True)
        lr = 10 ** (-4 + 3 * i / n)
        status = "failed" if i % 10 == 0 else "completed"
        metrics = {k: v * (0.9 + 0.1 * (i % 7) / 7) for k, v in record["metrics"].items()}
        (run / "run.json").write_text(
            json.dumps({**record, "id": run.name, "status": status, "metrics": metrics})
        )
        (run / ".hydra" / "config.yaml").write_text(config.replace("lr: 0.001", f"lr: {lr:.6g}"))
    shutil.rmtree(template)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    cli = [sys.executable, "-m", "lightning_args.cli"]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_runs(root, args.runs)
        commands = {
            "runs (table)": [*cli, "runs", str(root)],
            "runs --format json": [*cli, "runs", str(root), "--format", "json"],
            "runs --status completed --sort test/acc": [
                *cli,
                "runs",
                str(root),
                "--status",
                "completed",
                "--sort",
                "test/acc",
                "--desc",
            ],
            "runs --where optimizer.lr=0.001": [
                *cli,
                "runs",
                str(root),
                "--where",
                "optimizer.lr=0.001",
            ],
            'python -c "import torch" (for scale)': [sys.executable, "-c", "import torch"],
        }
        times = {name: [seconds(c) for _ in range(args.repeats)] for name, c in commands.items()}
    print(f"{args.runs} run directories; medians of {args.repeats} fresh processes\n")
    print(f"{'command':<44}{'seconds':>9}{'ms/run':>9}")
    for name, values in times.items():
        median = statistics.median(values)
        per_run = "" if "torch" in name else f"{1000 * median / args.runs:>9.2f}"
        print(f"{name:<44}{median:>9.3f}{per_run}")
    worst = max(statistics.median(v) for k, v in times.items() if "torch" not in k)
    verdict = "PASS" if worst < TARGET_SECONDS else "FAIL"
    target = f"target < {TARGET_SECONDS} s"
    print(f"\nslowest listing {worst:.2f} s for {args.runs} runs ({target}): {verdict}")


if __name__ == "__main__":
    main()
