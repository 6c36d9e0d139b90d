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
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import CSVLogger as _LightningCSVLogger
from lightning.pytorch.loggers import MLFlowLogger as _LightningMLFlowLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter

from lightning_args.atomic import atomic_write
from lightning_args.cli import flatten


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


class _ContinuingWriter(ExperimentWriter):
    def __init__(self, log_dir: str) -> None:
        super().__init__(log_dir)
        path = Path(self.metrics_file_path)
        if path.is_file():
            with path.open(newline="") as file:
                header = next(csv.reader(file), [])
            self.metrics_keys = sorted(header)

    def _check_log_dir_exists(self) -> None:
        pass  # a run directory always holds other files; nothing here is deleted


class CSVLogger(_LightningCSVLogger):
    """``lightning.pytorch.loggers.CSVLogger`` that appends to an existing ``metrics.csv``."""

    @property
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _ContinuingWriter(log_dir=self.log_dir)
        assert isinstance(self._experiment, ExperimentWriter)
        return self._experiment


def trim_metrics(path: Path, step: int) -> int:
    """Drop the rows of ``metrics.csv`` logged at ``step`` or later; return how many.

    A resumed run repeats what followed its checkpoint (the rest of a killed epoch, the final
    test of a finished run): their rows are logged again, so the earlier copies go.
    """
    if not path.is_file():
        return 0
    with path.open(newline="") as file:
        reader = csv.DictReader(file)
        header = list(reader.fieldnames or [])
        rows = list(reader)
    kept = [row for row in rows if not row.get("step") or int(float(row["step"])) < step]
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=header)
    writer.writeheader()
    writer.writerows(kept)
    atomic_write(path, text.getvalue())
    return len(rows) - len(kept)
