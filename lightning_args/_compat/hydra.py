"""Where lightning_args reaches into Hydra's internals: the app's error reporting, ``--help``
and the configs it shows, a job's failure (:func:`failed_job`, :func:`job_error`), and an
override's text (:func:`override_text`).

Checked on hydra-core 1.3.8 and omegaconf 2.3.1 (:data:`CHECKED_ON`), by reading their source;
``tests/test_hydra_compat.py`` fails, naming the internal, when an upgrade moves one (run it
first, then update :data:`CHECKED_ON`).

Hydra 1.3 offers no hook for either, so both wrap a private function for the duration of
``@lightning_args.main`` and restore it afterwards; each is skipped if the function is gone (a
future Hydra), which costs only the improvement, never correctness.

- :func:`friendly_errors`: Hydra prints every error of an app through
  ``hydra._internal.utils.run_and_report``. Exceptions are translated
  (:func:`lightning_args.run.explain.translate`) before Hydra reports them as before: compact
  message, exit status 1, the full traceback under ``HYDRA_FULL_ERROR=1``, which also turns
  translation off.
- :func:`fast_help` (and :func:`fast_help_for_process`, for any app, from the search path
  plugin): ``--help`` lists every config group with ~100 calls of
  ``ConfigLoaderImpl.get_group_options``, each of which re-reads the primary config into a fresh
  repository (1.6 s of a 2.1 s ``--help`` here). During ``--help`` only, that repository is
  built once per ``(config_name, overrides)``; the help text is byte for byte the same.
- :func:`job_error` / :func:`failed_job`: a failed job's exception is ``JobReturn``'s private
  field ``_return_value`` (its ``return_value`` property re-raises it), checked on hydra-core
  1.3.2 to 1.3.8.
- :func:`override_text`: a value written back as override text, the way Hydra prints the
  values of its sweeps (``Override._get_value_element_as_str``: quoting, lists, dicts).
- :func:`is_group_override`, :func:`apply_value_overrides`, :func:`overrides_dirname`: what
  ``ConfigLoaderImpl._load_configuration_impl`` does with the overrides that are not config
  group choices (``hydra/_internal/defaults_list.py``'s ``Overrides`` tells them apart by
  ``repository.group_exists``; ``ConfigLoaderImpl._apply_overrides_to_config`` applies them
  last; ``get_overrides_dirname`` names the job), for
  :class:`hydra_plugins.lightning_args_optuna._composing.ComposingOnce`.
- :data:`LAUNCHER_LOGGERS`, :data:`JOB_LINE`: the launch lines of Hydra's basic, joblib and
  submitit launchers (logger names and format), which a sweep shortens.
- :func:`keep_plugins_per_process`: Hydra's joblib launcher restores the sweeper's singletons
  at the start of every job (``hydra.core.singleton.Singleton.set_state``), which drops the
  worker's ``Plugins`` instance and makes a new one: a scan that imports, and executes again,
  every ``hydra_plugins`` module, whose configs are stored again (0.1 s of every trial here).
- :func:`submitit_executor`: how hydra-submitit-launcher 1.2.0 turns its config into a submitit
  executor (``BaseSubmititLauncher.launch``): ``max_num_timeout`` goes to the executor's
  constructor as ``<cluster>_max_num_timeout``, the keys of ``BaseQueueConf`` go to
  ``update_parameters`` as they are, every other key prefixed with ``<cluster>_``; the cluster
  is the launcher class's ``_EXECUTOR`` (``slurm`` or ``local``). A k-fold run with
  ``cv.parallel=true`` submits its folds the same way (:mod:`lightning_args.run.fold_jobs`).
- :func:`store_lazily`: ``ConfigStore.store`` converts a schema as it stores it; ours are
  stored as ``ConfigNode`` subclasses in ``ConfigStore.repo`` (nested dicts by group part, then
  ``<name>.yaml``) that convert when first used: ``ConfigStore.load`` copies an entry
  (``copy.copy``) and sets the copy's ``node`` to a deep copy; copied or pickled, an entry is a
  plain ``ConfigNode`` with its node made.
- :func:`joblib_execute_job`, :func:`joblib_parallel_settings`, :func:`is_joblib_launcher`:
  hydra-joblib-launcher 1.2.0's private ``_core``: a job runs as ``execute_job(idx, overrides,
  hydra_context, config, task_function, singleton_state)``, and ``launch`` hard-codes the loky
  backend and turns some settings into integers (``process_joblib_cfg``); our joblib launcher
  (``hydra_plugins.lightning_args_joblib``) launches the same jobs with their shared arguments
  sent once per worker.

With :func:`friendly_errors`, the error boundary: a pre-flight refusal
(:class:`~lightning_args.errors.PreflightFailed`, raised by a callback) is reported like any
other, an exception that is neither ours nor one of Hydra's one-line composition messages is
explained (:func:`lightning_args.run.explain.explain`), and ``JobReturn.return_value`` no longer
writes "Error executing job with overrides: [...]" before re-raising. :func:`shown_configs`
wraps six methods of ``hydra._internal.hydra.Hydra`` for ``--help``, ``--cfg`` and ``--info``.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any

from hydra.core.config_store import ConfigNode

from lightning_args.errors import PreflightFailed
from lightning_args.run.explain import explain, translate

if TYPE_CHECKING:
    from hydra.core.config_loader import ConfigLoader
    from hydra.core.override_parser.types import Override
    from hydra.core.utils import JobReturn
    from omegaconf import DictConfig

#: hydra-core and omegaconf versions the internals here were read on.
CHECKED_ON = {
    "hydra-core": "1.3.8",
    "omegaconf": "2.3.1",
    "hydra-submitit-launcher": "1.2.0",
    "hydra-joblib-launcher": "1.2.0",
}

HELP_FLAGS = ("--help", "-h", "--hydra-help")

#: The loggers (their modules' ``log``) of Hydra's launchers that log every job of a launch as
#: ``"\t#<index> : <overrides>"``, the overrides unfiltered but for ``hydra.*`` keys: the
#: sweeper shortens those lines (its ``_console.ShortLaunchLines``). The joblib launcher counts
#: the index within the launch, the others from ``initial_job_idx``.
LAUNCHER_LOGGERS = (
    "hydra._internal.core_plugins.basic_launcher",
    "hydra_plugins.hydra_joblib_launcher._core",
    "hydra_plugins.hydra_submitit_launcher.submitit_launcher",
)
#: How the launchers above start a job's line.
JOB_LINE = re.compile(r"^\t#\d+ : ")
#: hydra-submitit-launcher's launcher classes (``hydra.launcher._target_``) by their cluster.
SUBMITIT_LAUNCHERS = {
    "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher": "slurm",
    "hydra_plugins.hydra_submitit_launcher.submitit_launcher.LocalLauncher": "local",
}
#: Hydra's joblib launcher (``hydra.launcher._target_``), whose ``n_jobs`` bounds the workers.
JOBLIB_LAUNCHER = "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"


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

    with _replaced(hydra_utils, "run_and_report", make), _quiet_job_failures():
        yield


def _translating(func: Callable[[], Any]) -> Any:
    from hydra.errors import CompactHydraException

    try:
        return func()
    except PreflightFailed as refused:  # from a callback, as a SystemExit: report it as others
        raise refused.error from (refused if full_error() else None)
    except Exception as error:
        if full_error():
            raise
        friendly = translate(error)
        if friendly is None and isinstance(error, CompactHydraException):
            raise  # Hydra's own composition messages are one line already
        # Anything else (a failed job, Hydra's instantiate, OmegaConf, Optuna, the file system)
        # becomes one message of a few lines, never Hydra's trimmed traceback.
        raise (friendly or explain(error)) from None


def full_error() -> bool:
    """Whether ``HYDRA_FULL_ERROR=1`` asks for tracebacks instead of messages."""
    return os.environ.get("HYDRA_FULL_ERROR") == "1"


@contextmanager
def _quiet_job_failures() -> Iterator[None]:
    """Hydra writes "Error executing job with overrides: [...]" before re-raising a failed job's
    exception; the message that follows names what failed, so that line goes (it stays under
    ``HYDRA_FULL_ERROR=1``, where nothing is rewritten)."""
    from hydra.core.utils import JobReturn, JobStatus

    original = JobReturn.__dict__.get("return_value")
    if not isinstance(original, property) or original.fget is None or full_error():
        yield
        return
    getter = original.fget

    def return_value(self: Any) -> Any:
        if self.status == JobStatus.FAILED:
            raise self._return_value
        return getter(self)

    name = "return_value"  # set by name: mypy knows the attribute as the original property
    setattr(JobReturn, name, property(return_value, original.fset))
    try:
        yield
    finally:
        setattr(JobReturn, name, original)


@contextmanager
def fast_help(argv: list[str] | None = None) -> Iterator[None]:
    """While active, and only when ``argv`` asks for help, Hydra's help reuses one repository."""
    if _help_for_process or not any(
        flag in (sys.argv if argv is None else argv) for flag in HELP_FLAGS
    ):
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


