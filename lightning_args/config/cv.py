"""The schema of k-fold cross-validation's settings (``cv``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class CVConfig:
    """How the samples of a :class:`~lightning_args.modules.folds.Foldable` DataModule are split
    into folds (:func:`~lightning_args.modules.folds.fold_splits`).

    Attributes:
        folds: how many folds (at least 2); fold ``k`` validates on the ``k``-th part and
            trains on the others.
        stratify: a key of the DataModule's ``fold_samples()`` (its labels, e.g. ``label``):
            every fold then holds each class in the proportion of the whole.
        groups: a key of ``fold_samples()`` giving each sample's group (a patient, a subject, a
            recording): a group is never split between training and validation.
        repeats: repeated k-fold: the folds drawn ``repeats`` times, each time shuffled anew.
        seed: the shuffling's seed (the folds depend on it and on nothing else).
        parallel: run the folds as parallel jobs when the run is started on its own.
        refit: also train once on all the samples the folds split (in ``refit/``), validate on
            none, and test that model.
        fold: set by a k-fold run on each of its fold runs (``folds/<k>/``): the fold this run
            trains on. ``null``: the k-fold run itself, which runs every fold.
        all_samples: set by a k-fold run on its refit run (``refit/``): this run trains on all
            the samples and validates on none.

    Example:
        >>> CVConfig(folds=3, stratify="label").folds
        3
    """

    folds: int = 5
    stratify: str | None = None
    groups: str | None = None
    repeats: int = 1
    seed: int = 0
    parallel: bool = False
    refit: bool = False
    fold: int | None = None
    all_samples: bool = False

    @property
    def is_kfold_run(self) -> bool:
        """Whether these are the settings of the k-fold run itself, which runs its folds (not of
        one of its fold runs, nor of its refit)."""
        return self.fold is None and not self.all_samples
