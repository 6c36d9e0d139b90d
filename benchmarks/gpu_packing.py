"""Trials per hour of a fixed sweep with k trials per GPU (``launcher=gpus``), on one GPU.

The sweep: the digits CNN, ``--trials`` trials (16) of ``--epochs`` epochs (10), TPE with seed
0, no pruner (so that every k trains the same number of epochs), no test pass; run once for each
k of ``--ks`` (1, 2, 4, 8) while the time left (``--budget-s``) allows another. For each: wall
time, trials per hour, the best val/acc, and the GPU's mean utilisation and peak memory, read
from ``nvidia-smi`` once a second. Target (#15): k=4 at least 3x the trials per hour of k=1, at
an equal best value (within 0.01).

    .venv/bin/python benchmarks/gpu_packing.py            # on a machine with a GPU
    .venv/bin/python benchmarks/gpu_packing.py --ks 1,4 --trials 8

Without a GPU it says so and measures nothing.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from _sweeps import ROOT, study_of


@dataclass
class GpuUse:
    """``nvidia-smi``'s readings of one device, once a second, while a sweep runs."""

    device: str
    busy: list[float] = field(default_factory=list)
    memory_mib: list[float] = field(default_factory=list)
    _done: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> GpuUse:
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    def _read(self) -> None:
        query = ["nvidia-smi", "-i", self.device, "--query-gpu=utilization.gpu,memory.used"]
        while not self._done.wait(1.0):
            try:
                line = subprocess.run(
                    [*query, "--format=csv,noheader,nounits"],
                    capture_output=True,
                    text=True,
                    timeout=5,
                ).stdout.strip()
                busy, memory = (float(v) for v in line.split(","))
            except (OSError, ValueError, subprocess.SubprocessError):
                continue  # no nvidia-smi, or a reading it could not give: left out
            self.busy.append(busy)
            self.memory_mib.append(memory)


@dataclass
class Packed:
    k: int
    wall_s: float
    trials: int
    best: float | None
    busy: float | None
    peak_mib: float | None

    @property
    def per_hour(self) -> float:
        return self.trials / self.wall_s * 3600


def packed_sweep(
    root: Path, k: int, trials: int, epochs: int, device: str, trainer: str = "gpu"
) -> Packed:
    """The sweep with ``k`` trials on ``device``; everything under ``root``. (``trainer=cpu``
    over a fake device checks this script on a machine without a GPU.)"""
    command = [
        sys.executable,
        str(ROOT / "train.py"),
        "-m",
        "+sweep=optuna",
        "model=cnn",
        f"trainer={trainer}",
        f"trainer.max_epochs={epochs}",
        "launcher=gpus",
        f"hydra.launcher.devices=[{device}]",
        f"hydra.launcher.trials_per_device={k}",
        f"hydra.launcher.lock_dir={root}/locks",
        "hydra/sweeper/pruner=none",
        f"hydra.sweeper.n_trials={trials}",
        "hydra.sweeper.sampler.seed=0",
        "test=false",
        f"paths.output_root={root}",
        f"hydra.sweep.dir={root}/sweep",
    ]
    with GpuUse(device) as use:
        start = time.perf_counter()
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
        wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"failed: {' '.join(command)}\n{done.stderr[-3000:]}")
    study = study_of(root)
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    best = max((t.value for t in complete if t.value is not None), default=None)
    return Packed(
        k=k,
        wall_s=wall,
        trials=len(complete),
        best=best,
        busy=statistics.mean(use.busy) if use.busy else None,
        peak_mib=max(use.memory_mib) if use.memory_mib else None,
    )


def report(results: list[Packed]) -> list[str]:
    """The table and the target's verdict, as lines."""
    widths = (3, 8, 6, 9, 7, 7, 9)
    header = ("k", "wall s", "trials", "trials/h", "best", "busy %", "peak MiB")
    lines = [" ".join(f"{h:>{w}}" for h, w in zip(header, widths, strict=True))]
    for r in results:
        cells = (
            str(r.k),
            f"{r.wall_s:.1f}",
            str(r.trials),
            f"{r.per_hour:.0f}",
            f"{r.best:.4f}" if r.best is not None else "-",
            f"{r.busy:.0f}" if r.busy is not None else "-",
            f"{r.peak_mib:.0f}" if r.peak_mib is not None else "-",
        )
        lines.append(" ".join(f"{c:>{w}}" for c, w in zip(cells, widths, strict=True)))
    by_k = {r.k: r for r in results}
    if 1 in by_k and 4 in by_k:
        one, four = by_k[1], by_k[4]
        ratio = four.per_hour / one.per_hour
        equal = one.best is not None and four.best is not None and four.best >= one.best - 0.01
        verdict = "PASS" if ratio >= 3 and equal else "FAIL"
        lines.append(
            f"{verdict}: k=4 gives {ratio:.2f}x the trials per hour of k=1 (target 3x), best "
            f"{four.best} against {one.best} (equal within 0.01: {equal})"
        )
    else:
        lines.append("NOT MEASURED: k=1 and k=4 both needed for the target")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ks", default="1,2,4,8")
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--device", default="0")
    parser.add_argument("--budget-s", type=float, default=600.0)
    parser.add_argument("--cpu", action="store_true", help="trainer=cpu: check the script only")
    args = parser.parse_args()
    import torch

    if not torch.cuda.is_available() and not args.cpu:
        print("no GPU here (torch.cuda.is_available() is False): nothing measured")
        return
    print(f"{torch.cuda.get_device_name(0) if not args.cpu else 'CPU'}, torch {torch.__version__}")
    deadline = time.monotonic() + args.budget_s
    results: list[Packed] = []
    for k in (int(v) for v in args.ks.split(",")):
        # The next k takes about as long as the last one did, or less: stop where it cannot fit.
        if results and time.monotonic() + results[-1].wall_s > deadline:
            print(f"k={k}: left out, not enough of --budget-s left")
            break
        with tempfile.TemporaryDirectory(prefix=f"gpu-packing-k{k}-") as folder:
            trainer = "cpu" if args.cpu else "gpu"
            results.append(
                packed_sweep(Path(folder), k, args.trials, args.epochs, args.device, trainer)
            )
        print(f"k={k}: {results[-1].wall_s:.1f} s", flush=True)
    print("\n".join(report(results)))


if __name__ == "__main__":
    main()
