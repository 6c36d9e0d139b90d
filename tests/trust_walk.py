"""Walk what the trust policy allows, looking for code that loads, downloads or runs code.

Every class deriving from a building block and every function of a pure-function module, in the
known packages, is read (its own source, as a syntax tree, docstrings ignored) for calls that
load files, download, compile or execute. Each one found must be refused by the policy
(:data:`lightning_args.run.trust.REFUSED` grows) or be listed in :data:`REVIEWED` with the reason it
is harmless.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import textwrap
import types
from collections.abc import Iterator
from typing import Any

from lightning_args.run import trust

#: Packages imported whole, so that their classes and functions are seen.
WALKED = (
    "torch.nn",
    "torch.optim",
    "torch.utils.data",
    "torch.ao.nn",
    "lightning.pytorch",
    "torchmetrics",
    "lightning_args",
)
#: Last parts of call names that load, download, compile or run code.
_CALLS = {
    "load",
    "load_inline",
    "load_library",
    "import_module",
    "from_pretrained",
    "urlopen",
    "urlretrieve",
    "run_path",
    "run_module",
    "Popen",
    "check_call",
    "check_output",
}
_BARE = {"exec", "eval", "compile", "__import__"}
#: Allowed objects whose flagged call was read and found harmless: real name -> why.
REVIEWED: dict[str, str] = {
    "lightning.pytorch.loggers.wandb.WandbLogger": (
        "artifact.download is in download_artifact(), a static method only user code calls"
    ),
    "lightning.pytorch.strategies.deepspeed.DeepSpeedStrategy": (
        "json.load reads DeepSpeed's JSON config file: data, not code"
    ),
    "lightning.pytorch.strategies.fsdp.FSDPStrategy": (
        "torch.load in load_checkpoint reads the ckpt_path the Trainer is given: for a loaded "
        "run, the run's own checkpoint, read as plain data first (lightning_args.run.checkpoint)"
    ),
    "lightning.pytorch.strategies.xla.XLAStrategy": "as FSDPStrategy",
    "torch.nn.functional.max_pool3d_with_indices": "imports torch._decomp, a fixed torch module",
    "torch.nn.functional.interpolate": "imports torch._decomp, a fixed torch module",
    "torch.nn.functional.pad": "imports torch._decomp, a fixed torch module",
}


def suspicious_allowed() -> list[str]:
    """``name: call`` for each allowed class or function whose code makes a flagged call."""
    found = set()
    for obj in _allowed():
        name = f"{obj.__module__}.{obj.__qualname__}"
        calls = _calls_of(obj)
        if calls and name not in REVIEWED:
            found.add(f"{name}: {', '.join(calls)}")
    return sorted(found)


def _allowed() -> Iterator[Any]:
    for package in WALKED:
        _import_all(package)
    seen: set[str] = set()
    bases = [trust._loaded(b) for b in trust.BUILDING_BLOCKS]
    for base in (b for b in bases if isinstance(b, type)):
        for cls in _subclasses(base):
            name = f"{cls.__module__}.{cls.__qualname__}"
            if name not in seen and trust.judge(name) is None:
                seen.add(name)
                yield cls
    for module_name in trust.FUNCTION_MODULES:
        for module in _modules_under(module_name):
            for attr, obj in vars(module).items():
                name = f"{module.__name__}.{attr}"
                if isinstance(obj, types.FunctionType) and trust.judge(name) is None:
                    yield obj


def _import_all(package: str) -> None:
    root = importlib.import_module(package)
    for info in pkgutil.walk_packages(root.__path__, f"{package}."):
        if any(part.startswith("_") for part in info.name.split(".")):
            continue
        try:
            importlib.import_module(info.name)
        except Exception:  # optional dependencies missing: the policy cannot resolve them either
            continue


def _modules_under(name: str) -> Iterator[types.ModuleType]:
    import sys

    for module_name, module in list(sys.modules.items()):
        if module is not None and (module_name == name or module_name.startswith(f"{name}.")):
            yield module


def _subclasses(cls: type) -> Iterator[type]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


#: What :func:`_flagged` found in each object read so far: its source does not change between
#: walks, only the policy does (the test walks twice, with and without some refusals).
_READ: dict[Any, list[str]] = {}


def _calls_of(obj: Any) -> list[str]:
    if obj not in _READ:
        _READ[obj] = sorted(set(_flagged(obj)))
    return _READ[obj]


def _flagged(obj: Any) -> Iterator[str]:
    try:
        source = textwrap.dedent(inspect.getsource(obj))
        tree = ast.parse(source)
    except (OSError, TypeError, SyntaxError):
        return
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        called = ast.unparse(node.func)
        last = called.rpartition(".")[2]
        if (
            (isinstance(node.func, ast.Name) and last in _BARE)
            or ("." in called and (last in _CALLS or "download" in last.lower()))
            or called in ("os.system", "subprocess.run", "subprocess.call")
        ):
            yield called
