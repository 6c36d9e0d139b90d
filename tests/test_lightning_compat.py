"""What lightning_args relies on inside Lightning (``lightning_args/_compat/lightning.py``).

In process and fast: tiny models on the CPU, a few batches each, no process of their own. When a
Lightning (or torch) upgrade moves one of the internals, or changes the behaviour the module
works around, a test here fails and names it.
"""

from __future__ import annotations

import ast
import csv
import inspect
import logging
import signal
import textwrap
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lightning
import lightning.pytorch as pl
import pytest
import torch
from lightning.fabric.plugins.environments import slurm
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger as LightningCSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import Logger
from lightning.pytorch.utilities._pytree import _tree_flatten
from lightning.pytorch.utilities.exceptions import SIGTERMException

from lightning_args._compat import lightning as compat
from lightning_args.callbacks.checkpoint import BestAndLastCheckpoint
from lightning_args.loggers import CSVLogger, _ContinuingWriter
from lightning_args.modules.configured import ConfiguredModule
from lightning_args.modules.data import TensorBatches
from tests.helpers import quiet_trainer

BATCHES = 4  # training batches per epoch of Tiny


class Tiny(pl.LightningModule):
    """One linear layer. Its validation loss grows every epoch: the first epoch's is the best."""

    def __init__(self, *, early_loader: bool = False) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(2, 1)
        self.early_loader = early_loader
        self.seen: list[int] = []  # the first number of every training batch

    def training_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> torch.Tensor:
        (x,) = batch
        self.seen.append(int(x[0, 0]))
        loss = self.layer(x).pow(2).mean()
        self.log("train_loss", loss, on_step=True, on_epoch=False)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> None:
        self.log("val_loss", float(self.current_epoch))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        if self.early_loader:  # what a cosine or one-cycle scheduler asks for
            assert self.trainer.estimated_stepping_batches > 0  # builds the training loader
        return torch.optim.SGD(self.parameters(), lr=0.01)

    def train_dataloader(self) -> TensorBatches:
        return TensorBatches((torch.arange(4.0 * BATCHES).reshape(2 * BATCHES, 2),), batch_size=2)

    def val_dataloader(self) -> TensorBatches:
        return TensorBatches((torch.zeros(2, 2),), batch_size=2)


class Stop(Exception):  # noqa: N818 (control flow, not an error)
    """A hook's way out of training, as StopOnInterrupt's and RequeueOnSignal's are."""


# --- training loaders -------------------------------------------------------------------------


def test_a_loader_built_before_the_checkpoint_is_read_keeps_its_state_pending(
    tmp_path: Path,
) -> None:
    class SaveAndStop(pl.Callback):  # as StopOnInterrupt does
        def on_train_batch_end(
            self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any
        ) -> None:
            if trainer.fit_loop.total_batch_idx == 1:  # mid-epoch: 2 of 4 batches
                trainer.save_checkpoint(tmp_path / "mid.ckpt")
                raise Stop

    first = quiet_trainer(tmp_path, max_epochs=1, limit_val_batches=0, callbacks=[SaveAndStop()])
    with pytest.raises(Stop):
        first.fit(Tiny())
    pending: list[list[dict[str, Any]]] = []

    class Look(pl.Callback):
        def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
            pending.append(list(trainer.fit_loop._combined_loader_states_to_load))
            compat.load_pending_loader_states(trainer)
            pending.append(list(trainer.fit_loop._combined_loader_states_to_load))

    module = Tiny(early_loader=True)
    trainer = quiet_trainer(tmp_path, max_epochs=1, limit_val_batches=0, callbacks=[Look()])
    trainer.fit(module, ckpt_path=tmp_path / "mid.ckpt", weights_only=False)
    assert pending[0], "Lightning gave the loader its state itself: LoaderStateOnResume can go"
    assert pending[1] == []  # handed over, and released as Lightning does
    assert module.seen
    assert module.seen[0] != 0  # the epoch went on, not from its first batch


# --- a checkpoint's layout (forks) -------------------------------------------------------------


