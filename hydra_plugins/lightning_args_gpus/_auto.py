"""``trials_per_device=auto``: how many trials share a GPU, from what the first trial used.

The rule, with ``peak`` the first trial's peak device memory (torch's reserved memory plus its
CUDA context), ``total`` the device's memory and ``busy`` its mean utilisation in percent:

    k = min(floor(MEMORY_SHARE * total / peak), floor(BUSY_SHARE / busy), ceiling), at least 1

Its limits: one trial is measured, so a search space whose trials differ much in size (width,
batch size) should set ``trials_per_device`` by hand, or a ``memory_fraction`` cap; utilisation
is NVML's (the share of time a kernel ran, not of the GPU's cores), read only when
``nvidia-ml-py`` is installed, else memory alone decides; a trial that never used CUDA gives 1.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MEMORY_SHARE = 0.9  # of the device's memory, for all its trials together
BUSY_SHARE = 90.0  # percent of the device's time, likewise


@dataclass(frozen=True)
class Measured:
    """What the first trial used of its device; ``None`` where nothing was measured."""

    peak_bytes: int | None = None
    total_bytes: int | None = None
    utilisation: float | None = None


def read(path: Path) -> Measured:
    """The probe file a worker wrote (``_slots.DeviceUse``), each figure checked; a missing,
    unreadable or malformed file or figure counts as not measured."""
    try:
        data: Any = json.loads(path.read_text())
    except (OSError, ValueError):
        return Measured()
    if not isinstance(data, dict):
        return Measured()

    def number(key: str, low: float, high: float) -> float | None:
        value = data.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        return float(value) if low <= value <= high and math.isfinite(value) else None

    peak, total = number("peak_bytes", 1, 2**60), number("total_bytes", 1, 2**60)
    return Measured(
        peak_bytes=None if peak is None else int(peak),
        total_bytes=None if total is None else int(total),
        utilisation=number("utilisation", 0, 100),
    )


def per_device(measured: Measured, ceiling: int) -> tuple[int, str]:
    """Trials per device by the rule above, and why, in words for the sweep's log.

    Example:
        >>> per_device(Measured(2 * 2**30, 80 * 2**30, 20.0), ceiling=8)
        (4, 'the first trial peaked at 2.0 GiB of 80.0 GiB and kept its GPU 20% busy')
        >>> per_device(Measured(), ceiling=8)[0]
        1
    """
    peak, total, busy = measured.peak_bytes, measured.total_bytes, measured.utilisation
    if peak is None or total is None:
        return 1, "the first trial used no GPU memory that could be measured"
    k = min(ceiling, math.floor(MEMORY_SHARE * total / peak))
    why = f"the first trial peaked at {peak / 2**30:.1f} GiB of {total / 2**30:.1f} GiB"
    if busy is not None:
        k = min(k, math.floor(BUSY_SHARE / busy) if busy > 0 else ceiling)
        why += f" and kept its GPU {busy:.0f}% busy"
    else:
        why += " (utilisation not read: nvidia-ml-py is not installed)"
    return max(1, k), why
