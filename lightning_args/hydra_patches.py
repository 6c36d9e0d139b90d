"""The two places where lightning_args reaches into Hydra's internals, each for one app call.

Hydra 1.3 offers no hook for either, so both wrap a private function for the duration of
``@lightning_args.main`` and restore it afterwards; each is skipped if the function is gone (a
future Hydra), which costs only the improvement, never correctness.

- :func:`friendly_errors`: Hydra prints every error of an app through
  ``hydra._internal.utils.run_and_report``. Exceptions are translated
  (:func:`lightning_args.hydra_errors.translate`) before Hydra reports them as before: compact
  message, exit status 1, the full traceback under ``HYDRA_FULL_ERROR=1``, which also turns
  translation off.
- :func:`fast_help`: ``--help`` lists every config group with ~100 calls of
  ``ConfigLoaderImpl.get_group_options``, each of which re-reads the primary config into a fresh
  repository (1.6 s of a 2.1 s ``--help`` here). During ``--help`` only, that repository is
  built once per ``(config_name, overrides)``; the help text is byte for byte the same.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from lightning_args.hydra_errors import translate

HELP_FLAGS = ("--help", "-h", "--hydra-help")


@contextmanager
def _replaced(owner: Any, name: str, make: Callable[[Any], Any]) -> Iterator[None]:
    original = getattr(owner, name, None)
    if original is None:
        yield
        return
    setattr(owner, name, make(original))
    try:
        yield
    finally:
        setattr(owner, name, original)


@contextmanager
def friendly_errors() -> Iterator[None]:
    """While active, Hydra reports config errors with the messages of ``translate``."""
    import hydra._internal.utils as hydra_utils

    def make(original: Callable[[Callable[[], Any]], Any]) -> Callable[[Callable[[], Any]], Any]:
        def run_and_report(func: Callable[[], Any]) -> Any:
            return original(lambda: _translating(func))

        return run_and_report

    with _replaced(hydra_utils, "run_and_report", make):
        yield


def _translating(func: Callable[[], Any]) -> Any:
    try:
        return func()
    except Exception as error:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        friendly = translate(error)
        if friendly is None:
            raise
        raise friendly from None


@contextmanager
def fast_help(argv: list[str] | None = None) -> Iterator[None]:
    """While active, and only when ``argv`` asks for help, Hydra's help reuses one repository."""
    if not any(flag in (sys.argv if argv is None else argv) for flag in HELP_FLAGS):
        yield
        return
    from hydra._internal.config_loader_impl import ConfigLoaderImpl

    def make(original: Callable[..., Any]) -> Callable[..., Any]:
        cache: dict[tuple[str | None, tuple[str, ...]], Any] = {}

        def memoised(self: Any, config_name: str | None, overrides: list[str]) -> Any:
            key = (config_name, tuple(overrides))
            if key not in cache:
                cache[key] = original(self, config_name, overrides)
            return cache[key]

        return memoised

    with _replaced(ConfigLoaderImpl, "_parse_overrides_and_create_caching_repo", make):
        yield


# Hydra's flags that take no value. argparse stops reading options at the first override, so
# ``train.py model=gan -m`` works but ``train.py model=gan -m x=1`` does not: they move first.
_FLAGS = frozenset({"-m", "--multirun", "-r", "--run", "--resolve"})


def flags_first(argv: list[str]) -> list[str]:
    """``argv`` with Hydra's value-less flags moved before the overrides.

    >>> flags_first(["train.py", "model=gan", "-m", "hydra.sweeper.n_trials=6"])
    ['train.py', '-m', 'model=gan', 'hydra.sweeper.n_trials=6']
    >>> flags_first(["train.py", "--cfg", "job", "x=1"])
    ['train.py', '--cfg', 'job', 'x=1']
    """
    script, args = argv[:1], argv[1:]
    if "--" in args:
        return argv
    flags = [a for a in args if a in _FLAGS]
    return [*script, *flags, *(a for a in args if a not in _FLAGS)]
