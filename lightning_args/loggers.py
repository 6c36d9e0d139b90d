"""Loggers: Lightning's, fitted to run directories.

``MLflowLogger`` names its MLflow run after the run directory and logs the resolved config.
``CSVLogger`` continues a file instead of replacing it: Lightning's starts every fit with an
empty ``metrics.csv`` ("Previous log files in this directory will be deleted"), so a resumed run
would lose the history of its first part. This one reads the existing header first: rows are
appended, and a new column rewrites the file with every earlier row kept.
"""

from __future__ import annotations

import csv
import io
import logging
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import CSVLogger as _LightningCSVLogger
from lightning.pytorch.loggers import MLFlowLogger as _LightningMLFlowLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter

from lightning_args._compat import lightning as compat
from lightning_args._util.atomic import atomic_write
from lightning_args._util.flat import flatten

_log = logging.getLogger(__name__)


class MLflowLogger(_LightningMLFlowLogger):
    """Lightning's ``MLFlowLogger``, with the MLflow run named after the run directory.

    :func:`lightning_args.build` calls :meth:`log_config` with the resolved config, which is
    logged as flat parameters (``optimizer.lr``, ``model.encoder.hidden``...).
    """

    def __init__(self, run_dir: str, **kwargs: Any) -> None:
        path = Path(run_dir).resolve()
        tags = {"run_dir": str(path), **kwargs.pop("tags", {})}
        super().__init__(run_name=path.name, tags=tags, **kwargs)

    def log_config(self, config: dict[str, Any]) -> None:
        """Log ``config`` as parameters, one per leaf, named by its dotted path."""
        self.log_hyperparams(flatten(config))


class _ContinuingWriter(compat.KeptWriter):
    def __init__(self, log_dir: str) -> None:
        super().__init__(log_dir)
        path = Path(self.metrics_file_path)
        if path.is_file():
            with path.open(newline="") as file:
                header = next(csv.reader(file), [])
            self.metrics_keys = sorted(header)


class CSVLogger(_LightningCSVLogger):
    """``lightning.pytorch.loggers.CSVLogger`` that appends to an existing ``metrics.csv``."""

    @property
    def experiment(self) -> ExperimentWriter:
        return compat.csv_experiment(self, _ContinuingWriter)


def trim_metrics(path: Path, step: int) -> int:
    """Drop the rows of ``metrics.csv`` logged at ``step`` or later; return how many.

    A resumed run repeats what followed its checkpoint (the rest of a killed epoch, the final
    test of a finished run): their rows are logged again, so the earlier copies go. A last row
    that a crash cut mid-line (no line end, or not the header's number of fields) goes too,
    with a warning, and counts among the dropped rows: it would otherwise stay as a broken row.
    """
    if not path.is_file():
        return 0
    with path.open(newline="") as file:
        text, torn = _without_torn_row(file.read())
    rows = list(csv.reader(io.StringIO(text, newline="")))
    header, body = (rows[0], rows[1:]) if rows else ([], [])
    short = bool(body) and len(body[-1]) != len(header)
    if short:
        body.pop()
    if torn or short:
        _log.warning(
            "%s: its last row was cut mid-line (what a crash during a write leaves): dropped it",
            path,
        )
    if not header:
        path.unlink()  # not even the header was whole: the run's logger starts the file again
        return int(bool(torn))
    # A short row earlier in the file (not one a crash leaves) is read as csv.DictReader does.
    records = [dict(zip(header, row + [""] * len(header), strict=False)) for row in body]
    kept = [row for row in records if not row.get("step") or int(float(row["step"])) < step]
    out = io.StringIO(newline="")
    writer = csv.DictWriter(out, fieldnames=header)
    writer.writeheader()
    writer.writerows(kept)
    atomic_write(path, out.getvalue())
    return len(records) - len(kept) + int(bool(torn) or short)


def _without_torn_row(text: str) -> tuple[str, str]:
    r"""``text`` without a last line that has no line end, and that line (``""`` if none).

    >>> _without_torn_row("a,b\r\n1,2\r\n3,")
    ('a,b\r\n1,2\r\n', '3,')
    >>> _without_torn_row("a,b\r\n1,2\r")  # only the \n is missing: the row is whole
    ('a,b\r\n1,2\r', '')
    """
    if not text or text.endswith(("\n", "\r")):
        return text, ""
    cut = max(text.rfind("\n"), text.rfind("\r")) + 1
    return text[:cut], text[cut:]
