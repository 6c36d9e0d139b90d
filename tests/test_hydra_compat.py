"""What lightning_args relies on inside Hydra and OmegaConf (``lightning_args/_compat/hydra.py``,
``lightning_args/_compat/omegaconf.py``).

In process and fast. Every wrapper in the Hydra module skips an internal that is gone, so an
upgrade that moves one would only lose the improvement silently: the first table names every
internal and fails on the one that moved; the rest check the behaviour each relies on.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
from dataclasses import dataclass
from typing import Any, ClassVar

import cloudpickle
import pytest
from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus
from omegaconf import ListConfig, OmegaConf, ValidationError

from lightning_args._compat import hydra as compat
from lightning_args._compat import omegaconf as oc_compat
from lightning_args.errors import ConfigTypeError

#: (module, attribute path, parameters after self): every internal the two modules use.
INTERNALS = [
    ("hydra._internal.utils", "run_and_report", ["func"]),
    (
        "hydra._internal.config_loader_impl",
        "ConfigLoaderImpl._parse_overrides_and_create_caching_repo",
        ["config_name", "overrides"],
    ),
    ("hydra._internal.hydra", "Hydra.list_all_config_groups", ["parent"]),
    ("hydra._internal.hydra", "Hydra.get_sanitized_cfg", ["cfg", "cfg_type"]),
    ("hydra._internal.hydra", "Hydra.show_cfg", None),
    ("hydra._internal.hydra", "Hydra.app_help", None),
    ("hydra._internal.hydra", "Hydra.show_info", None),
    ("hydra._internal.hydra", "Hydra.hydra_help", None),
    ("hydra.core.override_parser.types", "Override._get_value_element_as_str", None),
    (
        "hydra._internal.config_loader_impl",
        "ConfigLoaderImpl._apply_overrides_to_config",
        ["overrides", "cfg"],
    ),
    (
        "hydra._internal.config_loader_impl",
        "get_overrides_dirname",
        ["overrides", "exclude_keys", "item_sep", "kv_sep"],
    ),
    ("hydra._internal.config_repository", "ConfigRepository.group_exists", ["config_path"]),
    ("hydra.core.singleton", "Singleton.set_state", ["state"]),
    ("hydra.core.singleton", "Singleton._instances", None),
    ("hydra.core.plugins", "Plugins._scan_all_plugins", ["modules"]),
    ("hydra.core.config_store", "ConfigStore.load", ["config_path"]),
    ("omegaconf._utils", "type_str", None),
    ("omegaconf", "Node._get_node_flag", ["flag"]),
]


def missing(module: str, path: str, params: list[str] | None) -> str | None:
    """Why ``module``'s ``path`` is not what the compat modules expect, or ``None``."""
    try:
        owner: Any = importlib.import_module(module)
    except ImportError:
        return f"{module} no longer imports"
    for part in path.split("."):
        if not hasattr(owner, part):
            return f"{module}.{path} is gone"
        owner = getattr(owner, part)
    if params is not None:
        found = [p for p in inspect.signature(owner).parameters if p != "self"]
        if found[: len(params)] != params:
            return f"{module}.{path} now takes {found}, not {params}"
    return None


@pytest.mark.parametrize(("module", "path", "params"), INTERNALS, ids=[i[1] for i in INTERNALS])
def test_every_internal_is_still_there(module: str, path: str, params: list[str] | None) -> None:
    assert missing(module, path, params) is None


@pytest.mark.parametrize(
    ("module", "path", "params"),
    [
        ("hydra._internal.utils", "run_and_report_v2", None),
        ("hydra._internal.hydra", "Hydra.list_all_config_groups", ["prefix"]),
        ("hydra._internal.nowhere", "x", None),
    ],
    ids=["renamed", "new-signature", "moved-module"],
)
def test_control_a_moved_internal_is_named(module: str, path: str, params: list[str]) -> None:
    assert missing(module, path, params) is not None


