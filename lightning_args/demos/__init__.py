"""Ready-made demo data and models: scikit-learn's 8x8 digits and a composable classifier.

Like ``lightning.pytorch.demos``, they make a first run possible with no download. The classes
load lazily, so importing this package costs nothing until one is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lightning_args._util.lazy import lazy_exports

if TYPE_CHECKING:
    from lightning_args.demos.classifiers import Classifier, CNNEncoder, MLPEncoder, MLPHead
    from lightning_args.demos.digits import DigitsDataModule
    from lightning_args.demos.gan import GAN
    from lightning_args.demos.meta import SinusoidMetaLearner, SinusoidTasks
    from lightning_args.demos.sequences import DelayedRecall, RecurrentTagger

__all__ = [
    "GAN",
    "CNNEncoder",
    "Classifier",
    "DelayedRecall",
    "DigitsDataModule",
    "MLPEncoder",
    "MLPHead",
    "RecurrentTagger",
    "SinusoidMetaLearner",
    "SinusoidTasks",
]

_LAZY = {
    "CNNEncoder": "lightning_args.demos.classifiers",
    "Classifier": "lightning_args.demos.classifiers",
    "MLPEncoder": "lightning_args.demos.classifiers",
    "MLPHead": "lightning_args.demos.classifiers",
    "DigitsDataModule": "lightning_args.demos.digits",
    "GAN": "lightning_args.demos.gan",
    "SinusoidMetaLearner": "lightning_args.demos.meta",
    "SinusoidTasks": "lightning_args.demos.meta",
    "DelayedRecall": "lightning_args.demos.sequences",
    "RecurrentTagger": "lightning_args.demos.sequences",
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
