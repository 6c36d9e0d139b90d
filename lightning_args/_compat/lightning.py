"""Every use of Lightning's private or version-dependent internals, in one module.

Checked on lightning 2.6.6 (:data:`CHECKED_ON`; torch 2.13), by reading its source (paths below
are under ``lightning/``):

- ``pytorch/loops/fit_loop.py``: ``_FitLoop.on_load_checkpoint`` keeps the training loaders'
  states of a checkpoint in ``_combined_loader_states_to_load``, and ``setup_data`` hands them
  to the loaders (``_load_combined_loader_states()``: only while ``restarting``, then empties
  the list) when it builds the training loader. A loader built before the checkpoint was read
  (``trainer.estimated_stepping_batches`` in ``configure_optimizers``) is not built again, and
  the states stay pending (Lightning-AI/pytorch-lightning#20550):
  :func:`load_pending_loader_states`, for
  :class:`~lightning_args.callbacks.checkpoint.LoaderStateOnResume`.
- ``pytorch/callbacks/model_checkpoint.py``: ``ModelCheckpoint.on_train_epoch_end`` and
  ``on_validation_end`` save ``last.ckpt`` only when a top-k checkpoint was saved at the same
  step (``_last_global_step_saved == trainer.global_step``) or with ``save_last="link"``: with
  ``save_top_k=1`` it is a copy of the best one. The methods they decide and save with,
  ``_should_skip_saving_checkpoint(trainer)``, ``_should_save_on_train_epoch_end(trainer)``,
  ``_monitor_candidates(trainer)`` and ``_save_last_checkpoint(trainer, monitor_candidates)``,
  and the step of the latest save, ``_last_global_step_saved``: :func:`skips_saving`,
  :func:`saves_on_train_epoch_end`, :func:`last_saved_step`, :func:`save_last`, for
  :class:`~lightning_args.callbacks.checkpoint.BestAndLastCheckpoint`.
- ``pytorch/loops/training_epoch_loop.py``: ``_TrainingEpochLoop.advance`` hands a step's
  metrics to the loggers after the ``on_train_batch_end`` hooks, through the trainer's
  ``_logger_connector`` (``pytorch/trainer/connectors/logger_connector/logger_connector.py``):
  ``on_batch_end()`` then ``update_train_step_metrics()``. A hook that stops training by raising
  skips both: :func:`log_step_metrics`. A checkpoint saved in an ``on_train_batch_end`` hook
  does not come back as the point it was saved at when what follows that batch is an epoch's
  end or a validation: ``_FitLoop.reset`` (``fit_loop.py``) takes a checkpoint of an epoch's
  last batch (``epoch_loop.batch_progress.is_last_batch``, the epoch loop restarting
  ``on_train_batch_end``) for a finished epoch, so that epoch's validation and
  ``on_train_epoch_end`` and the next epoch's ``on_train_epoch_start`` are skipped
  (``on_advance_start``: not while ``restarted_mid_epoch``), and ``_TrainingEpochLoop.advance``,
  restarting at a batch that validation follows (``_should_check_val_fx``, which reads
  ``_FitLoop._data_fetcher``), moves the validation's progress to its end
  (``increment_progress_to_evaluation_end``) without running it (Lightning-AI/pytorch-lightning
  #14579): :func:`epoch_end_or_validation_follows`, for
  :class:`~lightning_args.callbacks.requeue.RequeueOnSignal`.
  ``_LoggerConnector.on_trainer_init`` sets ``trainer.log_every_n_steps``, an attribute the
  ``Trainer`` class does not declare: :func:`log_every_n_steps`.
- ``pytorch/trainer/connectors/signal_connector.py`` (behaviour, used as it is by
  :mod:`lightning_args.callbacks.interrupt`): ``Trainer._run`` calls
  ``_SignalConnector.register_signal_handlers()`` after the callbacks' ``setup`` and before the
  loops start (``on_train_start``). It installs a SIGTERM handler of its own (a
  ``_HandlersCompose`` that sets ``trainer.received_sigterm``, then calls the handler it found),
  and its ``teardown()`` puts the handlers it found back, also after a failed fit. The loops then
  stop by themselves: ``SIGTERMException`` (``pytorch/utilities/exceptions.py``, a
  ``SystemExit`` whose code is ``None``, so the process would exit 0) at a training batch's or an
  epoch's end and between evaluation batches (``training_epoch_loop.py``, ``fit_loop.py``,
  ``evaluation_loop.py``), saving nothing: :func:`stopped_by_sigterm`.
- ``fabric/loggers/csv_logs.py`` and ``pytorch/loggers/csv_logs.py``: the CSV logger's writer,
  ``ExperimentWriter`` (``lightning.pytorch.loggers.csv_logs``; not in
  ``lightning.pytorch.loggers.__all__``), calls ``_check_log_dir_exists()`` in ``__init__``,
  which warns about a non-empty directory and deletes its ``metrics.csv``. Its ``save()``
  appends to ``metrics_file_path``, rewriting the file with every earlier row when
  ``metrics_keys`` (the header, sorted) gains a column. ``CSVLogger.experiment`` makes its
  writer once, into ``_experiment``, after making ``root_dir`` with ``_fs``: :class:`KeptWriter`
  and :func:`csv_experiment`, for :class:`lightning_args.loggers.CSVLogger`.
- Output (:func:`quiet_lightning`): warnings whose text is Lightning's (or torch's, seen through
  Lightning): ``LeafSpec()`` in ``pytorch/utilities/_pytree.py`` warns on torch >= 2.13
  ("`isinstance(treespec, LeafSpec)` is deprecated"), on every batch; ``SLURMEnvironment.
  _validate_srun_used`` (``fabric/plugins/environments/slurm.py``) at every Trainer where
  ``srun`` is installed; ``_ExperimentWriter._check_log_dir_exists`` (above) and
  ``ModelCheckpoint.__warn_if_dir_not_empty``. ``lightning/__init__.py`` gives the
  ``lightning`` logger a ``StreamHandler`` and leaves it propagating to the root logger. The
  "💡 Tip" adverts (``logger_connector.py``, ``callback_connector.py``) are ``rank_zero_info``
  records of the logger ``lightning.pytorch.utilities.rank_zero``.

- A checkpoint's layout (``pytorch/trainer/connectors/checkpoint_connector.py``
  ``dump_checkpoint``, ``pytorch/loops/progress.py``): ``loops.fit_loop`` holds
  ``"epoch_loop.batch_progress"``, whose ``is_last_batch`` is true in a checkpoint saved at the
  end of an epoch; ``callbacks`` maps each callback's ``state_key`` to its state, and a
  ``ModelCheckpoint``'s holds ``dirpath`` and ``best_model_path`` (restored as they are when
  ``dirpath`` is unchanged; only ``best_model_path`` otherwise): :func:`at_epoch_end`,
  :func:`drop_checkpoint_callback_states`, for :mod:`lightning_args.run.fork`.

Our subclasses' own private names (:class:`~lightning_args.ConfiguredModule`'s ``_named``,
``_scheduler``... :class:`~lightning_args.callbacks.checkpoint.BestAndLastCheckpoint`'s
``_last_due``...) shadow nothing of Lightning's classes; only the overrides listed above do.

``tests/test_lightning_compat.py`` fails when any of these stops holding (on a Lightning or torch
upgrade: run it first, then update :data:`CHECKED_ON`).
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

# A base class, so imported when this module is; every module that imports this one is
# imported only once a run starts (pyproject.toml's per-file-ignores), or imports it inside a
# function (run/app.py).
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.utilities.exceptions import SIGTERMException

if TYPE_CHECKING:
    import lightning.pytorch as pl
    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger

CHECKED_ON = "2.6.6"
ADVERT_PREFIX = "💡 Tip"  # how Lightning's adverts for its cloud services begin
RANK_ZERO_LOGGER = "lightning.pytorch.utilities.rank_zero"  # where rank_zero_info logs


# --- training loaders -------------------------------------------------------------------------


def load_pending_loader_states(trainer: pl.Trainer) -> None:
    """Hand the training loaders the states a checkpoint holds for them, if Lightning has not.

    Does nothing when no state is pending (a fresh run, or Lightning loaded them already).
    """
    loop = trainer.fit_loop
    if getattr(loop, "_combined_loader_states_to_load", None):
        loop._load_combined_loader_states()


# --- ModelCheckpoint --------------------------------------------------------------------------


def skips_saving(callback: ModelCheckpoint, trainer: pl.Trainer) -> bool:
    """Whether ``callback`` saves nothing now: ``fast_dev_run``, not fitting, the sanity check,
    or a checkpoint saved at this step already."""
    return callback._should_skip_saving_checkpoint(trainer)


def saves_on_train_epoch_end(callback: ModelCheckpoint, trainer: pl.Trainer) -> bool:
    """Whether ``callback`` saves at the end of a training epoch (``True``) or at the end of
    validation (``False``)."""
    return callback._should_save_on_train_epoch_end(trainer)


def last_saved_step(callback: ModelCheckpoint) -> int:
    """The global step of the latest checkpoint ``callback`` saved (0 before any)."""
    return callback._last_global_step_saved


def save_last(callback: ModelCheckpoint, trainer: pl.Trainer) -> None:
    """Save ``callback``'s last checkpoint now, named from the current metrics as Lightning
    names it (nothing without ``save_last``)."""
    callback._save_last_checkpoint(trainer, callback._monitor_candidates(trainer))


# --- logging ----------------------------------------------------------------------------------


def log_step_metrics(trainer: pl.Trainer) -> None:
    """Hand this training step's logged metrics to the trainer's loggers (and progress bar and
    callback metrics) now, as Lightning does after the batch-end hooks."""
    trainer._logger_connector.on_batch_end()
    trainer._logger_connector.update_train_step_metrics()


def epoch_end_or_validation_follows(trainer: pl.Trainer) -> bool:
    """In an ``on_train_batch_end`` hook: whether the epoch ends after this batch, or a
    validation runs after it (what a checkpoint saved now would skip when resumed)."""
    loop = trainer.fit_loop.epoch_loop
    if loop.batch_progress.is_last_batch:
        return True
    fetcher = trainer.fit_loop._data_fetcher
    return fetcher is not None and loop._should_check_val_fx(fetcher)


def log_every_n_steps(trainer: pl.Trainer) -> int:
    """``Trainer(log_every_n_steps=...)``: every how many training batches the loggers are
    written (0: never)."""
    every: int = trainer.log_every_n_steps  # type: ignore[attr-defined]
    return every


# --- signals ----------------------------------------------------------------------------------


def stopped_by_sigterm(error: BaseException) -> bool:
    """Whether ``error`` is Lightning's own stop after a SIGTERM (``SIGTERMException``)."""
    return isinstance(error, SIGTERMException)


