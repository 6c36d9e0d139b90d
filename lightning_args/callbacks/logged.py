"""The last value of every metric a run logged, kept in its checkpoints so a resume keeps it too.

Lightning's ``trainer.callback_metrics`` holds what this process logged. A run resumed after its
last training batch (an interrupt during the final validation, say) only validates: the metrics
logged in training steps or epochs (``train/loss``, ``lr-AdamW``) are never logged again, and
the run's record would lose them. :class:`LoggedMetrics` saves the scalars logged so far with
every checkpoint and puts them under what the resumed process logs. Plain numbers only, so
checkpoints still load with ``weights_only=True``.
"""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
from typing_extensions import override

from lightning_args.errors import CheckpointError


def scalars(metrics: dict[str, Any]) -> dict[str, float]:
    """The one-number entries of ``metrics`` (tensors or numbers), as floats."""
    return {k: float(v) for k, v in metrics.items() if getattr(v, "numel", lambda: 1)() == 1}


class LoggedMetrics(pl.Callback):
    """Remember every scalar logged, across resumes.

    Example:
        >>> logged = LoggedMetrics()
        >>> logged.load_state_dict({"metrics": {"train/loss": 0.5}})
        >>> logged.state_dict()
        {'metrics': {'train/loss': 0.5}}
    """

    def __init__(self) -> None:
        self._before: dict[str, float] = {}  # logged before the checkpoint this process resumed
        self._trainer: pl.Trainer | None = None

    def metrics(self, trainer: pl.Trainer) -> dict[str, float]:
        """Every scalar the run logged: this process's values over those from before a resume."""
        return {**self._before, **scalars(trainer.callback_metrics)}

    @override
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._trainer = trainer

    @override
    def state_dict(self) -> dict[str, Any]:
        now = self.metrics(self._trainer) if self._trainer is not None else self._before
        return {"metrics": now}

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        saved = state_dict.get("metrics") if isinstance(state_dict, dict) else None
        if not isinstance(saved, dict) or not all(_is_metric(k, v) for k, v in saved.items()):
            where = getattr(self._trainer, "ckpt_path", None) or "the checkpoint"
            raise CheckpointError(
                f"{where}: the state of {type(self).__name__} is {_short(state_dict)}, expected "
                '{"metrics": {name: number}}. Fix: resume from a checkpoint this run wrote, or '
                "train again in a new directory"
            )
        self._before = {name: float(value) for name, value in saved.items()}


def _is_metric(name: object, value: object) -> bool:
    return isinstance(name, str) and isinstance(value, int | float) and not isinstance(value, bool)


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:77]}..."
