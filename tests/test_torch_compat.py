"""The torch internals of :mod:`lightning_args._compat.torch` still hold."""

from __future__ import annotations

import torch

from lightning_args._compat import torch as compat


def test_the_installed_version_is_the_one_checked_on() -> None:
    assert torch.__version__.split("+")[0] == compat.CHECKED_ON


def test_module_compile_is_seen_as_compiled() -> None:
    module = torch.nn.Linear(2, 2)
    assert not compat.is_compiled(module)
    module.compile()  # compiles lazily, on the first call: nothing is compiled here
    assert compat.is_compiled(module)