# --- the CSV logger ---------------------------------------------------------------------------


class KeptWriter(ExperimentWriter):
    """Lightning's CSV ``ExperimentWriter``, which deletes nothing it finds in its directory
    (Lightning's deletes ``metrics.csv``) and does not warn about it."""

    def _check_log_dir_exists(self) -> None:
        pass  # a run directory always holds other files; nothing here is deleted


def csv_experiment(logger: CSVLogger, make: Callable[[str], ExperimentWriter]) -> ExperimentWriter:
    """``logger``'s writer: ``make(logger.log_dir)`` on first use (after making the logger's
    root directory, as Lightning's ``CSVLogger.experiment`` does), the same one afterwards."""
    if logger._experiment is None:
        logger._fs.makedirs(logger.root_dir, exist_ok=True)
        logger._experiment = make(logger.log_dir)
    assert isinstance(logger._experiment, ExperimentWriter)
    return logger._experiment


# --- output -----------------------------------------------------------------------------------


def at_epoch_end(checkpoint: dict[str, Any]) -> bool:
    """Whether ``checkpoint`` was saved at the end of an epoch (not mid-epoch, as a requeue's)."""
    loop = checkpoint.get("loops", {}).get("fit_loop", {})
    progress = loop.get("epoch_loop.batch_progress", {}) if isinstance(loop, dict) else {}
    return isinstance(progress, dict) and progress.get("is_last_batch") is True