_help_for_process: list[AbstractContextManager[None]] = []  # entered once, never left


def fast_help_for_process() -> None:
    """:func:`fast_help` for the rest of this process, when its command line asks for help.

    For any Hydra app in an environment where lightning_args is installed: its search path
    plugin adds lightning_args' groups to every app, which made a bare one-file app's
    ``--help`` take 2.8 s instead of 0.4 s here (Hydra re-reads the primary config for each
    group it lists). The plugin calls this; the process ends once the help is printed.
    """
    if _help_for_process or not any(flag in sys.argv for flag in HELP_FLAGS):
        return
    speed_up = fast_help()
    speed_up.__enter__()
    _help_for_process.append(speed_up)


_KEEPS_PLUGINS = "_lightning_args_keeps_plugins"


def keep_plugins_per_process() -> None:
    """Make ``Singleton.set_state`` keep this process's ``Plugins`` instance, if it has one.

    The installed plugins do not change while a joblib worker lives, so its first job's scan
    serves every later job; the restored ``ConfigStore`` is the sweeper's, which already holds
    what the scan would store again. Idempotent; a no-op where Hydra has no ``set_state``.
    """
    from hydra.core.plugins import Plugins
    from hydra.core.singleton import Singleton

    original = getattr(Singleton, "set_state", None)
    if original is None or getattr(original, _KEEPS_PLUGINS, False):
        return

    def set_state(state: Any) -> None:
        plugins = Singleton._instances.get(Plugins)
        if plugins is not None:
            state["instances"].setdefault(Plugins, plugins)
        original(state)

    setattr(set_state, _KEEPS_PLUGINS, True)
    Singleton.set_state = staticmethod(set_state)  # type: ignore[method-assign]


