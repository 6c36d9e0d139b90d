"""#14, the folds: splits that are disjoint and cover the samples, stratified class balance,
group folds that keep groups together, repeats that differ, the DataModule protocol (the digits
and a user's own), and one message for each bad setting."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import pytest

from lightning_args.config.cv import CVConfig
from lightning_args.errors import ConfigValueError
from lightning_args.modules.folds import (
    Fold,
    Foldable,
    FoldSamples,
    check_foldable,
    fold_splits,
)

# 103 samples in 4 classes of unequal size (50, 30, 15, 8), and 26 groups of 1 to 7 samples.
LABELS = [0] * 50 + [1] * 30 + [2] * 15 + [3] * 8
GROUPS = [i // 4 if i < 80 else 20 + (i - 80) // 4 for i in range(103)]
SAMPLES = FoldSamples(len(LABELS), {"label": LABELS, "patient": GROUPS})


def _repeats(folds: list[Fold]) -> dict[int, list[Fold]]:
    out: dict[int, list[Fold]] = {}
    for fold in folds:
        out.setdefault(fold.repeat, []).append(fold)
    return out


@pytest.mark.parametrize(
    "cv",
    [
        CVConfig(folds=5),
        CVConfig(folds=5, stratify="label"),
        CVConfig(folds=4, groups="patient"),
        CVConfig(folds=3, repeats=3, seed=7),
        CVConfig(folds=2, stratify="label", repeats=2),
    ],
    ids=["plain", "stratified", "grouped", "repeated", "stratified-repeated"],
)
def test_each_repeats_folds_are_disjoint_and_cover_every_sample(cv: CVConfig) -> None:
    folds = fold_splits(SAMPLES, cv)
    assert [f.index for f in folds] == list(range(cv.folds * cv.repeats))
    for repeat, members in _repeats(folds).items():
        assert len(members) == cv.folds, repeat
        validated = [i for fold in members for i in fold.val]
        assert sorted(validated) == list(range(SAMPLES.count))  # each sample once
        for fold in members:
            assert set(fold.train) == set(range(SAMPLES.count)) - set(fold.val)
            assert fold.val  # none empty


def test_stratified_folds_hold_each_class_in_its_share() -> None:
    folds = fold_splits(SAMPLES, CVConfig(folds=5, stratify="label"))
    for fold in folds:
        counts = Counter(LABELS[i] for i in fold.val)
        for label, total in Counter(LABELS).items():
            assert abs(counts[label] - total / 5) < 1, (fold.index, label, counts)
    sizes = [len(f.val) for f in folds]
    assert max(sizes) - min(sizes) <= 1
    # Control: plain folds of the same samples miss that balance somewhere.
    plain = fold_splits(SAMPLES, CVConfig(folds=5))
    assert any(
        abs(Counter(LABELS[i] for i in f.val)[label] - total / 5) >= 1
        for f in plain
        for label, total in Counter(LABELS).items()
    )


def test_group_folds_never_split_a_group() -> None:
    folds = fold_splits(SAMPLES, CVConfig(folds=4, groups="patient"))
    for fold in folds:
        assert not {GROUPS[i] for i in fold.val} & {GROUPS[i] for i in fold.train}
    sizes = [len(f.val) for f in folds]
    assert max(sizes) - min(sizes) <= max(Counter(GROUPS).values())
    # Control: plain folds of the same samples split groups.
    plain = fold_splits(SAMPLES, CVConfig(folds=4))
    assert any({GROUPS[i] for i in f.val} & {GROUPS[i] for i in f.train} for f in plain)


@pytest.mark.parametrize("setting", [{}, {"stratify": "label"}, {"groups": "patient"}])
def test_repeats_differ_and_the_seed_alone_decides_the_folds(setting: dict[str, str]) -> None:
    folds = fold_splits(SAMPLES, CVConfig(folds=4, repeats=2, seed=1, **setting))
    first, second = _repeats(folds).values()
    assert [f.val for f in first] != [f.val for f in second]
    assert folds == fold_splits(SAMPLES, CVConfig(folds=4, repeats=2, seed=1, **setting))
    other = fold_splits(SAMPLES, CVConfig(folds=4, repeats=2, seed=2, **setting))
    assert [f.val for f in other] != [f.val for f in folds]


@pytest.mark.parametrize(
    ("cv", "samples", "said"),
    [
        (CVConfig(folds=1), SAMPLES, "cv.folds=1: expected at least 2 folds"),
        (CVConfig(folds=200), SAMPLES, "cv.folds=200 is more than the 103 samples"),
        (CVConfig(repeats=0), SAMPLES, "cv.repeats=0: expected at least 1"),
        (CVConfig(folds=10, stratify="label"), SAMPLES, "class 3 has 8 sample(s), fewer than"),
        (CVConfig(stratify="labl"), SAMPLES, "cv.stratify='labl': the DataModule's fold_samples"),
        (CVConfig(groups="site"), SAMPLES, "gives no such key (it gives: label, patient)"),
        (
            CVConfig(folds=5, groups="patient"),
            FoldSamples(6, {"patient": [0, 0, 1, 1, 2, 2]}),
            "3 group(s) cannot fill cv.folds=5",
        ),
        (CVConfig(stratify="label", groups="patient"), SAMPLES, "not supported"),
        (CVConfig(stratify="label"), FoldSamples(5, {"label": [0, 1]}), "gives 2 values for 5"),
    ],
    ids=[
        "one-fold",
        "more-folds-than-samples",
        "no-repeats",
        "more-folds-than-a-class",
        "unknown-stratify-key",
        "unknown-groups-key",
        "fewer-groups-than-folds",
        "stratified-and-grouped",
        "keys-of-the-wrong-length",
    ],
)
def test_bad_settings_are_one_message_with_the_fix(
    cv: CVConfig, samples: FoldSamples, said: str
) -> None:
    with pytest.raises(ConfigValueError) as raised:
        fold_splits(samples, cv)
    message = str(raised.value)
    assert said in message
    assert "Fix: " in message
    assert "\n" not in message


class OwnData:
    """A user's DataModule with the documented hook and nothing else of ours."""

    def __init__(self) -> None:
        self.labels = [i % 3 for i in range(30)]
        self.fold: tuple[list[int], list[int]] | None = None

    def fold_samples(self) -> FoldSamples:
        return FoldSamples(len(self.labels), {"label": self.labels})

    def use_fold(self, train: Sequence[int], val: Sequence[int]) -> None:
        self.fold = (list(train), list(val))