@pytest.mark.parametrize("module", compat.LAUNCHER_LOGGERS)
def test_the_launchers_log_each_job_on_their_modules_logger(module: str) -> None:
    """What the sweep's short launch lines filter: the logger's name and the job line's form."""
    launcher = importlib.import_module(module)
    assert launcher.log.name == module
    assert "\\t#{" in inspect.getsource(launcher)
    assert compat.JOB_LINE.match("\t#12 : a=1")


def test_the_installed_versions_are_the_ones_checked_on() -> None:
    """Fails on an upgrade until the internals above are read again on it."""
    from importlib.metadata import version

    import hydra
    import omegaconf

    installed = {
        "hydra-core": hydra.__version__,
        "omegaconf": omegaconf.__version__,
        "hydra-submitit-launcher": version("hydra-submitit-launcher"),
        "hydra-joblib-launcher": version("hydra-joblib-launcher"),
    }
    assert installed == compat.CHECKED_ON
    assert omegaconf.__version__ == oc_compat.CHECKED_ON


class _Recorder:
    """Stands for ``submitit.AutoExecutor``: keeps what it is made and set up with."""

    made: ClassVar[list[dict[str, Any]]] = []

    def __init__(self, **kwargs: Any) -> None:
        self.made.append({"init": kwargs})

    def update_parameters(self, **kwargs: Any) -> None:
        self.made[-1]["parameters"] = kwargs

    def map_array(self, *args: Any) -> list[Any]:
        return []  # nothing is submitted


@pytest.mark.parametrize("launcher", ["slurm", "submitit_local"])
def test_a_fold_job_asks_for_what_the_submitit_launcher_asks_for(
    launcher: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """:func:`compat.submitit_executor` against hydra-submitit-launcher's own ``launch``, on the
    project's launcher config: the same executor, the same parameters (the folder aside)."""
    import submitit
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    from lightning_args.config.store import register
    from tests.helpers import REPO

    register()
    with initialize_config_dir(str(REPO / "conf"), version_base="1.3"):
        cfg = compose("config", [f"launcher={launcher}"], return_hydra_config=True)
    node = OmegaConf.to_container(cfg.hydra.launcher, resolve=True)
    assert isinstance(node, dict)
    monkeypatch.setattr(submitit, "AutoExecutor", _Recorder)
    _Recorder.made.clear()
    theirs = instantiate(node)
    theirs.config = OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}}})
    theirs.launch([[]], 0)
    compat.submitit_executor({str(k): v for k, v in node.items()}, "ours")
    want, got = _Recorder.made
    assert got["init"] == {**want["init"], "folder": "ours"}
    assert got["parameters"] == want["parameters"]
    assert got["init"]["cluster"] == ("slurm" if launcher == "slurm" else "local")


def test_a_failed_jobs_error_is_read_without_raising_it() -> None:
    error = ValueError("boom")
    failed = compat.failed_job(["x=1"], error)
    assert compat.job_error(failed) is error
    with pytest.raises(ValueError, match="boom"):
        failed.return_value  # noqa: B018 - Hydra's property re-raises it: what we avoid
    done = JobReturn(overrides=[], status=JobStatus.COMPLETED, _return_value=0.5)
    assert compat.job_error(done) is None
    assert done.return_value == 0.5


def test_the_wrappers_are_installed_and_restored() -> None:
    import hydra._internal.utils as hydra_utils
    from hydra._internal.config_loader_impl import ConfigLoaderImpl
    from hydra._internal.hydra import Hydra

    before = hydra_utils.run_and_report
    with compat.friendly_errors():
        assert hydra_utils.run_and_report is not before
    assert hydra_utils.run_and_report is before

    caching = ConfigLoaderImpl._parse_overrides_and_create_caching_repo
    with compat.fast_help(["train.py", "--help"]):
        assert ConfigLoaderImpl._parse_overrides_and_create_caching_repo is not caching
    assert ConfigLoaderImpl._parse_overrides_and_create_caching_repo is caching

    listing = Hydra.list_all_config_groups
    with compat.shown_configs():
        assert Hydra.list_all_config_groups is not listing
    assert Hydra.list_all_config_groups is listing