class _Stored(ConfigNode):  # its node is made at first use
    """A ConfigStore entry whose ``DictConfig`` is made from its schema when it is first used.

    Copied or pickled (``ConfigStore.load`` copies an entry before it deep-copies the node;
    ``Singleton.get_state`` deep-copies the store; a joblib job's shipment pickles it), it is
    Hydra's own ``ConfigNode`` with its node made, never the schema: cloudpickle sends a class
    that Hydra's plugin scan executed again by value, and there its fields' defaults unpickle as
    new objects that are not ``dataclasses.MISSING``, which OmegaConf then takes for values.
    """

    def __init__(
        self, name: str, schema: Any, group: str | None, package: str | None, provider: str | None
    ) -> None:  # not the dataclass's: ``node`` is the property below
        self.name, self.group, self.package, self.provider = name, group, package, provider
        self._schema = schema
        self._made: DictConfig | None = None

    @property
    def node(self) -> DictConfig:
        if self._made is None:
            from omegaconf import OmegaConf

            self._made = OmegaConf.structured(self._schema)
        return self._made

    @node.setter
    def node(self, value: DictConfig) -> None:
        self._made = value

    def __reduce__(self) -> tuple[Any, ...]:
        return (ConfigNode, (self.name, self.node, self.group, self.package, self.provider))


def store_lazily(
    name: str,
    schema: Any,
    *,
    group: str | None = None,
    package: str | None = None,
    provider: str | None = None,
) -> None:
    """``ConfigStore.instance().store(...)``, with ``schema`` made into a ``DictConfig`` when
    Hydra first loads it instead of now.

    ``store`` converts every node at once (``OmegaConf.structured``), and every Hydra app in an
    environment with lightning_args scans our plugins, which store about 60 schemas: most of the
    0.14 s our plugins added to a bare Hydra app's ``--cfg job`` here. An app now converts only
    the schemas its config uses. Hydra's entries are ``ConfigNode`` objects in nested dicts of
    ``ConfigStore.repo`` keyed by group part and ``<name>.yaml``, as ``store`` makes them.

    Example:
        >>> from dataclasses import dataclass
        >>> from hydra.core.config_store import ConfigStore
        >>> @dataclass
        ... class Sketch:
        ...     width: int = 3
        >>> store_lazily("sketch", Sketch, group="doc/lazily")
        >>> ConfigStore.instance().load("doc/lazily/sketch.yaml").node.width
        3
    """
    from hydra.core.config_store import ConfigStore

    options: dict[str, Any] = ConfigStore.instance().repo
    for part in (group or "").split("/"):
        if part:
            options = options.setdefault(part, {})
    file = name if name.endswith(".yaml") else f"{name}.yaml"
    options[file] = _Stored(file, schema, group, package, provider)


