"""Pre-flight: a run that cannot succeed is refused before anything heavy happens or a
directory is made (missing values, an output root that cannot be written, an accelerator this
machine lacks, a checkpoint that cannot be read)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from lightning_args.config.compile import compile_config
from lightning_args.errors import (
    AcceleratorError,
    CheckpointError,
    MissingValueError,
    OutputRootError,
    PreflightFailed,
)
from lightning_args.run.explain import explain


class PreFlight(Callback):
    """Hydra callback (in every lightning_args app's ``hydra.callbacks``, before the claim of
    the run directory): :func:`preflight` before Hydra creates a single run's directory, and the
    output root of a sweep before its first job.

    Hydra turns a callback's exceptions into warnings; a refusal leaves as
    :class:`~lightning_args.errors.PreflightFailed`, a ``SystemExit``, so the app stops.
    """

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._refuse(lambda: preflight(config), config)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        # The sweep's overrides are not applied yet (one may set a missing value), and jobs may
        # run elsewhere (a Slurm launcher): each job checks the rest itself, in train().
        self._refuse(lambda: _check_output_root(config), config)

    @staticmethod
    def _refuse(check: Callable[[], Any], config: DictConfig) -> None:
        try:
            check()
        except Exception as refused:  # Hydra would make any Exception a warning and go on
            raise PreflightFailed(explain(refused, config)) from None


def preflight(cfg: DictConfig) -> None:
    """Refuse a run that cannot succeed, before anything heavy happens or a directory is made.

    Every mandatory value is set (:func:`check_complete`); ``compile.mode`` is one of torch's;
    the output root can be written;
    ``trainer.accelerator`` exists on this machine (``trainer=gpu`` without a GPU suggests
    ``trainer=cpu``) with enough devices for ``trainer.devices``; ``ckpt_path`` names a readable
    checkpoint. Only the last two import torch, and only when asked for a GPU or a checkpoint.
    """
    check_complete(cfg)
    compile_config(cfg)  # compile.mode is one of torch's
    _check_output_root(cfg)
    _check_accelerator(cfg)
    _check_checkpoint(OmegaConf.select(cfg, "ckpt_path", default=None))


def _check_output_root(cfg: DictConfig) -> None:
    """``paths.output_root`` (and a literal ``hydra.run.dir``) lie where this user can write."""
    targets = [("paths.output_root", OmegaConf.select(cfg, "paths.output_root", default=None))]
    run = OmegaConf.select(cfg, "hydra.run", default=None)
    if run is not None:
        # Resolving hydra.run.dir would claim a directory (lightning_args.unique_dir): only a
        # literal one is checked here; an interpolated one lies under the output root.
        raw = OmegaConf.to_container(run, resolve=False)
        if isinstance(raw, dict) and "${" not in str(raw.get("dir", "${")):
            targets.append(("hydra.run.dir", raw["dir"]))
    for key, value in targets:
        if value:
            _check_writable(key, str(value))


def _check_writable(key: str, value: str) -> None:
    path = Path(value).absolute()
    existing = next(p for p in (path, *path.parents) if p.exists())
    fix = f"Fix: {key}=<a directory you can write>, e.g. {key}=$HOME/outputs"
    if not existing.is_dir():
        raise OutputRootError(
            f"{key}={value!r}: {str(existing)!r} is a file, not a directory. Expected a directory "
            f"to create runs in.\n  {fix}"
        )
    read_only = bool(os.statvfs(existing).f_flag & os.ST_RDONLY)
    if read_only or not os.access(existing, os.W_OK | os.X_OK):
        why = "is on a read-only file system" if read_only else "is not writable by this user"
        raise OutputRootError(
            f"{key}={value!r}: {str(existing)!r} {why}. Expected a directory to create runs in."
            f"\n  {fix}"
        )


#: Accelerators that need a device torch must find; "auto" and "cpu" always work.
_GPU_ACCELERATORS = ("gpu", "cuda", "mps")


def _check_accelerator(cfg: DictConfig) -> None:
    """``trainer.accelerator`` and ``trainer.devices`` that this machine can provide."""
    accelerator = str(OmegaConf.select(cfg, "trainer.accelerator", default="auto")).lower()
    devices = OmegaConf.select(cfg, "trainer.devices", default="auto")
    if isinstance(devices, int) and (devices == 0 or devices < -1):
        raise AcceleratorError(
            f"trainer.devices={devices}: expected a number of devices >= 1, -1 (all of them) "
            "or auto.\n  Fix: trainer.devices=1"
        )
    if accelerator not in _GPU_ACCELERATORS:
        return  # cpu, auto; tpu and custom accelerators are Lightning's to judge
    found, kind = _gpus(accelerator)
    if found == 0:
        raise AcceleratorError(
            f"trainer.accelerator={accelerator!r}: this machine has no {kind} that torch can "
            "use (no device, no driver, or a CPU-only build of torch).\n"
            "  Fix: trainer=cpu (or trainer.accelerator=cpu), or run where a GPU is"
        )
    if isinstance(devices, int) and devices > found:
        raise AcceleratorError(
            f"trainer.devices={devices}: this machine has {found} {kind}"
            f"{'s' if found > 1 else ''} that torch can use.\n  Fix: trainer.devices={found}"
        )


def _gpus(accelerator: str) -> tuple[int, str]:
    """How many devices of ``accelerator`` torch sees here, and their kind in words."""
    import torch

    cuda = torch.cuda.device_count()  # NVML's count where it can: CUDA is not initialised
    mps = int(torch.backends.mps.is_available())
    if accelerator == "cuda":
        return cuda, "CUDA GPU"
    if accelerator == "mps":
        return mps, "Apple MPS device"
    return cuda or mps, "GPU"


_read_checkpoints: set[tuple[str, int, int]] = set()


def _check_checkpoint(ckpt_path: str | None) -> None:
    """Before anything is built: ``ckpt_path`` names a checkpoint that can be read."""
    if not ckpt_path:
        return
    if not Path(ckpt_path).is_file():
        raise CheckpointError(
            f"ckpt_path={ckpt_path!r}: no such file. Expected a checkpoint, e.g. a run's "
            "checkpoints/last.ckpt. Fix: correct the path, or drop ckpt_path to start afresh"
        )
    from lightning_args.run.checkpoint import read_checkpoint

    # Pre-flight runs twice for a single run (the callback, then train()): read the file once.
    stat = Path(ckpt_path).stat()
    seen = (str(Path(ckpt_path).resolve()), stat.st_size, stat.st_mtime_ns)
    if seen in _read_checkpoints:
        return
    read_checkpoint(ckpt_path, "cpu")  # a truncated or foreign file fails here, named
    _read_checkpoints.add(seen)


def check_complete(cfg: DictConfig) -> None:
    """Raise :class:`MissingValueError` naming every mandatory value (``???``) left unset.

    A missing config group (``model``) is reported with the options it could take.
    """
    missing = _missing_keys(cfg)
    if not missing:
        return
    lines, fixes = [], []
    for key in missing:
        options = _group_options(key)
        if options:
            lines.append(f"{key} (a config group: choose one of: {', '.join(options)})")
            fixes.append(f"{key}={options[0]}")
        else:
            lines.append(key)
            fixes.append(f"{key}=<value>")
    plural = len(missing) > 1
    raise MissingValueError(
        f"missing required value{'s' if plural else ''}: {'; '.join(lines)}.\n"
        f"  Fix: set {'them' if plural else 'it'} on the command line, e.g. {' '.join(fixes)}"
    )


def _missing_keys(cfg: DictConfig) -> list[str]:
    """The keys holding ``???``, read without resolving anything: resolving would run resolvers
    with side effects (``hydra.run.dir`` claims a directory) or fail before the job exists
    (``${hydra:runtime.output_dir}``). Hydra's own node is Hydra's to check."""

    def walk(node: Any, prefix: str) -> list[str]:
        if node == "???":
            return [prefix]
        if isinstance(node, dict):
            items: list[tuple[Any, Any]] = list(node.items())
        elif isinstance(node, list):
            items = list(enumerate(node))
        else:
            return []
        return [k for key, value in items for k in walk(value, f"{prefix}.{key}")]

    plain = OmegaConf.to_container(cfg, resolve=False, throw_on_missing=False)
    if isinstance(plain, dict):
        plain.pop("hydra", None)
    return sorted(key.removeprefix(".") for key in walk(plain, ""))


def _group_options(key: str) -> list[str]:
    """The options of config group ``key`` when a Hydra app is running, else ``[]``."""
    from hydra.core.global_hydra import GlobalHydra

    hydra = GlobalHydra.instance()
    if not hydra.is_initialized():
        return []
    return sorted(hydra.config_loader().get_group_options(key.replace(".", "/")))
