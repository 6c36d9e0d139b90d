"""Samples of every rank in one tensor, for metrics that are not means (an MMD, an AUC)."""

from __future__ import annotations

import lightning.pytorch as pl
import torch


def gather_rows(module: pl.LightningModule, rows: torch.Tensor) -> torch.Tensor:
    """``rows`` of every process, concatenated in rank order; ``rows`` itself on one process.

    Ranks may hold different numbers of rows: each is padded to the largest for the gather and
    trimmed after it.

    Example:
        >>> module = pl.LightningModule()  # one process
        >>> gather_rows(module, torch.ones(3, 2)).shape
        torch.Size([3, 2])
    """
    distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
    if not distributed or torch.distributed.get_world_size() == 1:
        return rows
    counts = module.all_gather(torch.tensor(len(rows), device=rows.device))
    assert isinstance(counts, torch.Tensor)  # a tensor in, a tensor out
    sizes = [int(n) for n in counts.tolist()]
    padded = rows.new_zeros((max(sizes), *rows.shape[1:]))
    padded[: len(rows)] = rows
    gathered = module.all_gather(padded)
    assert isinstance(gathered, torch.Tensor)
    return torch.cat([part[:size] for part, size in zip(gathered, sizes, strict=True)])