def test_a_checkpoint_says_whether_it_was_saved_at_an_epochs_end_and_holds_the_callbacks_state(
    tmp_path: Path,
) -> None:
    class SaveMidEpoch(pl.Callback):
        def on_train_batch_end(
            self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any
        ) -> None:
            if trainer.fit_loop.total_batch_idx == 1:  # 2 of 4 batches
                trainer.save_checkpoint(tmp_path / "mid.ckpt")

    callback = ModelCheckpoint(dirpath=tmp_path / "checkpoints", monitor="val_loss", save_last=True)
    trainer = quiet_trainer(
        tmp_path, max_epochs=1, enable_checkpointing=True, callbacks=[callback, SaveMidEpoch()]
    )
    trainer.fit(Tiny())
    end = torch.load(callback.last_model_path, weights_only=True)
    mid = torch.load(tmp_path / "mid.ckpt", weights_only=True)
    assert (compat.at_epoch_end(end), compat.at_epoch_end(mid)) == (True, False)
    assert compat.drop_checkpoint_callback_states(end) == [callback.state_key]
    assert callback.state_key not in end["callbacks"]


# --- ModelCheckpoint --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("callback_class", "last_step"),
    [
        pytest.param(ModelCheckpoint, BATCHES, id="lightning-last-is-the-best"),
        pytest.param(BestAndLastCheckpoint, 3 * BATCHES, id="ours-last-is-the-last"),
    ],
)
def test_last_ckpt_holds_the_last_epoch_only_with_best_and_last_checkpoint(
    tmp_path: Path, callback_class: type[ModelCheckpoint], last_step: int
) -> None:
    callback = callback_class(
        dirpath=tmp_path / "checkpoints", monitor="val_loss", save_top_k=1, save_last=True
    )
    trainer = quiet_trainer(tmp_path, max_epochs=3, enable_checkpointing=True, callbacks=[callback])
    trainer.fit(Tiny())
    assert Path(callback.best_model_path).name == "epoch=0-step=4.ckpt"
    saved = torch.load(callback.last_model_path, weights_only=False)
    assert saved["global_step"] == last_step
    assert compat.last_saved_step(callback) == last_step


def test_model_checkpoint_keeps_the_private_methods_the_compat_module_calls(
    tmp_path: Path,
) -> None:
    shapes = {
        "_should_skip_saving_checkpoint": ["self", "trainer"],
        "_should_save_on_train_epoch_end": ["self", "trainer"],
        "_monitor_candidates": ["self", "trainer"],
        "_save_last_checkpoint": ["self", "trainer", "monitor_candidates"],
    }
    for name, parameters in shapes.items():
        assert list(inspect.signature(getattr(ModelCheckpoint, name)).parameters) == parameters
    callback = ModelCheckpoint(dirpath=tmp_path)
    assert compat.last_saved_step(callback) == 0
    trainer = quiet_trainer(tmp_path, limit_val_batches=0)
    assert compat.skips_saving(callback, trainer)  # not fitting
    assert isinstance(compat.saves_on_train_epoch_end(callback, trainer), bool)


def test_saves_at_a_training_epochs_end_unless_validation_runs_within_it(tmp_path: Path) -> None:
    decided: list[bool] = []

    class Look(pl.Callback):
        def on_train_batch_end(
            self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any
        ) -> None:
            assert trainer.checkpoint_callback is not None
            decided.append(compat.saves_on_train_epoch_end(trainer.checkpoint_callback, trainer))
            decided.append(compat.skips_saving(trainer.checkpoint_callback, trainer))

    for validation, every in ((0, 1.0), (1, 0.5)):  # none; twice an epoch
        callback = ModelCheckpoint(dirpath=tmp_path / str(validation))
        trainer = quiet_trainer(
            tmp_path,
            max_steps=1,
            limit_val_batches=validation,
            val_check_interval=every,
            num_sanity_val_steps=0,
            enable_checkpointing=True,
            callbacks=[callback, Look()],
        )
        trainer.fit(Tiny())
    assert decided == [True, False, False, False]


# --- logging ----------------------------------------------------------------------------------


