"""The GPU checks of #15, in priority order, each bounded so that all fit in ``--budget-s``
(480 s): for the one short session a GPU machine is lent.

a. short ``trainer=gpu`` runs of the mlp, cnn and gan (3 epochs each): they complete, with
   their test metrics;
b. ``gpu_packing.py``: trials per hour with k = 1, 2, 4 (8 if time is left) trials on one GPU;
c. ``compile.enabled=true`` on the GPU: the digits MLP's test accuracy within 0.02 of eager;
d. SIGKILL mid-run and ``lightning-args resume``, deterministic (``trainer.deterministic=true``,
   fp32, ``CUBLAS_WORKSPACE_CONFIG=:4096:8``): the resumed run's metrics equal the
   uninterrupted run's.

Each part prints PASS/FAIL lines as it ends (a part that fails or runs out of time says so and
the next one starts); everything is also written to ``--out``/gpu_checks.txt.

    .venv/bin/python benchmarks/gpu_checks.py --out /tmp/gpu
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from _sweeps import ROOT
from gpu_packing import Packed, packed_sweep, report

_lines: list[str] = []
TRAINER = ["trainer=gpu"]  # --cpu: trainer=cpu, to check this script on a machine without a GPU


def say(line: str) -> None:
    print(line, flush=True)
    _lines.append(line)


def train(*overrides: str, timeout: float, env: dict[str, str] | None = None) -> dict[str, object]:
    """``train.py *overrides`` to its end; its run record."""
    run = Path(tempfile.mkdtemp(prefix="gpu-check-"))
    command = [sys.executable, str(ROOT / "train.py"), *overrides, f"hydra.run.dir={run}"]
    done = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(overrides)} failed:\n{done.stderr[-1500:]}")
    record: dict[str, object] = json.loads((run / "run.json").read_text())
    record["run_dir"] = str(run)
    return record


def metrics(record: dict[str, object]) -> dict[str, float]:
    found = record.get("metrics")
    return {str(k): float(v) for k, v in found.items()} if isinstance(found, dict) else {}


def part_a(left: float) -> None:
    for model in ("mlp", "cnn", "gan"):
        start = time.perf_counter()
        record = train(
            TRAINER[0], f"model={model}", "trainer.max_epochs=3", timeout=min(120, left / 3)
        )
        tests = {k: round(v, 4) for k, v in metrics(record).items() if k.startswith("test/")}
        say(f"PASS a {model}: {record['status']} in {time.perf_counter() - start:.0f} s, {tests}")


def part_b(left: float) -> None:
    results: list[Packed] = []
    deadline = time.monotonic() + left
    for k in (1, 2, 4, 8):
        if results and time.monotonic() + results[-1].wall_s > deadline:
            say(f"b: k={k} left out (time)")
            break
        with tempfile.TemporaryDirectory(prefix=f"gpu-packing-k{k}-") as folder:
            trainer = TRAINER[0].split("=")[1]
            results.append(packed_sweep(Path(folder), k, 16, 10, device="0", trainer=trainer))
        say(f"b: k={k} took {results[-1].wall_s:.0f} s")
    for line in report(results):
        say(f"b {line}")


def part_c(left: float) -> None:
    base = (TRAINER[0], "trainer.max_epochs=5")
    eager = metrics(train(*base, timeout=left / 2))["test/acc"]
    compiled = metrics(train(*base, "compile.enabled=true", timeout=left / 2))["test/acc"]
    verdict = "PASS" if abs(compiled - eager) <= 0.02 else "FAIL"
    say(f"{verdict} c: compiled test/acc {compiled:.4f}, eager {eager:.4f} (within 0.02)")


def part_d(left: float) -> None:
    env = {**os.environ, "CUBLAS_WORKSPACE_CONFIG": ":4096:8"}
    base = (
        TRAINER[0],
        "trainer.precision=32-true",
        "trainer.deterministic=true",
        "trainer.max_epochs=20",
    )
    full = train(*base, timeout=left / 3, env=env)
    run = Path(tempfile.mkdtemp(prefix="gpu-check-killed-"))
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "train.py"), *base, f"hydra.run.dir={run}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    last, seen = run / "checkpoints" / "last.ckpt", set[int]()
    deadline = time.monotonic() + left / 3
    while len(seen) < 3 and proc.poll() is None and time.monotonic() < deadline:
        if last.exists():
            seen.add(last.stat().st_mtime_ns)
        time.sleep(0.005)
    time.sleep(0.1)
    if proc.poll() is not None:
        raise RuntimeError("the run ended before it could be killed")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    resumed = subprocess.run(
        [sys.executable, "-m", "lightning_args.cli", "resume", str(run)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=left / 3,
    )
    if resumed.returncode != 0:
        raise RuntimeError(f"resume failed:\n{resumed.stderr[-1500:]}")
    after = metrics(json.loads((run / "run.json").read_text()))
    verdict = "PASS" if after == metrics(full) else "FAIL"
    say(f"{verdict} d: resumed metrics {after} against uninterrupted {metrics(full)}")


PARTS: list[tuple[str, Callable[[float], None], float]] = [
    ("a", part_a, 0.15),  # each part's share of the budget; what one leaves goes to the next
    ("b", part_b, 0.50),
    ("c", part_c, 0.15),
    ("d", part_d, 0.20),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("gpu-checks"))
    parser.add_argument("--budget-s", type=float, default=480.0)
    parser.add_argument("--cpu", action="store_true", help="trainer=cpu: check the script only")
    args = parser.parse_args()
    import torch

    if args.cpu:
        TRAINER[0] = "trainer=cpu"
    if not torch.cuda.is_available() and not args.cpu:
        say("no GPU here (torch.cuda.is_available() is False): nothing checked")
    else:
        name = "CPU (--cpu)" if args.cpu else torch.cuda.get_device_name(0)
        say(f"{name}, torch {torch.__version__}, CUDA {torch.version.cuda}")
        end = time.monotonic() + args.budget_s
        for name, part, _ in PARTS:
            later = sum(share for other, _, share in PARTS if other > name)  # kept for them
            left = (end - time.monotonic()) - later * args.budget_s
            start = time.perf_counter()
            try:
                part(max(30.0, left))
            except Exception as error:  # the next part still runs: the session is short
                say(f"FAIL {name}: {type(error).__name__}: {str(error)[-800:]}")
            say(f"({name} took {time.perf_counter() - start:.0f} s)")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu_checks.txt").write_text("\n".join(_lines) + "\n")


if __name__ == "__main__":
    main()