@pytest.mark.parametrize(
    "value",
    # Not strings in general: Hydra writes "it's" unquoted, which does not parse back (the
    # sweeper keeps a string choice as the user wrote it and writes only other values so).
    [[1, 2], {"k": 0.5}, "a b", 1e-3, ["x", [1, "y z"]], True, None],
    ids=repr,
)
def test_override_text_parses_back_to_the_value(value: object) -> None:
    (override,) = OverridesParser.create().parse_overrides([f"k={compat.override_text(value)}"])
    assert override.value() == value


@dataclass
class Schema:
    epochs: int = 1
    lrs: list[float] | None = None


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [("epochs", "ten", int), ("lrs", ["fast"], float)],
    ids=["field", "list-item"],
)
def test_declared_type_is_the_schemas(key: str, value: object, expected: type) -> None:
    cfg = OmegaConf.structured(Schema)
    with pytest.raises(ValidationError) as raised:
        OmegaConf.update(cfg, key, value)
    assert oc_compat.declared_type(raised.value) is expected


def test_a_wrong_value_message_names_the_declared_type() -> None:
    from hydra.errors import ConfigCompositionException

    from lightning_args.run.explain import translate

    cfg = OmegaConf.structured(Schema)
    cfg.lrs = ListConfig([0.1])
    with pytest.raises(ValidationError) as raised:
        cfg.lrs[0] = "fast"
    composing = ConfigCompositionException("Error merging override lrs.0=fast")
    composing.__cause__ = raised.value  # how Hydra reports a wrong command-line value
    friendly = translate(composing)
    assert isinstance(friendly, ConfigTypeError)
    assert "'fast' is not float" in str(friendly)


def test_own_readonly_flag_is_none_when_inherited() -> None:
    cfg = OmegaConf.create({"hydra": {"run": 1}})
    assert oc_compat.own_readonly_flag(cfg.hydra) is None
    OmegaConf.set_readonly(cfg, True)
    assert oc_compat.own_readonly_flag(cfg.hydra) is None  # inherited: the effective flag is True
    assert OmegaConf.is_readonly(cfg.hydra)
    OmegaConf.set_readonly(cfg.hydra, False)
    assert oc_compat.own_readonly_flag(cfg.hydra) is False


@pytest.mark.parametrize("kept", [True, False], ids=["kept", "control-hydra-as-it-is"])
def test_a_restored_state_keeps_the_workers_plugin_scan(
    monkeypatch: pytest.MonkeyPatch, kept: bool
) -> None:
    """What a joblib worker does at the start of every job: ``Singleton.set_state`` with the
    sweeper's singletons. Kept, no new scan; as Hydra is (the control), one per job."""
    from hydra.core.plugins import Plugins
    from hydra.core.singleton import Singleton

    monkeypatch.setattr(Singleton, "set_state", Singleton.__dict__["set_state"])  # restored after
    monkeypatch.setattr(Singleton, "_instances", dict(Singleton._instances))
    scans: list[int] = []
    scan = Plugins._scan_all_plugins

    def counted(modules: Any) -> Any:
        scans.append(1)
        return scan(modules=modules)

    monkeypatch.setattr(Plugins, "_scan_all_plugins", staticmethod(counted))
    if kept:
        compat.keep_plugins_per_process()
        compat.keep_plugins_per_process()  # idempotent: one wrapper
    before = Plugins.instance()  # the worker's first job scanned
    scans.clear()
    for _ in range(3):  # three jobs
        Singleton.set_state(Singleton.get_state())
    assert (Plugins.instance() is before) is kept
    assert len(scans) == (0 if kept else 3)
    assert Plugins.instance().discover()  # and it still finds the plugins