class Recorded(Logger):
    """A logger that keeps what it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.logged: list[tuple[int | None, dict[str, float]]] = []

    @property
    def name(self) -> str:
        return "recorded"

    @property
    def version(self) -> int:
        return 0

    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        pass

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        self.logged.append((step, dict(metrics)))


@pytest.mark.parametrize("handed_over", [True, False], ids=["handed-over", "control"])
def test_a_steps_metrics_reach_the_loggers_before_a_stop_only_when_handed_over(
    tmp_path: Path, handed_over: bool
) -> None:
    class StopAtSecondBatch(pl.Callback):
        def on_train_batch_end(
            self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any
        ) -> None:
            if trainer.fit_loop.total_batch_idx == 1:
                if handed_over:
                    compat.log_step_metrics(trainer)
                raise Stop

    recorded = Recorded()
    trainer = quiet_trainer(
        tmp_path,
        max_epochs=1,
        limit_val_batches=0,
        log_every_n_steps=1,
        logger=recorded,
        callbacks=[StopAtSecondBatch()],
    )
    with pytest.raises(Stop):
        trainer.fit(Tiny())
    steps = [step for step, metrics in recorded.logged if "train_loss" in metrics]
    assert len(steps) == (2 if handed_over else 1)  # without it, the last step's are lost
    assert "train_loss" in trainer.callback_metrics


def test_the_trainer_carries_log_every_n_steps(tmp_path: Path) -> None:
    assert compat.log_every_n_steps(quiet_trainer(tmp_path, log_every_n_steps=7)) == 7
    assert compat.log_every_n_steps(quiet_trainer(tmp_path)) == 50  # Lightning's default


# --- resuming a checkpoint of a batch's end (requeues) ----------------------------------------


class Hooks(pl.Callback):
    """Records the epoch of every ``on_train_epoch_start`` and of every validation's end."""

    def __init__(self) -> None:
        self.called: list[tuple[str, int]] = []

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.called.append(("epoch start", trainer.current_epoch))

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking:
            self.called.append(("validated", trainer.current_epoch))


EPOCH_0_END = [("validated", 0), ("epoch start", 1), ("validated", 1)]
# Validations after batches 1 and 3 of each epoch (val_check_interval=2).
TWICE = [("validated", 0), ("validated", 0), ("epoch start", 1), ("validated", 1), ("validated", 1)]


@pytest.mark.parametrize(
    ("batch", "extra", "follows", "resumed"),
    [
        pytest.param(1, {}, False, EPOCH_0_END, id="mid-epoch"),
        # Lightning's: the epoch's validation and the next epoch's start are skipped.
        pytest.param(BATCHES - 1, {}, True, EPOCH_0_END[2:], id="an-epochs-last-batch"),
        pytest.param(1, {"val_check_interval": 2}, True, TWICE[1:], id="a-validation-follows"),
    ],
)
def test_a_batch_end_checkpoint_resumes_past_what_follows_that_batch(
    tmp_path: Path,
    batch: int,
    extra: dict[str, Any],
    follows: bool,
    resumed: list[tuple[str, int]],
) -> None:
    """What RequeueOnSignal defers its stop for: when this fails with Lightning resuming what
    follows the batch (the whole of ``EPOCH_0_END`` or ``TWICE``), the deferral can go."""
    told: list[bool] = []

    class SaveAndStop(pl.Callback):  # as RequeueOnSignal does
        def on_train_batch_end(
            self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any
        ) -> None:
            if trainer.fit_loop.total_batch_idx == batch:  # in the first epoch
                told.append(compat.epoch_end_or_validation_follows(trainer))
                trainer.save_checkpoint(tmp_path / "stop.ckpt")
                raise Stop

    first = quiet_trainer(tmp_path, max_epochs=2, callbacks=[SaveAndStop()], **extra)
    with pytest.raises(Stop):
        first.fit(Tiny())
    assert told == [follows]
    hooks = Hooks()
    trainer = quiet_trainer(tmp_path, max_epochs=2, callbacks=[hooks], **extra)
    trainer.fit(Tiny(), ckpt_path=tmp_path / "stop.ckpt", weights_only=False)
    assert hooks.called == resumed


# --- signals ----------------------------------------------------------------------------------


