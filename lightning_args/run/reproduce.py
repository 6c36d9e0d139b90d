"""Re-running a run from its directory, and checking that the result is the same.

the config stored in the run's checkpoint (resolved, seed included) -> a new run directory
-> train (a forked run: from the checkpoint it started from) -> compare its final metrics with
the original's record
"""

from __future__ import annotations

import math
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from lightning_args.run.record import RunRecord, git_info, record_of
from lightning_args.run.resume import last_checkpoint, log_to, saved_config


@dataclass
class Reproduction:
    """What :func:`reproduce` found."""

    run_dir: Path
    #: metric -> (original, reproduced) for every metric that differs.
    differences: dict[str, tuple[float | None, float | None]]
    #: Why the code may differ from the original's, empty when it cannot.
    warnings: list[str]

    @property
    def identical(self) -> bool:
        return not self.differences


def reproduce(run_dir: str | Path, out_dir: str | Path | None = None) -> Reproduction:
    """Train again from ``run_dir``'s saved config and seed; compare the final metrics.

    The new run goes to ``out_dir`` (default: ``<run_dir>-reproduced``, ``-1``... if taken).
    On CPU with a fixed seed, the same thread count and the same CPU kernels the metrics are
    equal; the warnings say when the code the original ran may not be today's (a dirty work
    tree then, or another commit now) and when torch's CPU kernels differ from the original's
    (run.json's ``cpu_kernels``; ``ATEN_CPU_CAPABILITY`` selects them).

    Example::

        result = lightning_args.reproduce("outputs/runs/2026-11-26_10-00-00")
        assert result.identical, result.differences
    """
    from lightning_args.config.run_dirs import unique_dir
    from lightning_args.run.app import train

    root = Path(run_dir).resolve()
    original = record_of(root)
    checkpoint = last_checkpoint(
        root, "its resolved config is stored there. Fix: re-run its command (run.json: command)"
    )
    target = Path(out_dir) if out_dir else Path(unique_dir(f"{root}-reproduced"))
    target.mkdir(parents=True, exist_ok=True)
    cfg, _ = saved_config(checkpoint, target)
    cfg.ckpt_path = _fork_start(cfg, root, target)
    cfg.overwrite = False  # the original's setting never moves a run out of the destination
    log_to(target)
    train(cfg)
    again = RunRecord.read(target)
    keys = sorted(set(original.metrics) | set(again.metrics))
    differences = {
        k: (original.metrics.get(k), again.metrics.get(k))
        for k in keys
        if not _same(original.metrics.get(k), again.metrics.get(k))
    }
    return Reproduction(target, differences, _code_warnings(original, again))


def _fork_start(cfg: DictConfig, root: Path, target: Path) -> str | None:
    """A forked run is reproduced from the checkpoint it started from (a copy of its
    ``checkpoints/fork.ckpt``, read as weights only; its parent may be gone by now), every
    other run from scratch."""
    from lightning_args.run.confine import inside
    from lightning_args.run.fork import FORK_CHECKPOINT

    start = root / "checkpoints" / FORK_CHECKPOINT
    if not OmegaConf.select(cfg, "fork.parent", default=None) or not start.is_file():
        return None
    copy = target / "checkpoints" / FORK_CHECKPOINT
    copy.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(inside(start, root, "the checkpoint the fork started from"), copy)
    return str(copy)


def _same(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return a == b or (math.isnan(a) and math.isnan(b))


def _code_warnings(original: RunRecord, again: RunRecord) -> list[str]:
    warnings = []
    if original.git is None:
        warnings.append("the original run recorded no git commit: its code is unknown")
    elif original.git.dirty:
        warnings.append(
            f"the original ran with uncommitted changes on top of {original.git.commit[:12]}"
        )
    now = again.git or git_info(Path.cwd())
    if original.git and now and now.commit != original.git.commit:
        warnings.append(f"the code is now at {now.commit[:12]}, not {original.git.commit[:12]}")
    if original.host and original.host != socket.gethostname():
        warnings.append(f"the original ran on {original.host}")
    here = again.cpu_kernels  # stamped by this process, which trained
    if isinstance(original.cpu_kernels, str) and here and original.cpu_kernels != here:
        warnings.append(
            f"the original ran torch's {original.cpu_kernels} CPU kernels, this run {here}: "
            "float results can differ in their last digits. Fix: reproduce with "
            f"ATEN_CPU_CAPABILITY={original.cpu_kernels.lower()} in the environment"
        )
    return warnings
