"""What a config read back from a file may build: judged by what each ``_target_`` *is*.

A checkpoint or a run directory may come from someone else. Its stored config names
``_target_``\\ s, and building them calls them, so before anything is built every target of a
config read back from a file (:func:`~lightning_args.load_run`,
:func:`~lightning_args.load_from_checkpoint`, ``lightning-args resume`` and ``reproduce``) is
judged in three steps:

1. **Before anything is imported** (importing a module runs its code), the target's top-level
   package must be one the policy knows (:data:`KNOWN_PACKAGES`) or one you allowed, and the
   name must not be in a :data:`REFUSED` family.
2. The target is **resolved without being called**, exactly as Hydra's ``instantiate`` will
   resolve it (:func:`resolve`), and judged by the object's real
   ``__module__``/``__qualname__``, so an alias (``torch.os.system``,
   ``lightning_args.run.record.subprocess.run``) is judged as what it is.
3. The object is allowed when it is a class deriving from a building block a config
   legitimately builds (:data:`BUILDING_BLOCKS`), a function of a pure-function module
   (:data:`FUNCTION_MODULES`, :data:`FUNCTIONS`), or a name you allowed with
   :func:`allow_targets` (or ``LIGHTNING_ARGS_ALLOW_TARGETS``). Families that load files,
   download, compile or run code (:data:`REFUSED`) are refused even there, unless you name the
   exact target.

Interpolations (``${...}``) are refused too: stored configs are resolved, and a resolver could
read the environment or files while the run is loaded. Paths are the business of
:mod:`lightning_args.run.confine`. A config your own app composed is yours and is not judged.
"""

from __future__ import annotations

import importlib
import os
import sys
import types
from collections.abc import Iterable, Iterator
from typing import Any

from lightning_args._util.aliases import current_module
from lightning_args.errors import UntrustedTargetError

ENV = "LIGHTNING_ARGS_ALLOW_TARGETS"

#: Top-level packages whose modules may be imported to judge a target.
KNOWN_PACKAGES = frozenset(
    {"lightning_args", "torch", "lightning", "pytorch_lightning", "torchmetrics"}
)

#: The classes a config legitimately builds; a target class must derive from one of them.
BUILDING_BLOCKS = (
    "torch.nn.Module",
    "torch.optim.Optimizer",
    "torch.optim.lr_scheduler.LRScheduler",
    "torch.utils.data.Dataset",
    "torch.utils.data.Sampler",
    "lightning.pytorch.Trainer",
    "lightning.pytorch.LightningModule",
    "lightning.pytorch.LightningDataModule",
    "lightning.pytorch.Callback",
    "lightning.pytorch.loggers.Logger",
    "lightning.pytorch.strategies.Strategy",
    "lightning.pytorch.accelerators.Accelerator",
    "lightning.pytorch.plugins.precision.Precision",
    "lightning.pytorch.profilers.Profiler",
    "pytorch_lightning.Trainer",
    "pytorch_lightning.LightningModule",
    "pytorch_lightning.LightningDataModule",
    "pytorch_lightning.Callback",
    "pytorch_lightning.loggers.Logger",
    "torchmetrics.Metric",
)

#: Modules of pure functions (losses, metrics, activations, initialisers): any public function
#: defined there (or in torch's C core, which they wrap) may be a target, e.g. a loss term's
#: ``{_target_: torch.nn.functional.cross_entropy, _partial_: true}``.
FUNCTION_MODULES = (
    "torch.nn.functional",
    "torch.nn.init",
    "torchmetrics.functional",
    "lightning_args.modules.metrics",
)

#: Single pure functions outside those modules.
FUNCTIONS = frozenset(
    {
        "torch.abs",
        "torch.exp",
        "torch.log_softmax",
        "torch.mean",
        "torch.relu",
        "torch.sigmoid",
        "torch.softmax",
        "torch.sum",
        "torch.tanh",
    }
)

#: Where torch's C implementations of those functions say they live.
_C_HOMES = ("torch", "torch._C")