def drop_checkpoint_callback_states(checkpoint: dict[str, Any]) -> list[str]:
    """Remove the states of ``ModelCheckpoint`` callbacks from ``checkpoint`` (a run going on
    elsewhere then tracks its own best checkpoint, rather than pointing at another run's);
    return their state keys."""
    states = checkpoint.get("callbacks", {})
    dropped = [
        key
        for key, state in states.items()
        if isinstance(state, dict) and {"dirpath", "best_model_path"} <= state.keys()
    ]
    for key in dropped:
        del states[key]
    return dropped


def quiet_lightning(*, continuing: bool = False, validating: bool = True) -> None:
    """Drop the lines of Lightning's output that a user cannot act on, and print the rest once.

    ``continuing``: the run goes on in its own directory (its checkpoints are already there).
    ``validating=False``: a run that validates on nothing (a k-fold run's refit), whose
    checkpoint callback never sees its monitored metric.
    """
    # lightning 2.6 on torch >= 2.13 warns about its own use of torch's pytree on every batch.
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
    # On a machine with Slurm installed, outside a job, Lightning suggests `srun` at every run.
    if "SLURM_JOB_ID" not in os.environ:
        warnings.filterwarnings("ignore", message=r"The `srun` command is available on your")
    # metrics.csv is written into the run directory, which already holds .hydra/ and run.json.
    warnings.filterwarnings(
        "ignore", message=r"Experiment logs directory .* exists and is not empty"
    )
    if continuing:
        warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not")
    if not validating:
        warnings.filterwarnings("ignore", message=r"`ModelCheckpoint\(monitor=.*could not find")
        warnings.filterwarnings("ignore", message=r"Total length of .* across ranks is zero")
    lightning_logger = logging.getLogger("lightning")
    if logging.getLogger().handlers:
        # `import lightning` gives its logger a console handler *and* lets records propagate to
        # the root logger, which Hydra configured (console and <run_dir>/<app>.log): every line
        # would print twice.
        for handler in list(lightning_logger.handlers):
            if type(handler) is logging.StreamHandler:
                lightning_logger.removeHandler(handler)
    rank_zero = logging.getLogger(RANK_ZERO_LOGGER)
    if not any(isinstance(f, _NoAdverts) for f in rank_zero.filters):
        rank_zero.addFilter(_NoAdverts())


class _NoAdverts(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(ADVERT_PREFIX)
