"""Every use of torch's private or version-dependent internals, in one module.

Checked on torch 2.13.0 (:data:`CHECKED_ON`), by reading its source:

- ``torch/nn/modules/module.py``: ``Module.compile()`` stores the compiled call in the
  module's ``_compiled_call_impl`` (``None`` until then), which ``__call__`` runs instead of
  ``_call_impl``: :func:`is_compiled` reads it.

``tests/test_torch_compat.py`` fails when any of these stops holding (on a torch upgrade: run
it first, then update :data:`CHECKED_ON`).
"""

from __future__ import annotations

from typing import Any

CHECKED_ON = "2.13.0"


def is_compiled(module: Any) -> bool:
    """Whether ``module``'s calls run compiled (``nn.Module.compile``)."""
    return getattr(module, "_compiled_call_impl", None) is not None
