"""Cross-validation folds: which samples train and which validate in fold ``k``.

A DataModule takes part in k-fold cross-validation through two methods, the protocol
:class:`Foldable`:

- ``fold_samples() -> FoldSamples``: the samples that cross-validation may split (everything
  but the test split), as their number and, by key, per-sample values a split may follow (the
  labels, for stratified folds; a group id, for group folds);
- ``use_fold(train, val)``: from now on, train on the samples at indices ``train`` and validate
  on those at ``val`` (positions in ``fold_samples()``' order); the test split stays as it is.
  ``val`` is empty for a k-fold run's refit (``cv.refit=true``), which trains on every sample.

The folds themselves are computed here (:func:`fold_splits`), the same way for every DataModule,
from the samples' number, keys and ``cv``'s settings only: no library is imported, and the same
settings give the same folds on any machine. Bad settings are one message each, before any
training (:func:`check_foldable`, :func:`fold_splits`).
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from lightning_args.config.cv import CVConfig
from lightning_args.errors import ConfigValueError

_DOCS = "docs/recipes.md#cross-validation"


@dataclass(frozen=True)
class FoldSamples:
    """What a :class:`Foldable` DataModule tells the folds about its samples."""

    count: int
    #: Per-sample values by key, each ``count`` long: ``{"label": [...], "patient": [...]}``.
    keys: Mapping[str, Sequence[Hashable]] = field(default_factory=dict)


@runtime_checkable
class Foldable(Protocol):
    """A DataModule that k-fold cross-validation can split (see the module's docstring).

    Example:
        >>> class Tiny:
        ...     def fold_samples(self) -> FoldSamples:
        ...         return FoldSamples(6, {"label": [0, 1, 0, 1, 0, 1]})
        ...     def use_fold(self, train: Sequence[int], val: Sequence[int]) -> None:
        ...         self.train, self.val = list(train), list(val)
        >>> isinstance(Tiny(), Foldable)
        True
    """

    def fold_samples(self) -> FoldSamples: ...

    def use_fold(self, train: Sequence[int], val: Sequence[int]) -> None: ...


@dataclass(frozen=True)
class Fold:
    """One fold: its number among all folds (``repeat * folds + k``) and its two index lists."""

    index: int
    repeat: int
    train: tuple[int, ...]
    val: tuple[int, ...]


def check_foldable(datamodule: Any) -> Foldable:
    """``datamodule`` if it is :class:`Foldable`; otherwise one message naming what it lacks."""
    if isinstance(datamodule, Foldable):
        return datamodule
    methods = ("fold_samples", "use_fold")
    lacking = [m for m in methods if not callable(getattr(datamodule, m, None))]
    raise ConfigValueError(
        f"data: {type(datamodule).__name__} has no {' or '.join(f'{m}()' for m in lacking)}: "
        "cross-validation (+cv=kfold) needs a DataModule that can give its samples and train on "
        f"a fold of them. Fix: add fold_samples() and use_fold(train, val) ({_DOCS}), or drop "
        "+cv=kfold"
    )


def fold_splits(samples: FoldSamples, cv: CVConfig) -> list[Fold]:
    """Every fold of ``samples`` under ``cv``: ``cv.folds`` per repeat, ``cv.repeats`` times.

    In each repeat the validation parts are disjoint and together cover every sample once; a
    fold trains on all the others. Stratified folds hold each class within one sample of its
    share; group folds never split a group.

    Example:
        >>> folds = fold_splits(FoldSamples(6), CVConfig(folds=3))
        >>> [len(f.val) for f in folds], sorted(i for f in folds for i in f.val)
        ([2, 2, 2], [0, 1, 2, 3, 4, 5])
    """
    _check(samples, cv)
    out: list[Fold] = []
    everything = set(range(samples.count))
    for repeat in range(cv.repeats):
        rng = random.Random(cv.seed * 1_000_003 + repeat)
        if cv.groups is not None:
            parts = _grouped(samples.keys[cv.groups], cv.folds, rng)
        elif cv.stratify is not None:
            parts = _stratified(samples.keys[cv.stratify], cv.folds, rng)
        else:
            order = list(range(samples.count))
            rng.shuffle(order)
            parts = [order[k :: cv.folds] for k in range(cv.folds)]
        for k, part in enumerate(parts):
            val = tuple(sorted(part))
            train = tuple(sorted(everything - set(part)))
            out.append(Fold(index=repeat * cv.folds + k, repeat=repeat, train=train, val=val))
    return out


def _stratified(labels: Sequence[Hashable], folds: int, rng: random.Random) -> list[list[int]]:
    """Each class's samples dealt in turn to the folds; the next class starts where the last
    stopped, so the folds' sizes differ by one sample at most."""
    by_class: dict[Hashable, list[int]] = defaultdict(list)
    for index, label in enumerate(labels):
        by_class[label].append(index)
    parts: list[list[int]] = [[] for _ in range(folds)]
    start = 0
    for label in sorted(by_class, key=repr):  # a fixed order: the folds follow the seed only
        members = by_class[label]
        rng.shuffle(members)
        for i, index in enumerate(members):
            parts[(start + i) % folds].append(index)
        start += len(members)
    return parts


def _grouped(groups: Sequence[Hashable], folds: int, rng: random.Random) -> list[list[int]]:
    """Whole groups, in a shuffled order, each to the fold with the fewest samples so far."""
    by_group: dict[Hashable, list[int]] = defaultdict(list)
    for index, group in enumerate(groups):
        by_group[group].append(index)
    order = sorted(by_group, key=repr)
    rng.shuffle(order)
    parts: list[list[int]] = [[] for _ in range(folds)]
    for group in order:
        smallest = min(range(folds), key=lambda k: len(parts[k]))
        parts[smallest].extend(by_group[group])
    return parts


def apply_fold(datamodule: Any, cv: CVConfig) -> Fold:
    """Make ``datamodule`` train and validate on fold ``cv.fold`` of its samples; with
    ``cv.all_samples`` (a k-fold run's refit), train on all of them and validate on none."""
    foldable = check_foldable(datamodule)
    if cv.all_samples:
        every = tuple(range(foldable.fold_samples().count))
        foldable.use_fold(every, ())
        return Fold(index=-1, repeat=0, train=every, val=())
    folds = fold_splits(foldable.fold_samples(), cv)
    if cv.fold is None or not 0 <= cv.fold < len(folds):
        raise ConfigValueError(
            f"cv.fold={cv.fold!r}: expected a fold from 0 to {len(folds) - 1} "
            f"(cv.folds={cv.folds} x cv.repeats={cv.repeats}). Fix: cv.fold=0, or leave it "
            "unset to run every fold"
        )
    fold = folds[cv.fold]
    foldable.use_fold(fold.train, fold.val)
    return fold


def check_settings(cv: CVConfig) -> None:
    """The settings that need no samples: one message each."""
    if not isinstance(cv.folds, int) or cv.folds < 2:
        raise ConfigValueError(
            f"cv.folds={cv.folds!r}: expected at least 2 folds (fold k validates on one part "
            "and trains on the others). Fix: cv.folds=5"
        )
    if not isinstance(cv.repeats, int) or cv.repeats < 1:
        raise ConfigValueError(f"cv.repeats={cv.repeats!r}: expected at least 1. Fix: cv.repeats=1")
    if cv.stratify is not None and cv.groups is not None:
        raise ConfigValueError(
            f"cv.stratify={cv.stratify!r} with cv.groups={cv.groups!r}: folds that are both "
            "stratified and grouped are not supported. Fix: keep one of them (cv.stratify=null "
            "or cv.groups=null)"
        )


def _check(samples: FoldSamples, cv: CVConfig) -> None:
    check_settings(cv)
    if samples.count < cv.folds:
        raise ConfigValueError(
            f"cv.folds={cv.folds} is more than the {samples.count} samples to split: every fold "
            f"needs one at least. Fix: cv.folds={max(2, min(5, samples.count))}"
        )
    for setting in ("stratify", "groups"):
        key = getattr(cv, setting)
        if key is None:
            continue
        values = samples.keys.get(key)
        if values is None:
            known = ", ".join(sorted(samples.keys)) or "none"
            raise ConfigValueError(
                f"cv.{setting}={key!r}: the DataModule's fold_samples() gives no such key (it "
                f"gives: {known}). Fix: cv.{setting}=<one of them>, or cv.{setting}=null"
            )
        if len(values) != samples.count:
            raise ConfigValueError(
                f"cv.{setting}={key!r}: fold_samples() gives {len(values)} values for "
                f"{samples.count} samples. Fix: one value per sample in the DataModule's "
                "fold_samples()"
            )
        counts = Counter(values)
        if setting == "stratify":
            label, fewest = min(counts.items(), key=lambda item: (item[1], repr(item[0])))
            if fewest < cv.folds:
                raise ConfigValueError(
                    f"cv.stratify={key!r}: class {label!r} has {fewest} sample(s), fewer than "
                    f"cv.folds={cv.folds}, so some fold would lack it. Fix: "
                    f"cv.folds={max(2, fewest)}, or cv.stratify=null"
                )
        elif len(counts) < cv.folds:
            raise ConfigValueError(
                f"cv.groups={key!r}: {len(counts)} group(s) cannot fill cv.folds={cv.folds} "
                f"folds (a group is never split). Fix: cv.folds={max(2, len(counts))}"
            )