def test_joblib_jobs_run_as_the_joblib_launcher_runs_them() -> None:
    """The job function and the settings' conversion our joblib launcher calls are still
    hydra-joblib-launcher's, with the arguments it gives them."""
    import inspect

    from hydra_plugins.hydra_joblib_launcher import _core

    assert list(inspect.signature(_core.execute_job).parameters) == [
        "idx",
        "overrides",
        "hydra_context",
        "config",
        "task_function",
        "singleton_state",
    ]
    assert "execute_job" in inspect.getsource(_core.launch)
    given = {"n_jobs": 2, "pre_dispatch": "2*n_jobs", "batch_size": "3", "max_nbytes": None}
    assert compat.joblib_parallel_settings(given) == {
        "n_jobs": 2,
        "pre_dispatch": "2*n_jobs",
        "batch_size": 3,
        "max_nbytes": None,
        "backend": "loky",
    }
    assert given["batch_size"] == "3"  # the caller's settings stay as they were


def test_the_gpu_launcher_is_a_joblib_launcher() -> None:
    from hydra_plugins.hydra_joblib_launcher.joblib_launcher import JoblibLauncher

    from hydra_plugins.lightning_args_gpus.lightning_args_gpus_launcher import (
        LightningArgsGpusLauncher,
    )

    assert compat.is_joblib_launcher(JoblibLauncher())
    assert compat.is_joblib_launcher(LightningArgsGpusLauncher(trials_per_device=1))
    assert not compat.is_joblib_launcher(object())


@dataclass
class _Sketch:
    width: int = 3
    depths: list[int] = dataclasses.field(default_factory=lambda: [1, 2])


@pytest.fixture
def conversions(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """The schemas ``OmegaConf.structured`` converts while the test runs."""
    made: list[object] = []
    structured = OmegaConf.structured

    def counting(obj: Any, *args: Any, **kwargs: Any) -> Any:
        made.append(obj)
        return structured(obj, *args, **kwargs)

    monkeypatch.setattr(OmegaConf, "structured", counting)
    return made


@pytest.mark.parametrize("lazily", [True, False], ids=["lazily", "control-store"])
def test_a_lazily_stored_schema_is_made_at_its_first_load_once(
    conversions: list[object], lazily: bool
) -> None:
    """Hydra's own ``store`` (the control) converts at once; each load is a fresh deep copy."""
    store = ConfigStore.instance()
    if lazily:
        compat.store_lazily("sketch", _Sketch, group="test_compat/lazily", package="p")
    else:
        store.store(name="sketch", node=_Sketch, group="test_compat/lazily", package="p")
    assert conversions == ([] if lazily else [_Sketch])
    first = store.load("test_compat/lazily/sketch.yaml")
    first.node.depths.append(3)  # a load is the caller's to change
    second = store.load("test_compat/lazily/sketch.yaml")
    assert conversions == [_Sketch]
    assert OmegaConf.to_container(second.node) == {"width": 3, "depths": [1, 2]}
    assert OmegaConf.get_type(second.node) is _Sketch  # typed: a wrong value is refused
    with pytest.raises(ValidationError):
        second.node.width = "wide"
    assert (second.name, second.group, second.package) == (
        "sketch.yaml",
        "test_compat/lazily",
        "p",
    )


def _by_value() -> type:
    """A schema cloudpickle sends by value, as it does a plugin's config class that Hydra's
    plugin scan executed again (not the class its module's name leads to)."""

    @dataclass
    class Shipped:
        depths: list[int] = dataclasses.field(default_factory=lambda: [1, 2])

    return Shipped


def test_a_lazily_stored_schema_survives_the_singletons_trip_to_a_worker() -> None:
    """Hydra's joblib launcher deep-copies the ConfigStore and pickles it for each worker."""
    compat.store_lazily("shipped", _by_value(), group="test_compat/shipped")
    state = cloudpickle.loads(cloudpickle.dumps(Singleton.get_state()))
    shipped = state["instances"][ConfigStore].load("test_compat/shipped/shipped.yaml")
    assert list(shipped.node.depths) == [1, 2]


def test_control_a_schema_sent_by_value_no_longer_converts() -> None:
    """What the entry's made node guards against: the class itself, sent by value, has field
    defaults that are not ``dataclasses.MISSING`` any more."""
    schema = cloudpickle.loads(cloudpickle.dumps(_by_value()))
    with pytest.raises(ValidationError, match="_MISSING_TYPE"):
        OmegaConf.structured(schema)
