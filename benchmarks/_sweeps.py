"""What the sweep benchmarks share (``cv_sweep.py``, ``samplers.py``, ``pbt.py``): the example
app's sweep, two jobs at a time through joblib, writing under a folder of its own, timed; and
the study its sweeper left there."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import optuna

from lightning_args.sweep.storage import open_storage

ROOT = Path(__file__).resolve().parents[1]


def timed_sweep(root: Path, *overrides: str) -> float:
    """Seconds that ``train.py -m <overrides>`` took, two jobs at a time through joblib, with
    no test pass, everything under ``root`` (the sweep in ``root/sweep``). A failed sweep ends
    the benchmark with its command and the end of its error output."""
    command = [
        sys.executable,
        str(ROOT / "train.py"),
        "-m",
        *overrides,
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        "test=false",
        f"paths.output_root={root}",
        f"hydra.sweep.dir={root}/sweep",
    ]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"failed: {' '.join(command)}\n{done.stderr[-3000:]}")
    return time.perf_counter() - start


def study_of(root: Path) -> optuna.Study:
    """The (only) study of the Optuna sweep under ``root``."""
    storage = open_storage(str(root / "sweep" / "study.journal"))
    (name,) = optuna.get_all_study_names(storage)
    return optuna.load_study(study_name=name, storage=storage)
