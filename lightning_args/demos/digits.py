"""scikit-learn's 8x8 digits as a LightningDataModule of in-memory tensor batches."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import lightning.pytorch as pl
import torch

from lightning_args.errors import ConfigValueError
from lightning_args.modules.data import TensorBatches
from lightning_args.modules.folds import FoldSamples

Split = dict[str, torch.Tensor]


class DigitsDataModule(pl.LightningDataModule):
    """1797 grey 8x8 images of digits 0-9, as ``{"image": ..., "label": ...}`` batches.

    Images are ``float32`` of shape ``(1, 8, 8)``, standardised with the training split's mean
    and standard deviation (``scale="standard"``) or mapped to [-1, 1] (``scale="unit"``, for
    a generator with a tanh output); labels are ``int64``. The split depends on ``split_seed`` only.
    With ``cache_dir`` the prepared splits are cached there
    (:func:`lightning_args.run.cache.cached`), shared by runs and sweep jobs.

    Example:
        >>> dm = DigitsDataModule(batch_size=32)
        >>> dm.setup("fit")
        >>> batch = next(iter(dm.train_dataloader()))
        >>> tuple(batch["image"].shape), batch["label"].dtype
        ((32, 1, 8, 8), torch.int64)
    """

    def __init__(
        self,
        batch_size: int = 64,
        val_fraction: float = 0.15,
        test_fraction: float = 0.2,
        split_seed: int = 0,
        scale: str = "standard",
        cache_dir: str | None = None,
    ) -> None:
        super().__init__()
        if scale not in ("standard", "unit"):
            raise ConfigValueError(
                f"data.scale={scale!r} is not valid: expected 'standard' (zero mean, unit "
                "variance) or 'unit' (pixels in [-1, 1]). Fix: data.scale=standard"
            )
        self.scale = scale
        for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
            if not 0.0 < value < 1.0:
                raise ConfigValueError(
                    f"data.{name}={value} is not valid: expected a fraction between 0 and 1. "
                    f"Fix: data.{name}=0.15"
                )
        if val_fraction + test_fraction >= 1.0:
            raise ConfigValueError(
                f"data.val_fraction + data.test_fraction = {val_fraction + test_fraction} leaves "
                "no training data: expected a sum below 1. Fix: lower one of them"
            )
        self.batch_size = batch_size
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self.split_seed = split_seed
        self.cache_dir = cache_dir
        self.splits: dict[str, Split] = {}

    def setup(self, stage: str) -> None:
        if self.splits:
            return
        if self.cache_dir is None:
            self.splits = self._prepare()
            return
        from lightning_args.run.cache import cached

        key = {
            "dataset": "sklearn.datasets.load_digits",
            "val_fraction": self.val_fraction,
            "test_fraction": self.test_fraction,
            "split_seed": self.split_seed,
            "scale": self.scale,
        }
        self.splits = cached(self._prepare, key=key, cache_dir=self.cache_dir, name="digits")

    def _prepare(self) -> dict[str, Split]:
        images, labels, parts = self._parts
        return self._normalized(images, labels, parts)

    @functools.cached_property
    def _parts(self) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """Raw images and labels, and the indices of the test, val and train splits (read once:
        a fold run asks for them twice, through fold_samples and use_fold)."""
        from sklearn.datasets import load_digits

        digits = load_digits()
        images = torch.as_tensor(digits.images, dtype=torch.float32).unsqueeze(1)
        labels = torch.as_tensor(digits.target, dtype=torch.int64)
        order = torch.randperm(
            len(labels), generator=torch.Generator().manual_seed(self.split_seed)
        )
        n_test = round(len(order) * self.test_fraction)
        n_val = round(len(order) * self.val_fraction)
        parts = {
            "test": order[:n_test],
            "val": order[n_test : n_test + n_val],
            "train": order[n_test + n_val :],
        }
        return images, labels, parts

    def _normalized(
        self, images: torch.Tensor, labels: torch.Tensor, parts: dict[str, torch.Tensor]
    ) -> dict[str, Split]:
        """The splits, scaled with the training split's statistics."""
        if self.scale == "unit":  # pixels are 0..16
            mean, std = torch.tensor(8.0), torch.tensor(8.0)
        else:
            train = images[parts["train"]]
            mean, std = train.mean(), train.std()
        return {
            name: {"image": (images[idx] - mean) / std, "label": labels[idx]}
            for name, idx in parts.items()
        }

    # --- cross-validation (lightning_args.modules.folds.Foldable) ------------------------

    def fold_samples(self) -> FoldSamples:
        """The training and validation splits together (the test split stays out), labelled
        ``label``."""
        _, labels, parts = self._parts
        pool = self._pool(parts)
        return FoldSamples(len(pool), {"label": labels[pool].tolist()})

    def use_fold(self, train: Sequence[int], val: Sequence[int]) -> None:
        """Train on ``train`` and validate on ``val`` (positions in :meth:`fold_samples`),
        scaled with the fold's own training images; the test split is the usual one."""
        images, labels, parts = self._parts
        pool = self._pool(parts)
        fold = {
            "test": parts["test"],
            "val": pool[torch.as_tensor(list(val), dtype=torch.int64)],
            "train": pool[torch.as_tensor(list(train), dtype=torch.int64)],
        }
        self.splits = self._normalized(images, labels, fold)

    @staticmethod
    def _pool(parts: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.cat([parts["train"], parts["val"]])

    def _batches(self, split: str, *, shuffle: bool) -> TensorBatches:
        # The shuffle seed follows the global seed (seed_everything), the split does not.
        seed = int(torch.initial_seed() % 2**31)
        return TensorBatches(self.splits[split], self.batch_size, shuffle=shuffle, seed=seed)

    def train_dataloader(self) -> TensorBatches:
        return self._batches("train", shuffle=True)

    def val_dataloader(self) -> TensorBatches:
        return self._batches("val", shuffle=False)

    def test_dataloader(self) -> TensorBatches:
        return self._batches("test", shuffle=False)