@pytest.fixture
def sigterm_received() -> Iterator[list[int]]:
    """A SIGTERM handler of the test's own for its duration (so a stray SIGTERM kills
    nothing), and the signals it received."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers are installed from the main thread only")
    received: list[int] = []
    before = signal.signal(signal.SIGTERM, lambda signum, frame: received.append(signum))
    try:
        yield received
    finally:
        signal.signal(signal.SIGTERM, before)


def test_lightning_takes_sigterm_after_setup_and_stops_by_itself(
    tmp_path: Path, sigterm_received: list[int]
) -> None:
    ours = signal.getsignal(signal.SIGTERM)
    handlers: dict[str, Any] = {}

    class Probe(pl.Callback):
        def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
            handlers["setup"] = signal.getsignal(signal.SIGTERM)

        def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
            handlers["on_train_start"] = signal.getsignal(signal.SIGTERM)

        def on_train_batch_end(
            self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any
        ) -> None:
            if trainer.fit_loop.total_batch_idx == 0:
                signal.raise_signal(signal.SIGTERM)

    module = Tiny()
    trainer = quiet_trainer(tmp_path, max_epochs=1, limit_val_batches=0, callbacks=[Probe()])
    with pytest.raises(SIGTERMException) as caught:
        trainer.fit(module)
    assert handlers["setup"] is ours  # what StopOnInterrupt.setup installs is still there
    assert handlers["on_train_start"] is not ours  # Lightning's, put in front of it
    assert sigterm_received == [signal.SIGTERM]  # which calls the handler it found
    assert compat.stopped_by_sigterm(caught.value)
    assert isinstance(caught.value, SystemExit)
    assert caught.value.code is None  # the process would exit 0
    assert len(module.seen) == 1  # at the end of the batch the signal arrived in
    assert signal.getsignal(signal.SIGTERM) is ours  # given back after the failed fit
    assert not compat.stopped_by_sigterm(SystemExit(None))


# --- the CSV logger ---------------------------------------------------------------------------


def test_lightnings_csv_writer_deletes_the_metrics_it_finds_and_the_kept_one_does_not(
    tmp_path: Path,
) -> None:
    metrics = tmp_path / "metrics.csv"
    for writer_class, kept in ((ExperimentWriter, False), (compat.KeptWriter, True)):
        metrics.write_text("a,step\n1,0\n")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            writer = writer_class(str(tmp_path))
        assert metrics.is_file() is kept, writer_class.__name__
        warned = any("Experiment logs directory" in str(w.message) for w in caught)
        assert warned is not kept, writer_class.__name__
        assert writer.metrics_file_path == str(metrics)


def test_a_new_column_rewrites_metrics_csv_with_every_earlier_row(tmp_path: Path) -> None:
    writer = compat.KeptWriter(str(tmp_path))
    writer.log_metrics({"a": 1.0}, step=0)
    writer.save()
    writer.log_metrics({"a": 2.0, "b": 3.0}, step=1)
    writer.save()
    assert writer.metrics_keys == ["a", "b", "step"]
    with open(writer.metrics_file_path, newline="") as file:
        rows = list(csv.DictReader(file))
    assert rows == [{"a": "1.0", "b": "", "step": "0"}, {"a": "2.0", "b": "3.0", "step": "1"}]


def test_csv_experiment_makes_the_writer_once_in_the_loggers_own_slot(tmp_path: Path) -> None:
    logger = LightningCSVLogger(tmp_path / "root", name="", version="")
    made: list[str] = []

    def make(log_dir: str) -> ExperimentWriter:
        made.append(log_dir)
        return compat.KeptWriter(log_dir)

    first = compat.csv_experiment(logger, make)
    assert compat.csv_experiment(logger, make) is first
    assert made == [logger.log_dir]
    assert (tmp_path / "root").is_dir()
    assert logger.experiment is first  # Lightning's own property reads the same slot


# --- our names beside Lightning's -------------------------------------------------------------


def own_names(cls: type, base: type) -> set[str]:
    """The attributes ``cls`` and its classes up to ``base`` define or assign on ``self``."""
    names: set[str] = set()
    for owner in cls.__mro__[: cls.__mro__.index(base)]:
        names.update(vars(owner))
        tree = ast.parse(textwrap.dedent(inspect.getsource(owner)))
        names.update(
            node.attr
            for node in ast.walk(tree)
            if isinstance(node, ast.Attribute)
            and isinstance(node.ctx, ast.Store)
            and isinstance(node.value, ast.Name)
            and node.value.id == "self"
        )
    # ``_abc_impl``: every ABC's own, made by ABCMeta.
    return {n for n in names if n.startswith("_") and not n.startswith(("__", "_abc_"))}


@pytest.mark.parametrize(
    ("cls", "base", "overrides"),
    [
        (ConfiguredModule, pl.LightningModule, set()),
        (BestAndLastCheckpoint, ModelCheckpoint, set()),
        (CSVLogger, LightningCSVLogger, set()),
        (_ContinuingWriter, ExperimentWriter, {"_check_log_dir_exists"}),
    ],
    ids=lambda value: getattr(value, "__name__", None),
)
def test_our_private_names_shadow_only_the_lightning_internals_meant(
    tmp_path: Path, cls: type, base: type, overrides: set[str]
) -> None:
    makers: dict[type, Any] = {
        pl.LightningModule: lambda: pl.LightningModule(),
        ModelCheckpoint: lambda: ModelCheckpoint(dirpath=tmp_path),
        LightningCSVLogger: lambda: LightningCSVLogger(tmp_path),
        ExperimentWriter: lambda: ExperimentWriter(str(tmp_path)),
    }
    lightnings = set(dir(base)) | set(vars(makers[base]()))
    assert own_names(cls, base) & lightnings == overrides


# --- output -----------------------------------------------------------------------------------


@pytest.fixture
def lightning_output() -> Iterator[None]:
    """Put back what :func:`quiet_lightning` changes in the process: the warning filters, the
    ``lightning`` logger's handlers and the rank-zero logger's filters (an earlier run in this
    process may have quieted them already: they start as ``import lightning`` left them)."""
    lightning_logger = logging.getLogger("lightning")
    rank_zero = logging.getLogger(compat.RANK_ZERO_LOGGER)
    handlers, filters = list(lightning_logger.handlers), list(rank_zero.filters)
    rank_zero.filters[:] = [f for f in filters if not isinstance(f, compat._NoAdverts)]
    if lightning._console not in lightning_logger.handlers:
        lightning_logger.addHandler(lightning._console)
    try:
        with warnings.catch_warnings():
            yield
    finally:
        lightning_logger.handlers[:] = handlers
        rank_zero.filters[:] = filters


WARNINGS = (  # the start of each warning quiet_lightning drops, as Lightning words it
    "`isinstance(treespec, LeafSpec)` is deprecated",
    "The `srun` command is available on your system but is not used",
    "Experiment logs directory",
    "Checkpoint directory",
)


def lightning_warnings(tmp_path: Path, *, quiet: bool) -> list[str]:
    """The warnings of WARNINGS that Lightning (and torch, under it) gives, in this process."""
    logs, checkpoints = tmp_path / "logs", tmp_path / "checkpoints"
    for directory in (logs, checkpoints):
        directory.mkdir(exist_ok=True)
        (directory / "earlier").write_text("")
    trainer = quiet_trainer(tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if quiet:
            compat.quiet_lightning(continuing=True)
        _tree_flatten(torch.zeros(1))  # on every batch
        slurm.SLURMEnvironment._validate_srun_used()  # at every Trainer
        ExperimentWriter(str(logs))  # Lightning's CSV logger's
        ModelCheckpoint(dirpath=checkpoints).setup(trainer, Tiny(), "fit")
    return [start for start in WARNINGS if any(str(w.message).startswith(start) for w in caught)]


def test_quiet_lightning_drops_the_warnings_lightning_gives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lightning_output: None
) -> None:
    monkeypatch.setattr(slurm.shutil, "which", lambda name: f"/usr/bin/{name}")
    for variable in ("SLURM_JOB_ID", "SLURM_NTASKS"):
        monkeypatch.delenv(variable, raising=False)
    assert lightning_warnings(tmp_path, quiet=False) == list(WARNINGS)  # the control
    assert lightning_warnings(tmp_path, quiet=True) == []


class Kept(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_lightnings_adverts_are_rank_zero_records_that_quiet_lightning_drops(
    tmp_path: Path, lightning_output: None
) -> None:
    kept = Kept()
    rank_zero = logging.getLogger(compat.RANK_ZERO_LOGGER)
    rank_zero.addHandler(kept)
    try:
        quiet_trainer(tmp_path)  # no LitLogger among its loggers: an advert for it
        adverts = [r for r in kept.records if str(r.msg).startswith(compat.ADVERT_PREFIX)]
        assert adverts, "no advert on the rank-zero logger: drop _NoAdverts, or find them"
        kept.records.clear()
        compat.quiet_lightning()
        compat.quiet_lightning()  # once is enough, twice adds nothing
        quiet_trainer(tmp_path)
        assert not [r for r in kept.records if str(r.msg).startswith(compat.ADVERT_PREFIX)]
        assert sum(isinstance(f, compat._NoAdverts) for f in rank_zero.filters) == 1
    finally:
        rank_zero.removeHandler(kept)


def test_lightnings_console_handler_goes_once_the_root_logger_has_one(
    lightning_output: None,
) -> None:
    lightning_logger = logging.getLogger("lightning")
    console = lightning._console  # what `import lightning` adds
    assert type(console) is logging.StreamHandler
    assert lightning_logger.propagate  # ... and its records reach the root logger too
    root, stand_in = logging.getLogger(), logging.NullHandler()
    root.addHandler(stand_in)  # Hydra's
    try:
        compat.quiet_lightning()
    finally:
        root.removeHandler(stand_in)
    assert console not in lightning_logger.handlers
