"""Readable messages for Hydra's and OmegaConf's config errors.

Hydra reports a composition error as its own message plus OmegaConf's (with ``full_key``,
``reference_type``, ``object_type`` lines) and, for a typo, suggests ``+key=value``, which would
*add* the misspelt key. These translations name the key, the value, what was expected and the
fix, in a few lines.

:func:`lightning_args.hydra_patches.friendly_errors` applies them to a ``hydra.main`` app.
"""

from __future__ import annotations

import re
from enum import Enum

from hydra.errors import ConfigCompositionException, MissingConfigException
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, ValidationError

from lightning_args.errors import (
    ConfigKeyError as UnknownKeyError,
)
from lightning_args.errors import (
    ConfigTypeError,
    LightningArgsError,
    UnknownOptionError,
    closest,
    suggest,
)

#: hydra-optuna-sweeper: its package, its sweeper's option name, and ours.
_THEIR_PACKAGE = "hydra_plugins.hydra_optuna_sweeper"
_THEIR_OPTION = "optuna"
_OUR_OPTION = "lightning_args_optuna"


def translate(error: BaseException) -> LightningArgsError | None:
    """A lightning_args error with a readable message for ``error``, or ``None`` to keep it."""
    if isinstance(error, RuntimeError) and f"'{_THEIR_PACKAGE}." in str(error):
        return _their_sweeper_class(str(error))
    if isinstance(error, MissingConfigException):
        return _unknown_option(error)
    if isinstance(error, ConfigCompositionException):
        cause = error.__cause__
        if isinstance(cause, ConfigKeyError | ConfigAttributeError):
            return _unknown_key(error, cause)
        if isinstance(cause, ValidationError):
            return _wrong_value(cause)
    return None


def _their_sweeper_class(message: str) -> LightningArgsError:
    found = re.search(rf"'({re.escape(_THEIR_PACKAGE)}[\w.]*)'", message)
    name = found.group(1) if found else _THEIR_PACKAGE
    return UnknownOptionError(
        f"hydra.sweeper._target_={name!r} is hydra-optuna-sweeper's class, which is not "
        f"installed: this project's Optuna sweeper is {_OUR_OPTION!r}, with the same keys.\n"
        "  Fix: delete the `_target_:` line under `hydra: sweeper:` in your config, and choose "
        f"the sweeper with `override /hydra/sweeper: {_OUR_OPTION}`"
    )


def _unknown_option(error: MissingConfigException) -> LightningArgsError | None:
    found = re.search(r"Could not find '(?:(.+)/)?([^'/]+)'", str(error))
    if found is None or not error.options:
        return None
    group, option = found.group(1) or "", found.group(2)
    options = sorted(error.options)
    match = closest(option, options)
    if group == "hydra/sweeper" and option == _THEIR_OPTION and _OUR_OPTION in options:
        return UnknownOptionError(
            f"unknown option '{option}' for config group '{group}': that is "
            f"hydra-optuna-sweeper's name; this project's Optuna sweeper is '{_OUR_OPTION}', "
            f"with the same keys.\n  Fix: {group}={_OUR_OPTION} (in a config: "
            f"`override /hydra/sweeper: {_OUR_OPTION}`)"
        )
    return UnknownOptionError(
        f"unknown option '{option}' for config group '{group}'.{suggest(option, options)}\n"
        f"  Available options: {', '.join(options)}\n"
        f"  Fix: {group}={match or '<one of them>'}"
    )


def _unknown_key(
    error: ConfigCompositionException, cause: ConfigKeyError | ConfigAttributeError
) -> LightningArgsError:
    full_key = cause.full_key or str(cause.key)
    parent = full_key.rpartition(".")[0]
    keys = cause.parent_node.keys() if cause.parent_node is not None else []
    valid = [str(k) for k in keys if not str(k).startswith("_") and str(k) != "hydra"]
    # Hydra's message carries the override as it was typed: "use +trainer.max_epoch=3".
    typed = re.search(r"use \+(\S+)", str(error))
    override = typed.group(1) if typed else None
    match = closest(str(cause.key), valid)
    fix = "correct the key"
    if match is not None:
        right = f"{parent}.{match}" if parent else match
        fix = f"{right}={override.partition('=')[2]}" if override else f"use '{right}'"
    schema = f" ({cause.object_type_str})" if parent and cause.object_type_str else ""
    return UnknownKeyError(
        f"unknown key '{full_key}'"
        + (f" in override '{override}'" if override else "")
        + (f". Did you mean '{match}'?" if match else ".")
        + f"\n  Keys of '{parent or '<root>'}'{schema}: {', '.join(valid)}"
        + f"\n  Fix: {fix} (a leading '+' adds a new key on purpose)"
    )


def _wrong_value(cause: ValidationError) -> LightningArgsError:
    full_key = cause.full_key or str(cause.key)
    expected = _expected(cause)
    return ConfigTypeError(
        f"wrong value for '{full_key}': {cause.value!r} is not {expected}.\n"
        f"  Fix: {full_key}=<{expected}>"
    )


def _expected(cause: ValidationError) -> str:
    """What the schema wanted at the failing node, in words: "an int", "one of: min, max"."""
    from omegaconf import ListConfig
    from omegaconf._utils import type_str

    if cause.child_node is not None:
        ref = cause.child_node._metadata.ref_type
    elif isinstance(cause.parent_node, ListConfig):
        ref = cause.parent_node._metadata.element_type
    else:
        return "a valid value"
    if isinstance(ref, type) and issubclass(ref, Enum):
        return "one of: " + ", ".join(member.name for member in ref)
    words = type_str(ref)
    union = re.fullmatch(r"(?:Optional|Union)\[(.*)\]", words)
    return " or ".join(union.group(1).split(", ")) if union else words