def failed_job(overrides: Sequence[str], error: BaseException) -> JobReturn:
    """What a launcher returns for a job that failed with ``error`` (as Hydra's own do)."""
    from hydra.core.utils import JobReturn, JobStatus

    return JobReturn(overrides=list(overrides), status=JobStatus.FAILED, _return_value=error)


def job_error(ret: JobReturn) -> BaseException | None:
    """The exception a failed job raised, without raising it; ``None`` unless it failed."""
    from hydra.core.utils import JobStatus

    if ret.status != JobStatus.FAILED:
        return None
    error = ret._return_value
    return error if isinstance(error, BaseException) else None


def override_text(value: Any) -> str:
    """``value`` as the text of an override, as Hydra writes the values of its own sweeps.

    >>> print(override_text([1, 2]), override_text({"k": 0.5}), override_text("a b"))
    [1,2] {k:0.5} a\\ b
    """
    from hydra.core.override_parser.types import Override

    return str(Override._get_value_element_as_str(value))


def parse_overrides(lines: Sequence[str]) -> list[Override]:
    """Hydra's parse of command-line overrides."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return list(OverridesParser.create().parse_overrides(overrides=list(lines)))


def is_group_override(loader: ConfigLoader, override: Override) -> bool:
    """Whether Hydra's defaults list takes ``override`` as a config group choice (which changes
    what is composed) rather than a value set after composition: as ``Overrides`` decides, a
    group that exists and a value that is not a dict, or any ``@package`` override."""
    if override.package is not None:
        return True
    if isinstance(override.value(), dict):
        return False
    repository = getattr(loader, "repository", None)
    if repository is None:
        return True  # not Hydra's own loader: nothing is known, so everything is composed
    return bool(repository.group_exists(override.key_or_group))


def apply_value_overrides(cfg: DictConfig, overrides: Sequence[Override]) -> None:
    """Set ``overrides`` (no group choices) on a composed ``cfg``, as Hydra does last."""
    from hydra._internal.config_loader_impl import ConfigLoaderImpl

    ConfigLoaderImpl._apply_overrides_to_config(list(overrides), cfg)


def overrides_dirname(cfg: DictConfig, task: Sequence[Override]) -> str:
    """``hydra.job.override_dirname`` for the task overrides ``task``, with ``cfg``'s settings."""
    from hydra._internal.config_loader_impl import get_overrides_dirname

    settings = cfg.hydra.job.config.override_dirname
    return str(
        get_overrides_dirname(
            overrides=list(task),
            kv_sep=settings.kv_sep,
            item_sep=settings.item_sep,
            exclude_keys=settings.exclude_keys,
        )
    )


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


#: Config groups of the example app (and of apps laid out like it) that nobody chooses on the
#: command line: schemas the YAML options extend, and what options make tunable in a sweep.
INTERNAL_GROUPS = ("schema", "search_space")


