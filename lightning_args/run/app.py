"""The app entry: ``@lightning_args.main`` around ``hydra.main``, and :func:`train`, the lifecycle.

:func:`train` reads like the run it performs::

    check the config -> open the run record -> seed -> build -> fit -> test -> close the record

and returns the objective value, so any Hydra sweeper can optimise it.
"""

from __future__ import annotations

import functools
import logging
import os
import random
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from lightning_args._compat.hydra import (
    fast_help,
    flags_first,
    friendly_errors,
    full_error,
    shown_configs,
)
from lightning_args.config.store import register
from lightning_args.errors import (
    AcceleratorError,
    CheckpointError,
    ConfigValueError,
    MissingValueError,
    NonFiniteLossError,
    OutputRootError,
    PreflightFailed,
)
from lightning_args.run.confine import is_inside
from lightning_args.run.explain import explain
from lightning_args.run.ownership import check_reuse, claimed
from lightning_args.run.record import RECORD_NAME, RunRecord, RunStatus

R = TypeVar("R")
_log = logging.getLogger(__name__)


def main(
    config_path: str | None = "conf",
    config_name: str | None = "config",
    version_base: str | None = "1.3",
) -> Callable[[Callable[[DictConfig], R]], Callable[[], R | None]]:
    """``hydra.main`` with lightning_args' config groups registered and readable errors.

    Every failure prints one message of a few lines naming the key and value (or the file),
    what was expected and the fix, and exits with status 1: errors in the command line or the
    config (unknown key, wrong type, unknown option, missing value, unknown ``_target_``), a
    pre-flight refusal (see :class:`PreFlight`) and an exception of the job itself, from torch,
    Lightning, Hydra's instantiate, OmegaConf, Optuna, the file system or the task's own code
    (:func:`lightning_args.run.explain.explain`). ``HYDRA_FULL_ERROR=1`` shows the traceback.

    Example (``train.py``)::

        import lightning_args

        @lightning_args.main(config_path="conf", config_name="config")
        def main(cfg):
            return lightning_args.train(cfg)

        if __name__ == "__main__":
            main()
    """
    import hydra

    def decorator(task: Callable[[DictConfig], R]) -> Callable[[], R | None]:
        register()
        hydra_main = hydra.main(
            config_path=config_path, config_name=config_name, version_base=version_base
        )(task)

        @functools.wraps(task)
        def entry() -> R | None:
            sys.argv[:] = flags_first(sys.argv)
            with friendly_errors(), fast_help(), shown_configs():
                result: R | None = hydra_main()
            return result

        return entry

    return decorator


Objective = float | tuple[float, ...]


