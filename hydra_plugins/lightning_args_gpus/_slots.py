"""What runs in a worker process: a job in a slot of one GPU
(:func:`lightning_args.callbacks.devices.slot`), measured when ``trials_per_device=auto`` asks.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lightning_args.callbacks.devices import Slots, claimed, slot

_SAMPLE_S = 0.5  # between two readings of the GPU's utilisation


def cap_memory(fraction: float) -> None:
    """At most ``fraction`` of the device's memory for this process (where CUDA is)."""
    import torch

    if torch.cuda.is_available():
        torch.cuda.set_per_process_memory_fraction(fraction, 0)


@dataclass(frozen=True)
class OnDevice:
    """A job's task function, run in its worker's own slot of one GPU.

    ``probe``: a file to write what the job used of its device into (:class:`DeviceUse`), for
    ``trials_per_device=auto``. It reaches the workers as the task does (shipped once).
    """

    task: Callable[[Any], Any]
    slots: Slots
    memory_fraction: float | None = None
    probe: str | None = None

    def __call__(self, cfg: Any) -> Any:
        first = claimed() is None
        with slot(self.slots):
            if first and self.memory_fraction is not None:
                cap_memory(self.memory_fraction)
            if self.probe is None:
                return self.task(cfg)
            use = DeviceUse()
            try:
                return self.task(cfg)
            finally:
                use.write(Path(self.probe))


class DeviceUse:
    """What a job used of its GPU, measured while it runs: the peak of memory torch's allocator
    reserved plus what the process holds outside it (the CUDA context), and the mean
    utilisation read every half second once CUDA has started (through NVML, when
    ``nvidia-ml-py`` is installed; none otherwise)."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._done.wait(_SAMPLE_S):
            torch = sys.modules.get("torch")
            if torch is None or not torch.cuda.is_initialized():
                continue
            try:
                self.samples.append(float(torch.cuda.utilization()))
            except Exception:  # no NVML here (nvidia-ml-py missing): memory alone decides
                return

    def write(self, path: Path) -> None:
        self._done.set()
        self._thread.join()
        figures: dict[str, float | None] = {"peak_bytes": None, "total_bytes": None}
        torch = sys.modules.get("torch")
        if torch is not None and torch.cuda.is_initialized():
            free, total = torch.cuda.mem_get_info()
            outside = max(0, total - free - torch.cuda.memory_reserved())
            peak = torch.cuda.max_memory_reserved() + outside
            figures = {"peak_bytes": peak, "total_bytes": total}
        figures["utilisation"] = sum(self.samples) / len(self.samples) if self.samples else None
        path.write_text(json.dumps(figures))
