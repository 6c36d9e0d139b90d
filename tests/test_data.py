"""In-memory tensor batches: every sample once per epoch, reproducible shuffles, exact lengths."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lightning_args import ConfigValueError, TensorBatches
from lightning_args.demos import DigitsDataModule

sizes = st.integers(min_value=1, max_value=200)


@settings(max_examples=60, deadline=None)
@given(n=sizes, batch_size=st.integers(1, 64), shuffle=st.booleans(), drop_last=st.booleans())
def test_an_epoch_covers_every_sample_once(
    n: int, batch_size: int, shuffle: bool, drop_last: bool
) -> None:
    batches = TensorBatches(
        (torch.arange(n), torch.arange(n) * 2), batch_size, shuffle=shuffle, drop_last=drop_last
    )
    seen = list(batches)
    assert len(seen) == len(batches)
    if not seen:  # drop_last with fewer samples than one batch
        assert drop_last
        assert n < batch_size
        return
    index = torch.cat([b[0] for b in seen])
    torch.testing.assert_close(torch.cat([b[1] for b in seen]), index * 2)  # rows stay aligned
    full = [len(b[0]) == batch_size for b in seen]
    assert all(full if drop_last else full[:-1])
    expected = n - n % batch_size if drop_last else n
    assert len(set(index.tolist())) == len(index) == expected
    if not shuffle:
        assert index.tolist() == list(range(expected))
    elif not drop_last:
        assert sorted(index.tolist()) == list(range(n))


@given(seed=st.integers(0, 2**31 - 1), epoch=st.integers(0, 1000))
def test_shuffle_depends_on_seed_and_epoch_only(seed: int, epoch: int) -> None:
    def order() -> list[int]:
        batches = TensorBatches((torch.arange(50),), 7, shuffle=True, seed=seed)
        batches.set_epoch(epoch)
        return torch.cat([b[0] for b in batches]).tolist()

    assert order() == order()
    other = TensorBatches((torch.arange(50),), 7, shuffle=True, seed=seed)
    other.set_epoch(epoch + 1)
    assert torch.cat([b[0] for b in other]).tolist() != order()


def test_dict_batches_keep_their_keys() -> None:
    batches = TensorBatches({"image": torch.zeros(5, 2), "label": torch.arange(5)}, 2)
    first = next(iter(batches))
    assert isinstance(first, dict)
    assert set(first) == {"image", "label"}


@pytest.mark.parametrize("batch_size", [0, -3])
def test_bad_batch_size_is_refused(batch_size: int) -> None:
    with pytest.raises(ConfigValueError, match="batch_size"):
        TensorBatches((torch.arange(3),), batch_size)


def test_unequal_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="one length"):
        TensorBatches((torch.arange(3), torch.arange(4)), 2)


def test_digits_split_is_fixed_by_split_seed_alone() -> None:
    def test_labels(split_seed: int, global_seed: int) -> list[int]:
        torch.manual_seed(global_seed)
        dm = DigitsDataModule(split_seed=split_seed)
        dm.setup("fit")
        return dm.splits["test"]["label"].tolist()

    assert test_labels(0, 1) == test_labels(0, 2)
    assert test_labels(0, 1) != test_labels(1, 1)


def test_digits_splits_are_disjoint_and_complete() -> None:
    dm = DigitsDataModule(val_fraction=0.1, test_fraction=0.2)
    dm.setup("fit")
    sizes = {name: len(split["label"]) for name, split in dm.splits.items()}
    assert sum(sizes.values()) == 1797
    assert sizes["test"] == round(1797 * 0.2)
    assert sizes["val"] == round(1797 * 0.1)
    x = dm.splits["train"]["image"]
    assert abs(float(x.mean())) < 1e-4
    assert float(x.std()) == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize(("val", "test"), [(0.0, 0.2), (0.5, 0.5), (1.2, 0.1)])
def test_digits_bad_fractions_are_refused(val: float, test: float) -> None:
    with pytest.raises(ConfigValueError, match="data\\."):
        DigitsDataModule(val_fraction=val, test_fraction=test)
