"""Readable messages for Hydra's and OmegaConf's config errors.

Hydra reports a composition error as its own message plus OmegaConf's (with ``full_key``,
``reference_type``, ``object_type`` lines) and, for a typo, suggests ``+key=value``, which would
*add* the misspelt key. These translations name the key, the value, what was expected and the
fix, in a few lines.

:func:`lightning_args._compat.hydra.friendly_errors` applies them to a ``hydra.main`` app.
"""

from __future__ import annotations

import re
from enum import Enum
from typing import Any

from hydra.errors import ConfigCompositionException, MissingConfigException
from omegaconf import ListConfig
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, ValidationError

from lightning_args._compat.omegaconf import declared_type, type_words
from lightning_args.errors import (
    AcceleratorError,
    ConfigTypeError,
    ConfigValueError,
    JobError,
    LightningArgsError,
    NonFiniteLossError,
    OutOfMemoryError,
    UnknownOptionError,
    closest,
    suggest,
)
from lightning_args.errors import (
    ConfigKeyError as UnknownKeyError,
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
    ref = declared_type(cause)
    if ref is None:
        return "a valid value"
    if isinstance(ref, type) and issubclass(ref, Enum):
        return "one of: " + ", ".join(member.name for member in ref)
    words = type_words(ref)
    union = re.fullmatch(r"(?:Optional|Union)\[(.*)\]", words)
    return " or ".join(union.group(1).split(", ")) if union else words


# --- errors after composition: the error boundary ---------------------------------------------
#
# :func:`explain` turns any exception a job or a ``lightning-args`` command can meet (torch,
# Lightning, Hydra's instantiate, OmegaConf, Optuna, the file system, the user's own code) into a
# lightning_args error of a few lines. Nothing here imports torch, Lightning or Optuna: families
# are recognised by type *name*, module and message, so explaining an error costs no import.

#: Lines of a message shown at most, and characters of a foreign message quoted at most.
_MAX_QUOTE = 240

#: torch.optim's argument checks ("Invalid learning rate: -1.0") -> the argument, what is valid.
_OPTIMIZER_ARGS: list[tuple[str, str, str]] = [
    (r"Invalid learning rate: (\S+)", "lr", "a learning rate >= 0, e.g. 1e-3"),
    (r"Invalid epsilon value: (\S+)", "eps", "an epsilon >= 0, e.g. 1e-8"),
    (r"Invalid beta parameter at index (\d): (\S+)", "betas", "betas in [0, 1), e.g. [0.9,0.999]"),
    (r"Invalid weight_decay value: (\S+)", "weight_decay", "a weight decay >= 0, e.g. 0.01"),
    (r"Invalid momentum value: (\S+)", "momentum", "a momentum >= 0, e.g. 0.9"),
    (r"Invalid dampening value: (\S+)", "dampening", "a dampening >= 0"),
    (r"Nesterov momentum requires", "nesterov", "nesterov only with momentum > 0, dampening 0"),
]

#: What Lightning's Trainer refuses, by the word its message starts from -> the trainer key.
_TRAINER_WORDS: list[tuple[str, str, str]] = [
    (r"devices", "devices", "trainer.devices=1 (or auto)"),
    (r"strategy", "strategy", "trainer.strategy=auto (or ddp)"),
    (r"[Pp]recision", "precision", "trainer.precision=32-true (or bf16-mixed, 16-mixed)"),
    (r"accelerator|backend|GPU|gpu|TPU|MPS|CUDA", "accelerator", "trainer=cpu"),
    (r"num_nodes", "num_nodes", "trainer.num_nodes=1"),
]


def explain(error: BaseException, cfg: Any = None, *, what: str = "the run") -> LightningArgsError:
    """A lightning_args error of a few lines for ``error``: the config key and value (or the file)
    that failed, what was expected, and the fix.

    ``error`` as it is when it is one already; a known family (an optimizer's or scheduler's
    argument, Lightning's Trainer options, out of memory, a NaN loss, a missing or unreadable
    file, an OmegaConf or YAML error) translated; anything else said in one line with where it
    was raised. ``cfg``, the job's config, lets a message quote the value a key holds; ``what``
    names what failed ("the run", "lightning-args show").
    """
    if isinstance(error, LightningArgsError):
        return error
    friendly = translate(error) if isinstance(error, Exception) else None
    if friendly is not None:
        return friendly
    key, root = _instantiated_key(error)
    families = (
        _optimizer_arg,
        _trainer_option,
        _out_of_memory,
        _nan,
        _unused_parameters,
        _file,
        _yaml,
        _omegaconf,
    )
    for family in families:
        found = family(root, key, cfg)
        if found is not None:
            return found
    return _unknown(root, key, what)


def _instantiated_key(error: BaseException) -> tuple[str | None, BaseException]:
    """Hydra's ``InstantiationException`` ("Error in call to target ..., full_key: trainer")
    unwrapped: the config key it names, and the exception it wraps."""
    key: str | None = None
    while type(error).__name__ == "InstantiationException" and error.__cause__ is not None:
        found = re.search(r"full_key: (\S+)", str(error))
        key = key or (found.group(1) if found else None)
        error = error.__cause__
    return key, error


def _frames(error: BaseException) -> list[tuple[str, int, str]]:
    """``(file, line, function)`` of each frame of ``error``'s traceback, outermost first."""
    import traceback

    return [(f.filename, f.lineno or 0, f.name) for f in traceback.extract_tb(error.__traceback__)]


def _raised_in(error: BaseException, *parts: str) -> bool:
    """Whether the innermost frame of ``error`` is in a file whose path contains one of
    ``parts`` (``torch/optim/``), with ``/`` as the separator whatever the platform."""
    frames = _frames(error)
    return bool(frames) and any(p in frames[-1][0].replace("\\", "/") for p in parts)


def headline(error: BaseException) -> str:
    """The first line of ``error``'s message, or its type's name when it has none.

    Example:
        >>> headline(ValueError("lr=-1: refused\\nFix: lr=0.001")), headline(KeyError())
        ('lr=-1: refused', 'KeyError')
    """
    return next(iter(str(error).strip().splitlines()), type(error).__name__)


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= _MAX_QUOTE else line[: _MAX_QUOTE - 3] + "..."


def _value(cfg: Any, key: str) -> Any:
    """The value at ``key`` in ``cfg`` as written (interpolations unresolved), or ``None``."""
    from omegaconf import DictConfig, OmegaConf

    if not isinstance(cfg, DictConfig):
        return None
    try:
        node = OmegaConf.select(cfg, key, throw_on_resolution_failure=False)
    except Exception:  # an unknown key, a broken interpolation: no value to quote
        return None
    if isinstance(node, DictConfig | ListConfig):
        return OmegaConf.to_container(node, resolve=False)
    return node


def _optimizer_node(cfg: Any, arg: str, value: str | None) -> str:
    """The config key of the optimizer whose ``arg`` holds ``value``: ``optimizer``, or
    ``optimizers.<name>.optimizer`` when a module has several."""
    named = _value(cfg, "optimizers") or {}
    for name in named:
        node = f"optimizers.{name}.optimizer"
        if value is None or str(_value(cfg, f"{node}.{arg}")) == value:
            return node
    return "optimizer"


def _optimizer_arg(error: BaseException, key: str | None, cfg: Any) -> LightningArgsError | None:
    if not isinstance(error, ValueError):
        return None
    message = str(error)
    scheduler = _raised_in(error, "torch/optim/lr_scheduler")
    if scheduler:
        words = re.search(
            r"\b(?:Expected|must be).*?\b([a-z][a-z_]*[a-z])\b,? but got (\S+)", message
        )
        arg = words.group(1) if words else None
        full = f"scheduler.{arg}" if arg else (key or "scheduler")
        value = _value(cfg, full) if arg else None
        shown = f"={value}" if value is not None and not isinstance(value, dict) else ""
        return ConfigValueError(
            f"{full}{shown}: torch's {_target(cfg, 'scheduler')} refuses it: "
            f"{_first_line(message)}.\n"
            f"  Fix: {full}=<a valid value> (see torch.optim.lr_scheduler's documentation)"
        )
    for pattern, arg, expected in _OPTIMIZER_ARGS:
        found = re.search(pattern, message)
        if found is None:
            continue
        value = found.group(found.lastindex) if found.lastindex else None
        node = _optimizer_node(cfg, arg, value if arg != "betas" else None)
        full = f"{node}.{arg}"
        shown = _value(cfg, full)
        return ConfigValueError(
            f"{full}={shown if shown is not None else value}: torch's "
            f"{_target(cfg, node)} refuses it ({_first_line(message)}). Expected {expected}.\n"
            f"  Fix: {full}=<{expected.split(',')[0].removeprefix('a ').removeprefix('an ')}>"
        )
    return None


def _target(cfg: Any, node: str) -> str:
    target = _value(cfg, f"{node}._target_")
    return str(target).rpartition(".")[2] if target else node


def _trainer_option(error: BaseException, key: str | None, cfg: Any) -> LightningArgsError | None:
    """Lightning's refusals of the Trainer's options (``MisconfigurationException``, its
    ``ValueError`` for a strategy or precision name), raised while the Trainer is made."""
    if key is not None and key != "trainer":
        return None
    # Hydra's full_key says the Trainer was being made; without it, Lightning's own modules do.
    lightning = (
        key == "trainer"
        or type(error).__name__ == "MisconfigurationException"
        or _raised_in(error, "lightning/pytorch/trainer/connectors/", "lightning/fabric/connector")
    )
    if not lightning or not isinstance(error, Exception):
        return None
    message = str(error)
    for pattern, option, fix in _TRAINER_WORDS:
        if re.search(pattern, message):
            full = f"trainer.{option}"
            value = _value(cfg, full)
            shown = f"={value!r}" if value is not None else ""
            return AcceleratorError(
                f"{full}{shown}: Lightning refuses it: {_first_line(_no_links(message))}\n"
                f"  Fix: {fix}"
            )
    return AcceleratorError(
        f"trainer: Lightning refuses its options: {_first_line(_no_links(message))}\n"
        "  Fix: correct the trainer.* value it names"
    )


def _no_links(message: str) -> str:
    return re.sub(r"\s*(Find a complete list|For more information|See https?://).*$", "", message)


def _out_of_memory(error: BaseException, key: str | None, cfg: Any) -> LightningArgsError | None:
    message = str(error)
    cuda = type(error).__name__ == "OutOfMemoryError" or "CUDA out of memory" in message
    host = isinstance(error, MemoryError) or "can't allocate memory" in message
    if not (cuda or host):
        return None
    size = re.search(r"(?:Tried to allocate|tried to allocate) ([\d.]+ ?\w+)", message)
    amount = size.group(1) if size else "more than is free"
    if amount.endswith(" bytes") or amount.isdigit():
        amount = f"{int(amount.split()[0]) / 2**30:.1f} GiB"
    batch = _value(cfg, "data.batch_size")
    where = "GPU" if cuda else "host (CPU)"
    if key is not None and key.startswith("model"):
        node = _value(cfg, key)
        shown = _first_line(f"{key}={node}") if node is not None else key
        return OutOfMemoryError(
            f"out of {where} memory while building {shown}: it asked for {amount}.\n"
            f"  Expected a model that fits in memory. Fix: make {key} smaller"
        )
    return OutOfMemoryError(
        f"out of {where} memory: an allocation of {amount} failed"
        + (f" with data.batch_size={batch}" if batch is not None else "")
        + ".\n  Fix: a smaller batch, e.g. data.batch_size="
        + (str(max(1, int(batch) // 2)) if isinstance(batch, int) else "<half of it>")
        + ", trainer.precision=bf16-mixed, or a smaller model"
    )


def _nan(error: BaseException, key: str | None, cfg: Any) -> LightningArgsError | None:
    """torch's anomaly detection (``trainer.detect_anomaly=true``) finding a NaN."""
    found = re.search(r"Function '(\w+)' returned (nan|inf) values", str(error))
    if found is None:
        return None
    lr = _value(cfg, "optimizer.lr")
    return NonFiniteLossError(
        f"training produced {'NaN' if found.group(2) == 'nan' else 'infinite'} values: anomaly "
        "detection found them in the backward "
        f"pass of {found.group(1)}. Expected finite values"
        + (f" (optimizer.lr={lr} may be too large)" if lr is not None else "")
        + ".\n  Fix: a smaller optimizer.lr, or trainer.gradient_clip_val=1.0"
    )


def _unused_parameters(
    error: BaseException, key: str | None, cfg: Any
) -> LightningArgsError | None:
    """DDP's reducer finding parameters that a step's loss did not use (torch's words, and
    Lightning 2.6's that replace them)."""
    message = str(error)
    lightning = "parameters that were not used in producing the loss"
    torch = "Expected to have finished reduction in the prior iteration"
    if lightning not in message and torch not in message:
        return None
    strategy = _value(cfg, "trainer.strategy")
    return ConfigValueError(
        f"trainer.strategy={strategy or 'ddp'}: DDP found parameters that a step's loss did not "
        "use, as a module with several named optimizers (a GAN's generator during the "
        "discriminator's step) or branches chosen per batch has. Expected every parameter "
        "in every loss by this strategy.\n  Fix: trainer.strategy=ddp_find_unused_parameters_true"
    )


def _file(error: BaseException, key: str | None, cfg: Any) -> LightningArgsError | None:
    import errno

    if not isinstance(error, OSError) or not error.filename:
        return None
    name = str(error.filename)
    reason = error.strerror or _first_line(str(error))
    fixes = {
        errno.ENOENT: "check the path (it may have been moved or deleted)",
        errno.EACCES: "make it accessible, or choose another place (paths.output_root=...)",
        errno.EPERM: "make it accessible, or choose another place (paths.output_root=...)",
        errno.EROFS: "choose a writable place (paths.output_root=...)",
        errno.ENOSPC: "free some space, or choose another file system (paths.output_root=...)",
        errno.EISDIR: "name a file, not a directory",
        errno.ENOTDIR: "a part of the path is a file, not a directory: correct the path",
    }
    fix = fixes.get(error.errno or 0, "correct the path or its permissions")
    return JobError(f"{name!r}: {reason}{f' ({key})' if key else ''}.\n  Fix: {fix}")


def _yaml(error: BaseException, key: str | None, cfg: Any) -> LightningArgsError | None:
    """A YAML file that does not parse (a run's ``.hydra/config.yaml`` cut short or edited)."""
    mark = getattr(error, "problem_mark", None)
    if not type(error).__module__.startswith("yaml") or mark is None:
        return None
    problem = getattr(error, "problem", None) or _first_line(str(error))
    return JobError(
        f"{mark.name!r} line {mark.line + 1}: not valid YAML ({problem}).\n"
        "  Fix: restore the file from a copy, or delete its run directory if it is beyond repair"
    )


def _omegaconf(error: BaseException, key: str | None, cfg: Any) -> LightningArgsError | None:
    from omegaconf.errors import OmegaConfBaseException

    if not isinstance(error, OmegaConfBaseException):
        return None
    full_key = getattr(error, "full_key", None) or key or _holding(cfg, str(error)) or "<root>"
    # OmegaConf appends full_key / object_type lines to its message: its first line is the news.
    return ConfigValueError(
        f"config key '{full_key}': {_first_line(str(error))}.\n"
        f"  Fix: correct {full_key} (`python train.py --cfg job` shows the composed config)"
    )


def _holding(cfg: Any, message: str) -> str | None:
    """The key whose value, as written, holds the interpolation ``message`` names
    ("Interpolation key 'oops' not found"): an error raised resolving the whole config has no
    ``full_key`` of its own."""
    from omegaconf import DictConfig, OmegaConf

    found = re.search(r"Interpolation key '([^']+)'", message)
    if found is None or not isinstance(cfg, DictConfig):
        return None
    needle = "${" + found.group(1)

    def walk(node: Any, prefix: str) -> str | None:
        if isinstance(node, str):
            return prefix if needle in node else None
        if isinstance(node, dict):
            items: list[tuple[Any, Any]] = list(node.items())
        elif isinstance(node, list):
            items = list(enumerate(node))
        else:
            return None
        hits = (walk(value, f"{prefix}.{name}" if prefix else str(name)) for name, value in items)
        return next((hit for hit in hits if hit), None)

    return walk(OmegaConf.to_container(cfg, resolve=False), "")


def _unknown(error: BaseException, key: str | None, what: str) -> LightningArgsError:
    frames = _frames(error)
    # The innermost frame of the user's own code, if any, says most; else the innermost.
    own = [f for f in frames if "site-packages" not in f[0] and "/lib/python" not in f[0]]
    file, line, function = (own or frames or [("?", 0, "?")])[-1]
    where = f" (raised in {function}, {file}:{line})" if frames else ""
    return JobError(
        f"{what} failed{f' in {key}' if key else ''}: {type(error).__name__}: "
        f"{_first_line(str(error)) or '(no message)'}{where}.\n"
        "  Fix: see the message; HYDRA_FULL_ERROR=1 shows the whole traceback"
    )