def train(cfg: DictConfig) -> Objective:
    """Run one training job from a composed config and return its objective value.

    Seeds everything, builds the module, DataModule and Trainer (:func:`lightning_args.build`),
    fits, tests the best checkpoint (unless ``test=false``) and keeps ``run.json`` in the run
    directory up to date. The objective is ``objective.metric`` at the best checkpoint; with
    ``objective.also`` (a multi-objective sweep) a tuple of it and those metrics' last values.

    Example (in a notebook, outside ``hydra.main``)::

        from hydra import compose, initialize
        with initialize(config_path="conf", version_base="1.3"):
            cfg = compose("config", overrides=["trainer=debug", "paths.run_dir=/tmp/run"])
        value = lightning_args.train(cfg)
    """
    preflight(cfg)
    from lightning.fabric.utilities.rank_zero import rank_zero_only

    run_dir = Path(cfg.paths.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    # One writer per run directory: rank 0 of a multi-process job writes for all ranks.
    if getattr(rank_zero_only, "rank", 0) != 0:
        return _run(cfg, run_dir, writer=False)
    check_reuse(
        run_dir,
        continuing=_continues(cfg, run_dir),
        # Absent from configs stored before the setting existed (a resumed old run).
        overwrite=bool(OmegaConf.select(cfg, "overwrite", default=False)),
    )
    with claimed(run_dir):
        return _run(cfg, run_dir, writer=True)


def _run(cfg: DictConfig, run_dir: Path, *, writer: bool) -> Objective:
    from lightning_args.callbacks.interrupt import interrupted_by
    from lightning_args.callbacks.requeue import JobRequeued

    previous = RunRecord.read(run_dir) if (run_dir / RECORD_NAME).is_file() else None
    ckpt_path = _continue_from(cfg, run_dir, previous)
    seed = cfg.seed if cfg.seed is not None else random.SystemRandom().randrange(2**31)
    if previous is not None and previous.seed is not None and ckpt_path is not None:
        seed = previous.seed  # the run goes on: its random streams come from the checkpoint
    record, resumed = None, None
    if writer:
        record, resumed = _open_record(run_dir, seed, previous, ckpt_path)
    try:
        value = _fit_and_test(cfg, seed, record, ckpt_path, resumed)
    except JobRequeued as requeued:
        if record is not None:
            record.finish(run_dir, RunStatus.REQUEUED, requeued)
        try:
            requeued.hand_over()  # submitit's handler: requeue this job, exit
        except Exception as refused:  # e.g. no requeue left (max_num_timeout): it ends here
            if record is not None:
                record.finish(run_dir, RunStatus.FAILED, refused)
            raise
        raise
    except BaseException as error:
        interrupted = interrupted_by(error, run_dir)
        if interrupted is not None:  # Ctrl-C, SIGTERM: a status, with the way to go on
            if record is not None:
                record.finish(run_dir, RunStatus.INTERRUPTED, interrupted)
            _log.warning("Run interrupted: %s", interrupted)
            if interrupted is error:
                raise
            raise interrupted from None
        if type(error).__name__ == "TrialPruned":  # optuna's; not imported for this
            if record is not None:
                record.finish(run_dir, RunStatus.PRUNED, error)
            raise
        if not isinstance(error, Exception):
            raise
        # The record holds the message the user sees (under HYDRA_FULL_ERROR=1, the traceback
        # ends with it too).
        friendly = explain(error, cfg)
        if record is not None:
            record.finish(run_dir, RunStatus.FAILED, friendly)
        if friendly is error:
            raise
        raise friendly from (error if full_error() else None)
    if record is not None:
        record.finish(run_dir, RunStatus.COMPLETED)
        _log.info(
            "Run completed: %s=%.4f (objective). Everything is in %s",
            cfg.objective.metric,
            value[0] if isinstance(value, tuple) else value,
            run_dir,
        )
    return value


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

    Every mandatory value is set (:func:`check_complete`); the output root can be written;
    ``trainer.accelerator`` exists on this machine (``trainer=gpu`` without a GPU suggests
    ``trainer=cpu``) with enough devices for ``trainer.devices``; ``ckpt_path`` names a readable
    checkpoint. Only the last two import torch, and only when asked for a GPU or a checkpoint.
    """
    check_complete(cfg)
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


def _continues(cfg: DictConfig, run_dir: Path) -> bool:
    """Whether this run continues the one in ``run_dir`` on purpose: from a checkpoint inside
    it (``ckpt_path``, ``lightning-args resume``), or as its requeued job."""
    if cfg.ckpt_path:
        return is_inside(Path(cfg.ckpt_path), run_dir)
    record = run_dir / RECORD_NAME
    return record.is_file() and RunRecord.read(run_dir).status == RunStatus.REQUEUED


def _continue_from(cfg: DictConfig, run_dir: Path, previous: RunRecord | None) -> str | None:
    """``ckpt_path``, or the checkpoint a requeued job left in its run directory."""
    from lightning_args.callbacks.requeue import requeue_checkpoint

    if cfg.ckpt_path:
        return str(cfg.ckpt_path)
    checkpoint = requeue_checkpoint(run_dir, previous.status if previous else None)
    if checkpoint is None:
        return None
    _log.info("Requeued run: continuing from %s", checkpoint)
    return str(checkpoint)


def _open_record(
    run_dir: Path, seed: int, previous: RunRecord | None, ckpt_path: str | None
) -> tuple[RunRecord, Callable[[], None] | None]:
    """A new run's record (written now); or the record of a run continued in its directory,
    with the call that marks it resumed.

    That call must wait until every rank of a multi-process job has read the record: each rank
    decides from it whether to continue from a requeue checkpoint, and one that read the record
    after rank 0 had marked it ``running`` would start over while the others continue.
    """
    if previous is not None and ckpt_path:
        checkpoint = _relative(ckpt_path, str(run_dir)) or ckpt_path
        overrides = _hydra_overrides()
        return previous, lambda: previous.resume(
            run_dir, checkpoint=checkpoint, overrides=overrides
        )
    start = RunRecord.start(run_dir, seed=seed, overrides=_hydra_overrides(), code_dir=_code_dir())
    return start, None


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


def _fit_and_test(
    cfg: DictConfig,
    seed: int,
    record: RunRecord | None,
    ckpt_path: str | None,
    resumed: Callable[[], None] | None,
) -> Objective:
    import lightning.pytorch as pl
    from lightning.pytorch.callbacks import ModelCheckpoint

    from lightning_args.callbacks.interrupt import StopOnInterrupt, signals_given_back
    from lightning_args.callbacks.requeue import OnceRanksMeet, RequeueOnSignal
    from lightning_args.instantiate.builder import build

    _quiet_lightning()
    if ckpt_path:  # a run continued in its own directory: its checkpoints are already there
        warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not")
    pl.seed_everything(seed, workers=True, verbose=False)
    reporter = _trial_reporter(cfg)
    requeue, stop = RequeueOnSignal(cfg.paths.run_dir), StopOnInterrupt(cfg.paths.run_dir)
    callbacks: list[pl.Callback] = [requeue, stop, _finite_loss(cfg)]
    callbacks += [reporter] if reporter else []
    callbacks += [OnceRanksMeet(resumed)] if resumed else []
    built = build(cfg, callbacks=callbacks)
    trainer = built.trainer
    # Checkpoints hold plain data only: never unpickle objects, whoever wrote the file.
    with signals_given_back(requeue, stop):
        trainer.fit(
            built.module, datamodule=built.datamodule, ckpt_path=ckpt_path, weights_only=True
        )

    fit_metrics = _scalars(trainer.callback_metrics)
    if reporter is not None and reporter.pruned_at is not None:
        import optuna

        if record is not None:
            record.metrics = fit_metrics
        raise optuna.TrialPruned(
            f"pruned after epoch {reporter.pruned_at}: "
            f"{cfg.objective.metric}={reporter.last_value:.4g}"
        )
    checkpoint = trainer.checkpoint_callback
    if not isinstance(checkpoint, ModelCheckpoint):
        checkpoint = None
    value = _objective(cfg, fit_metrics, checkpoint)
    best = checkpoint.best_model_path if checkpoint is not None else ""

    test_metrics: dict[str, float] = {}
    if cfg.test:
        trainer.test(
            built.module, datamodule=built.datamodule, ckpt_path=best or None, weights_only=True
        )
        test_metrics = _scalars(trainer.callback_metrics)

    also = {name: _logged(name, fit_metrics) for name in cfg.objective.get("also") or []}
    if record is not None:
        record.objective = {
            "metric": cfg.objective.metric,
            "mode": str(getattr(cfg.objective.mode, "value", cfg.objective.mode)),
            "value": value,
            **({"also": also} if also else {}),
        }
        record.metrics = {**fit_metrics, **test_metrics}
        record.checkpoints = {
            "best": _relative(best, cfg.paths.run_dir),
            "last": _relative(checkpoint.last_model_path if checkpoint else "", cfg.paths.run_dir),
        }
    return (value, *also.values()) if also else value


def _finite_loss(cfg: DictConfig) -> Any:
    """A callback that stops training when its loss becomes NaN or infinite: without it a run
    goes on with NaN weights to its last epoch and "completes", with a meaningless objective.

    The loss is looked at every ``trainer.log_every_n_steps`` batches (and the first), where
    Lightning synchronises with the device for logging anyway, so a GPU run is not slowed.
    """
    from collections.abc import Mapping

    import lightning.pytorch as pl
    import torch

    lr = OmegaConf.select(cfg, "optimizer.lr", default=None)

    class FiniteLoss(pl.Callback):
        def __init__(self) -> None:
            self.last: Any = None  # the latest batch's loss, kept without a device sync

        def on_train_batch_end(
            self, trainer: pl.Trainer, module: Any, outputs: Any, batch: Any, batch_idx: int
        ) -> None:
            loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
            self.last = loss if isinstance(loss, torch.Tensor) else None
            every = int(getattr(trainer, "log_every_n_steps", 1) or 1)  # untyped in Lightning
            if batch_idx % max(1, every) == 0:
                self._check(trainer, batch_idx)

        def on_train_epoch_end(self, trainer: pl.Trainer, module: Any) -> None:
            self._check(trainer, None)  # an epoch shorter than log_every_n_steps is checked too

        def _check(self, trainer: pl.Trainer, batch_idx: int | None) -> None:
            loss, self.last = self.last, None
            if loss is None or bool(torch.isfinite(loss.detach()).all()):
                return
            kind = "NaN" if bool(torch.isnan(loss.detach()).any()) else "infinite"
            at = f", batch {batch_idx}" if batch_idx is not None else ""
            raise NonFiniteLossError(
                f"the training loss became {kind} in epoch {trainer.current_epoch}{at}. "
                "Expected a finite loss"
                + (f" (optimizer.lr={lr} may be too large)" if lr is not None else "")
                + ".\n  Fix: a smaller optimizer.lr, or trainer.gradient_clip_val=1.0; "
                "trainer.detect_anomaly=true names the operation that made it"
            )

    return FiniteLoss()


def _trial_reporter(cfg: DictConfig) -> Any:
    """In an Optuna sweep's job, the callback that reports to its trial; else ``None``."""
    from lightning_args.sweep.trial import TrialLink

    link = TrialLink.from_env()
    if link is None:
        return None
    from lightning_args.callbacks.pruning import TrialReporter

    return TrialReporter(link, cfg.objective.metric)


def _quiet_lightning() -> None:
    """Drop the lines of Lightning's output that a user cannot act on, and print the rest once."""
    # lightning 2.6 on torch >= 2.13 warns about its own use of torch's pytree on every batch.
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
    # On a machine with Slurm installed, outside a job, Lightning suggests `srun` at every run.
    if "SLURM_JOB_ID" not in os.environ:
        warnings.filterwarnings("ignore", message=r"The `srun` command is available on your")
    # metrics.csv is written into the run directory, which already holds .hydra/ and run.json.
    warnings.filterwarnings(
        "ignore", message=r"Experiment logs directory .* exists and is not empty"
    )
    lightning_logger = logging.getLogger("lightning")
    if logging.getLogger().handlers:
        # `import lightning` gives its logger a console handler *and* lets records propagate to
        # the root logger, which Hydra configured (console and <run_dir>/<app>.log): every line
        # would print twice.
        for handler in list(lightning_logger.handlers):
            if type(handler) is logging.StreamHandler:
                lightning_logger.removeHandler(handler)
    rank_zero = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    if not any(isinstance(f, _NoAdverts) for f in rank_zero.filters):
        rank_zero.addFilter(_NoAdverts())


class _NoAdverts(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("💡 Tip")


def _objective(cfg: DictConfig, metrics: dict[str, float], checkpoint: Any) -> float:
    metric: str = cfg.objective.metric
    score = getattr(checkpoint, "best_model_score", None)
    if checkpoint is not None and checkpoint.monitor == metric and score is not None:
        return float(score)
    return _logged(metric, metrics, key="objective.metric")


def _logged(metric: str, metrics: dict[str, float], key: str = "objective.also") -> float:
    if metric in metrics:
        return metrics[metric]
    raise ConfigValueError(
        f"{key}: {metric!r} was never logged. Logged metrics: "
        f"{', '.join(sorted(metrics)) or 'none'}. Fix: {key}=<one of them>"
    )


def _scalars(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if getattr(v, "numel", lambda: 1)() == 1}


def _relative(path: str, root: str) -> str | None:
    if not path:
        return None
    return os.path.relpath(path, root)


def _hydra_overrides() -> list[str]:
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return []
    # As typed: an override holding "${...}" is text here, not an interpolation to resolve.
    overrides = OmegaConf.to_container(HydraConfig.get().overrides.task, resolve=False)
    return [str(o) for o in overrides] if isinstance(overrides, list) else []


def _code_dir() -> Path:
    """The directory of the script being run: its git commit is the code version."""
    script = Path(sys.argv[0])
    return script.resolve().parent if script.is_file() else Path.cwd()