#: Families that load files, download, compile or run code: refused wherever they are found,
#: even under an allowed package, unless the exact target is allowed. ``tests/test_trust.py``
#: walks every class and function the policy allows, looking for more.
REFUSED = (
    # Python's own ways to run code, unpickle, or reach the system.
    "builtins",
    "code",
    "codeop",
    "copyreg",
    "ctypes",
    "importlib",
    "marshal",
    "multiprocessing",
    "nt",
    "os",
    "pickle",
    "posix",
    "pty",
    "runpy",
    "shelve",
    "shutil",
    "socket",
    "subprocess",
    "sys",
    # torch: loading, downloading, compiling, scripting, remote execution.
    "torch._C._jit",
    "torch._dynamo",
    "torch._export",
    "torch._inductor",
    "torch.classes",
    "torch.compile",
    "torch.compiler",
    "torch.distributed",
    "torch.export",
    "torch.fx",
    "torch.hub",
    "torch.jit",
    "torch.library",
    "torch.load",
    "torch.onnx",
    "torch.ops",
    "torch.package",
    "torch.serialization",
    "torch.utils.cpp_extension",
    "torch.utils.data.datapipes",
    "torch.utils.model_zoo",
    # Lightning: checkpoint and cloud I/O, the CLI, checkpoint migration, downloading demos.
    "lightning.fabric.plugins.io",
    "lightning.fabric.utilities.cloud_io",
    "lightning.fabric.utilities.load",
    "lightning.pytorch.cli",
    "lightning.pytorch.core.saving",
    "lightning.pytorch.demos",
    "lightning.pytorch.plugins.io",
    "lightning.pytorch.utilities.migration",
    "lightning.pytorch.utilities.upgrade_checkpoint",
    "pytorch_lightning.cli",
    "pytorch_lightning.core.saving",
    "pytorch_lightning.demos",
    # torchmetrics: metrics that download or load pretrained networks.
    "torchmetrics.audio.dnsmos",
    "torchmetrics.audio.nisqa",
    "torchmetrics.functional.audio.dnsmos",
    "torchmetrics.functional.audio.nisqa",
    "torchmetrics.functional.image.arniqa",
    "torchmetrics.functional.image.dists",
    "torchmetrics.functional.image.lpips",
    "torchmetrics.functional.image.perceptual_path_length",
    "torchmetrics.functional.multimodal",
    "torchmetrics.functional.text.bert",
    "torchmetrics.functional.text.infolm",
    "torchmetrics.image.arniqa",
    "torchmetrics.image.dists",
    "torchmetrics.image.fid",
    "torchmetrics.image.inception",
    "torchmetrics.image.kid",
    "torchmetrics.image.lpip",
    "torchmetrics.image.mifid",
    "torchmetrics.image.perceptual_path_length",
    "torchmetrics.multimodal",
    "torchmetrics.text.bert",
    "torchmetrics.text.infolm",
)

_extra: list[str] = []


def allow_targets(*names: str) -> None:
    """Also build these targets from configs read back from files.

    A name ending in a dot trusts a whole package (``"my_project."``); one without names exactly
    one target (``"my_project.models.Net"``). The environment variable
    ``LIGHTNING_ARGS_ALLOW_TARGETS`` takes the same names, separated by commas.

    >>> allow_targets("my_project.", "other.models.Net")
    >>> "my_project." in allowed_targets() and "other.models.Net" in allowed_targets()
    True
    """
    _extra.extend(n.strip() for n in names if n.strip())


def allowed_targets() -> tuple[str, ...]:
    """What the user allowed: :func:`allow_targets`' names, then the environment's."""
    return (*_extra, *(n.strip() for n in os.environ.get(ENV, "").split(",") if n.strip()))


def check_trusted(config: Any, source: str) -> None:
    """Raise :class:`~lightning_args.UntrustedTargetError` for the first target in ``config``
    (a plain container read back from ``source``) that the policy refuses; build nothing.

    >>> check_trusted({"model": {"_target_": "torch.nn.Linear", "in_features": 2}}, "a file")
    >>> check_trusted({"model": {"_target_": "torch.hub.load"}}, "a file")
    Traceback (most recent call last):
    ...
    lightning_args.errors.UntrustedTargetError: a file asks to build model._target_=...
    """
    allowed = allowed_targets()
    for key, value in _walk(config):
        if isinstance(value, str) and "${" in value:
            raise UntrustedTargetError(
                f"{source} holds an interpolation at {key}={value!r}: configs are stored "
                "resolved, and a resolver could read the environment or files while the run is "
                "loaded, so none is evaluated. Fix: if you wrote this file yourself, replace the "
                "interpolation by its value"
            )
        if key.rpartition(".")[2] != "_target_":
            continue
        if not isinstance(value, str):
            raise UntrustedTargetError(
                f"{source} asks to build {key}={value!r}: refused, a _target_ is a dotted name "
                "(e.g. 'torch.nn.Linear'). Fix: if you wrote this file, correct that _target_"
            )
        verdict = judge(value, allowed)
        if verdict is not None:
            raise _refusal(source, key, value, *verdict)