def test_a_users_datamodule_needs_only_the_hook_and_one_without_it_is_refused() -> None:
    own = OwnData()
    assert check_foldable(own) is own
    (first, *_) = fold_splits(own.fold_samples(), CVConfig(folds=3, stratify="label"))
    own.use_fold(first.train, first.val)
    assert own.fold is not None
    assert len(own.fold[1]) == 10

    class Plain:
        def setup(self, stage: str) -> None: ...

    assert not isinstance(Plain(), Foldable)
    with pytest.raises(ConfigValueError, match=r"Plain has no fold_samples\(\) or use_fold\(\)"):
        check_foldable(Plain())


def test_the_digits_split_their_training_and_validation_samples_and_keep_the_test_split() -> None:
    from lightning_args.demos import DigitsDataModule

    plain = DigitsDataModule(batch_size=32)
    plain.setup("fit")
    digits = DigitsDataModule(batch_size=32)
    samples = digits.fold_samples()
    assert samples.count == len(plain.splits["train"]["label"]) + len(plain.splits["val"]["label"])
    assert Counter(samples.keys["label"]) == Counter(
        plain.splits["train"]["label"].tolist() + plain.splits["val"]["label"].tolist()
    )
    folds = fold_splits(samples, CVConfig(folds=5, stratify="label"))
    digits.use_fold(folds[2].train, folds[2].val)
    digits.setup("fit")  # keeps the fold
    assert len(digits.splits["val"]["label"]) == len(folds[2].val)
    assert len(digits.splits["train"]["label"]) == len(folds[2].train)
    assert digits.splits["test"]["label"].tolist() == plain.splits["test"]["label"].tolist()
    mean = float(digits.splits["train"]["image"].mean())
    assert abs(mean) < 1e-5  # scaled with the fold's own training images