@contextmanager
def shown_configs() -> Iterator[None]:
    """While active, Hydra's ``--help`` lists only the groups a user chooses from (not
    :data:`INTERNAL_GROUPS`), and ``--cfg``/``--help``/``--info`` (with ``--resolve`` too) show
    a config whose ``paths.run_dir`` is the directory a run would get, which they do not create.

    Outside a job, ``${hydra:runtime.output_dir}`` is ``None`` (Hydra sets it when a job starts),
    so resolving ``paths.run_dir`` failed with a traceback.
    """
    from hydra._internal.hydra import Hydra

    def listing(original: Callable[..., Any]) -> Callable[..., Any]:
        def list_all_config_groups(self: Any, parent: str = "") -> Any:
            if parent.split("/")[0] in INTERNAL_GROUPS:
                return []  # not walked either: --help is quicker for it
            groups = original(self, parent)
            return [g for g in groups if g.split("/")[0] not in INTERNAL_GROUPS]

        return list_all_config_groups

    def sanitizing(original: Callable[..., Any]) -> Callable[..., Any]:
        def get_sanitized_cfg(self: Any, cfg: Any, cfg_type: str) -> Any:
            _fill_output_dir(cfg)
            return original(self, cfg, cfg_type)

        return get_sanitized_cfg

    def dry(original: Callable[..., Any]) -> Callable[..., Any]:
        def shown(self: Any, *args: Any, **kwargs: Any) -> Any:
            from lightning_args.config.run_dirs import dry_run_dirs

            with dry_run_dirs():
                return original(self, *args, **kwargs)

        return shown

    with (
        _replaced(Hydra, "list_all_config_groups", listing),
        _replaced(Hydra, "get_sanitized_cfg", sanitizing),
        _replaced(Hydra, "show_cfg", dry),
        _replaced(Hydra, "app_help", dry),
        _replaced(Hydra, "show_info", dry),
        _replaced(Hydra, "hydra_help", dry),
    ):
        yield


def _fill_output_dir(cfg: Any) -> None:
    """Set ``hydra.runtime.output_dir`` to the run directory a run would get, as a job does."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf, flag_override

    from lightning_args._compat.omegaconf import own_readonly_flag

    if OmegaConf.select(cfg, "hydra.runtime.output_dir", default=None) is not None:
        return
    run_dir = OmegaConf.select(cfg, "hydra.run.dir", default=None)
    if run_dir is None:
        return
    with flag_override(cfg.hydra, ["struct", "readonly"], [False, False]):
        cfg.hydra.runtime.output_dir = os.path.abspath(str(run_dir))
    readonly = own_readonly_flag(cfg.hydra)
    HydraConfig.instance().set_config(cfg)  # for ${hydra:...}; it makes cfg.hydra read-only
    OmegaConf.set_readonly(cfg.hydra, readonly)  # as the caller had it (--cfg hydra edits it)


def submitit_executor(launcher: dict[str, Any], folder: str) -> Any:
    """The submitit executor that hydra-submitit-launcher would make from ``launcher`` (the
    resolved ``hydra.launcher`` node of one of :data:`SUBMITIT_LAUNCHERS`), writing its files in
    ``folder`` instead of ``submitit_folder``."""
    import submitit
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
    from omegaconf import OmegaConf

    cluster = SUBMITIT_LAUNCHERS[str(launcher["_target_"])]
    params = {k: v for k, v in launcher.items() if k not in ("_target_", "submitit_folder")}
    init = {f"{cluster}_{k}": params.pop(k) for k in ("max_num_timeout",) if k in params}
    executor = submitit.AutoExecutor(folder=folder, cluster=cluster, **init)
    queue = set(OmegaConf.structured(BaseQueueConf).keys())
    named = {k if k in queue else f"{cluster}_{k}": v for k, v in params.items()}
    executor.update_parameters(**named)
    return executor


def is_joblib_launcher(launcher: object) -> bool:
    """Whether ``launcher`` is Hydra's joblib launcher or a subclass (ours of ``launcher=joblib``
    and ``launcher=gpus``): its jobs run in joblib's pool of worker processes."""
    names = {f"{c.__module__}.{c.__qualname__}" for c in type(launcher).__mro__}
    return JOBLIB_LAUNCHER in names


def joblib_execute_job(
    idx: int,
    overrides: Sequence[str],
    hydra_context: Any,
    config: Any,
    task_function: Callable[[Any], Any],
    singleton_state: Any,
) -> JobReturn:
    """hydra-joblib-launcher's job function, as its ``launch`` calls it in a worker."""
    from hydra_plugins.hydra_joblib_launcher import _core

    ret: JobReturn = _core.execute_job(
        idx, overrides, hydra_context, config, task_function, singleton_state
    )
    return ret


def joblib_parallel_settings(joblib: dict[str, Any]) -> dict[str, Any]:
    """The ``joblib.Parallel`` keywords hydra-joblib-launcher makes of its config: the loky
    backend always, ``pre_dispatch``, ``batch_size`` and ``max_nbytes`` as integers where they
    are."""
    from hydra_plugins.hydra_joblib_launcher import _core

    settings = {**joblib, "backend": "loky"}
    _core.process_joblib_cfg(settings)
    return settings