def judge(target: str, allowed: Iterable[str] = ()) -> tuple[str, str] | None:
    """``None`` when ``target`` may be built, else ``(what it is, why that is refused)``.

    >>> judge("torch.optim.Adam") is None
    True
    >>> judge("torch.os.system")[0]
    'posix.system (a builtin_function_or_method)'
    """
    allowed = tuple(allowed)
    if target in allowed:
        return None  # the user named this exact target
    packages = tuple(a for a in allowed if a.endswith("."))
    family = _family(target)
    if family:
        return f"a name under {family}", f"that family {_REFUSED_WHY}"
    top = target.partition(".")[0]
    if top not in KNOWN_PACKAGES and not target.startswith(packages):
        return (
            f"a name in package {top!r}, which the policy does not know",
            "importing a package runs its code",
        )
    try:
        obj = resolve(target)
    except Exception as error:  # any failure to resolve is a refusal
        return "a name that cannot be resolved", f"resolving it failed ({error!r})"
    real = _real_name(obj)
    what = f"{real or 'an object of unknown origin'} (a {_kind(obj)})"
    if real is None:
        return what, "its origin cannot be checked"
    family = _family(real)
    if family:
        return what, f"{family} is a family that {_REFUSED_WHY}"
    if real.startswith(packages) or _is_building_block(obj, real) or _is_pure(target, obj, real):
        return None
    return what, _ALLOWED_KINDS


_REFUSED_WHY = "loads files, downloads, compiles or runs code"
_ALLOWED_KINDS = (
    "only building blocks (subclasses of torch modules, optimizers, LR schedulers, datasets, "
    "Lightning modules, data modules, trainers, callbacks, loggers, torchmetrics metrics) and "
    "pure functions (torch.nn.functional, torchmetrics.functional...) are built from a file"
)


def resolve(target: str) -> Any:
    """The object ``target`` names, found as Hydra's ``instantiate`` finds it (the first part
    imported, then attributes, importing a submodule where an attribute is missing), so the
    object judged is the object built. Checked against Hydra 1.3.8's ``_locate`` by the tests.

    >>> resolve("torch.nn.Linear").__name__
    'Linear'
    """
    parts = target.split(".")
    if not all(parts):
        raise ValueError(f"{target!r} is not a dotted name")
    obj: Any = importlib.import_module(parts[0])
    for depth, part in enumerate(parts[1:], start=2):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            if not isinstance(obj, types.ModuleType):
                raise
            obj = importlib.import_module(".".join(parts[:depth]))
    return obj


def _refusal(source: str, key: str, target: str, what: str, why: str) -> UntrustedTargetError:
    fix = f"lightning_args.allow_targets({target!r}) or set {ENV}={target}"
    package = target.partition(".")[0]
    if package not in KNOWN_PACKAGES and package.isidentifier():
        fix += f" (or allow_targets({package + '.'!r}) for the whole package)"
    return UntrustedTargetError(
        f"{source} asks to build {key}={target!r}: it is {what}, refused because {why}. A file "
        f"may come from someone else. Fix: if you trust this file and that target, call {fix}"
    )


def _walk(node: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``(dotted key, value)`` of every entry of a container, depth first."""
    items: Iterable[tuple[Any, Any]]
    if isinstance(node, dict):
        items = node.items()
    elif isinstance(node, list | tuple):
        items = enumerate(node)
    else:
        return
    for key, value in items:
        path = f"{prefix}{key}"
        yield path, value
        yield from _walk(value, f"{path}.")


def _family(name: str) -> str | None:
    return next((f for f in REFUSED if _under(name, f)), None)


def _real_name(obj: Any) -> str | None:
    module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if isinstance(obj, types.ModuleType):
        return obj.__name__
    if not isinstance(module, str) or not isinstance(qualname, str):
        return None
    return f"{module}.{qualname}"


def _kind(obj: Any) -> str:
    return "class" if isinstance(obj, type) else type(obj).__name__


def _is_building_block(obj: Any, real: str) -> bool:
    if not isinstance(obj, type) or real.partition(".")[0] not in KNOWN_PACKAGES:
        return False
    if any(part.startswith("_") for part in real.split(".")):
        return False  # private modules (torch._dynamo, torch.testing._internal...) are no API
    # A class's bases are imported with it: look them up without importing anything.
    bases = [_loaded(name) for name in BUILDING_BLOCKS]
    return issubclass(obj, tuple(b for b in bases if isinstance(b, type)))


def _is_pure(target: str, obj: Any, real: str) -> bool:
    if not isinstance(obj, types.FunctionType | types.BuiltinFunctionType):
        return False
    module, _, name = target.rpartition(".")
    module = current_module(module, name)  # a run of the flat layout names its old modules
    if target in FUNCTIONS:
        return real.partition(".")[0] == "torch"
    # The function must be a public attribute of the pure module itself (not reached through an
    # attribute chain), and defined there or in torch's C core, not imported from elsewhere.
    pure = any(_under(module, m) for m in FUNCTION_MODULES)
    home = str(obj.__module__)
    return (
        pure
        and not name.startswith("_")
        and getattr(sys.modules.get(module), "__name__", None) == module
        and (_under(home, module) or home == _C_HOMES[0] or _under(home, _C_HOMES[1]))
    )


def _under(name: str, package: str) -> bool:
    return name == package or name.startswith(f"{package}.")


def _loaded(dotted: str) -> Any:
    module, _, name = dotted.rpartition(".")
    return getattr(sys.modules.get(module), name, None)
