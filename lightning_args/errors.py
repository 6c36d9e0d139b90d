"""Every exception lightning_args raises on purpose.

Each one subclasses :class:`LightningArgsError` *and* the builtin that fits it, so callers can catch
either ``lightning_args.ConfigValueError`` or plain ``ValueError``. They also subclass Hydra's
``CompactHydraException``: when one escapes a Hydra app, Hydra prints its message alone, without a
traceback, unless ``HYDRA_FULL_ERROR=1`` is set.

Messages follow one shape: what key, what value, what was expected, and how to fix it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from hydra.errors import CompactHydraException

__all__ = [
    "CheckpointError",
    "ConfigKeyError",
    "ConfigTypeError",
    "ConfigValueError",
    "DiskFullError",
    "LightningArgsError",
    "MissingValueError",
    "RecordError",
    "RunBusyError",
    "RunExistsError",
    "RunInterrupted",
    "SearchSpaceError",
    "StorageError",
    "SweepError",
    "TargetError",
    "UnknownOptionError",
    "UntrustedPathError",
    "UntrustedTargetError",
    "UsageError",
    "closest",
    "suggest",
]


class LightningArgsError(CompactHydraException):
    """Base class of the errors lightning_args raises for bad input."""


class ConfigKeyError(LightningArgsError, KeyError):
    """A config key that does not exist in its schema (usually a typo)."""

    def __str__(self) -> str:
        # KeyError.__str__ repr()s its argument, which would wrap the message in quotes.
        return str(self.args[0]) if self.args else ""


class ConfigTypeError(LightningArgsError, TypeError):
    """A config value of the wrong type."""


class ConfigValueError(LightningArgsError, ValueError):
    """A config value of the right type that is not acceptable."""


class MissingValueError(ConfigValueError):
    """A required config value (``???``) that nobody set."""


class UnknownOptionError(ConfigValueError):
    """A config group option that does not exist, e.g. ``model=mpl``."""


class SearchSpaceError(ConfigValueError):
    """A sweep's search space that cannot be searched (bad syntax, an empty range, ...)."""


class StorageError(ConfigValueError):
    """An Optuna storage that cannot be opened, or a study that does not fit the sweep."""


class DiskFullError(LightningArgsError, OSError):
    """A file that could not be written: its file system is full, or the user's quota on it is
    used up. ``errno`` is the one the write failed with (``ENOSPC`` or ``EDQUOT``)."""


class SweepError(LightningArgsError, RuntimeError):
    """A sweep that stopped: too many of its trials failed."""


class TargetError(LightningArgsError, ImportError):
    """A ``_target_`` that cannot be imported or called."""


class UntrustedTargetError(LightningArgsError, PermissionError):
    """A ``_target_`` in a config read back from a file that the trust policy refuses."""


class RecordError(LightningArgsError, ValueError):
    """A ``run.json`` that cannot be read: truncated, not JSON, or not a run record."""


class RunBusyError(LightningArgsError, BlockingIOError):
    """A run directory that another live process is writing."""


class RunExistsError(LightningArgsError, FileExistsError):
    """A new run asked to write into a directory that already holds a run."""


class UntrustedPathError(LightningArgsError, PermissionError):
    """A path in a run directory or its stored config that leads outside the run directory."""


class UsageError(LightningArgsError, ValueError):
    """Bad arguments to the ``lightning-args`` command."""


class CheckpointError(LightningArgsError, ValueError):
    """A checkpoint that lacks what lightning_args needs to rebuild its model."""


class RunInterrupted(SystemExit):
    """A run stopped by a signal (Ctrl-C, SIGTERM): the process leaves with ``128 + signal``.

    Not a :class:`LightningArgsError`: it is no error, and as a ``SystemExit`` no
    ``except Exception`` on the way (Hydra's, a launcher's) turns it into a failure; a sweeper
    recognises it and queues the trial again.
    """

    def __init__(self, signum: int, message: str = "") -> None:
        super().__init__(128 + signum)
        self.signum, self.message = signum, message

    def __reduce__(self) -> tuple[Any, ...]:  # through joblib and submitit workers
        return type(self), (self.signum, self.message)

    def __str__(self) -> str:
        return self.message or f"stopped by signal {self.signum}"


def closest(word: str, candidates: Iterable[str]) -> str | None:
    """The candidate closest to ``word`` (a likely intended spelling), or ``None``.

    >>> closest("max_epoch", ["max_steps", "max_epochs"])
    'max_epochs'
    """
    import difflib

    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return close[0] if close else None


def suggest(word: str, candidates: Iterable[str]) -> str:
    """``" Did you mean 'x'?"`` for the closest candidate, or ``""`` if none is close.

    >>> suggest("mpl", ["cnn", "mlp"])
    " Did you mean 'mlp'?"
    """
    match = closest(word, candidates)
    return f" Did you mean '{match}'?" if match else ""


# --- the error boundary (issue 12): what a failed job or command becomes -------------------


class JobError(LightningArgsError, RuntimeError):
    """A job (or a ``lightning-args`` command) that failed in torch, Lightning, Optuna, the file
    system or the user's own code, told in a few lines: what failed, where, and what to do."""


class AcceleratorError(ConfigValueError):
    """``trainer.accelerator`` (or its devices, strategy, precision) that this machine or
    Lightning cannot provide."""


class OutOfMemoryError(LightningArgsError, MemoryError):
    """An allocation that failed (on the GPU or in host memory), with what to make smaller."""


class NonFiniteLossError(LightningArgsError, FloatingPointError):
    """A training loss that became NaN or infinite."""


class OutputRootError(LightningArgsError, PermissionError):
    """An output root (``paths.output_root``, ``hydra.run.dir``) that cannot be written."""


class PreflightFailed(SystemExit):
    """A pre-flight check that refused a run before Hydra created its directory.

    Raised from a Hydra callback, which would turn any ``Exception`` into a warning and go on:
    as a ``SystemExit`` it stops the app (exit status 1 with the message, even outside
    ``@lightning_args.main``), and :func:`lightning_args._compat.hydra.friendly_errors` reports
    ``error``, the :class:`LightningArgsError` it carries, like every other.
    """

    def __init__(self, error: LightningArgsError) -> None:
        super().__init__(str(error))
        self.error = error

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), (self.error,)


__all__ += [
    "AcceleratorError",
    "JobError",
    "NonFiniteLossError",
    "OutOfMemoryError",
    "OutputRootError",
    "PreflightFailed",
]
