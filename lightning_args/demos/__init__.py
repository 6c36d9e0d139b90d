"""Ready-made demo data and models: scikit-learn's 8x8 digits and two small classifiers.

Like ``lightning.pytorch.demos``, they make a first run possible with no download. The classes
load lazily, so importing this package costs nothing until one is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lightning_args.demos.classifiers import (
        CNNClassifier,
        DigitsClassifier,
        MLPClassifier,
    )
    from lightning_args.demos.digits import DigitsDataModule

__all__ = ["CNNClassifier", "DigitsClassifier", "DigitsDataModule", "MLPClassifier"]

_LAZY = {
    "CNNClassifier": "lightning_args.demos.classifiers",
    "DigitsClassifier": "lightning_args.demos.classifiers",
    "MLPClassifier": "lightning_args.demos.classifiers",
    "DigitsDataModule": "lightning_args.demos.digits",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
