"""Each trial's config composed once per set of group choices
(``hydra_plugins/lightning_args_optuna/_composing.py``) is the config Hydra composes from
scratch, for every kind of override; in process, on the sweeper tests' tiny app."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
from hydra._internal.config_loader_impl import ConfigLoaderImpl
from hydra._internal.utils import create_config_search_path
from hydra.errors import ConfigCompositionException
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

import hydra_plugins.lightning_args_optuna.config  # noqa: F401 (stores the sweeper's schema)
from hydra_plugins.lightning_args_optuna import _composing
from hydra_plugins.lightning_args_optuna._composing import ComposingOnce
from tests.helpers import REPO
from tests.test_sweeper import make_app

#: The command line of the sweep (hydra overrides among them), then one row per trial, in order:
#: later rows reuse the compositions of earlier ones.
COMMAND = [
    "hydra/launcher=basic",
    "hydra.sweeper.n_trials=9",
    "hydra.sweep.subdir=s_${hydra.job.num}",  # read unresolved: the job's number is not set yet
    "x=interval(0,1)",
]
TRIALS = [
    ("values", ["x=0.5"], True),
    ("values-again", ["x=0.25", "encoder.size=3"], False),
    ("group", ["encoder=b", "x=0.1"], True),
    ("value-in-the-chosen-group", ["x=0.1", "encoder=b", "encoder.depth=2"], False),
    (
        "hydra-values",
        ["x=0.2", "hydra.sweep.dir='/tmp/s w'", "++hydra.job.env_set.T='{\"a\": 1}'"],
        False,
    ),
    ("hydra-interpolation", ["x=0.2", "hydra.job.id=j_${hydra.job.num}"], False),
    ("add", ["+extra=1", "x=0.3"], False),
    ("add-a-dict", ["+extra={a: 1, b: [1, 2]}", "x=0.3"], False),
    ("delete", ["~nan_below", "x=0.3"], False),
    ("interpolation", ["x=${sleep}"], False),
    ("list", ["+layers=[1,2,3]", "x=0.4"], False),
    ("derived-setting", ["hydra.job.env_copy=[HOME]", "x=0.1"], True),
]


@pytest.fixture(scope="module")
def loader(tmp_path_factory: pytest.TempPathFactory) -> tuple[ConfigLoaderImpl, DictConfig]:
    app = make_app(tmp_path_factory.mktemp("app"))
    loader = ConfigLoaderImpl(config_search_path=create_config_search_path(str(app / "conf")))
    master = loader.load_configuration("config", COMMAND, run_mode=RunMode.MULTIRUN)
    return loader, master


def compare(loader: ConfigLoaderImpl, master: DictConfig, once: ComposingOnce) -> list[str]:
    """The rows whose config differs from Hydra's; checks the compositions made."""
    differ = []
    for name, overrides, composes in TRIALS:
        before = once.composed
        fresh = loader.load_sweep_config(master, overrides)
        ours = once.load_sweep_config(master, list(overrides))
        if OmegaConf.to_yaml(ours) != OmegaConf.to_yaml(fresh) or (
            OmegaConf.is_struct(ours) != OmegaConf.is_struct(fresh)
        ):
            differ.append(name)
        assert once.composed - before == int(composes), name
    return differ


def test_every_trial_gets_the_config_hydra_composes(
    loader: tuple[ConfigLoaderImpl, DictConfig],
) -> None:
    assert compare(*loader, ComposingOnce(loader[0])) == []


def test_control_without_rebuilding_what_hydra_derives_the_configs_differ(
    loader: tuple[ConfigLoaderImpl, DictConfig], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_composing, "_rebuild", lambda *args: None)
    differ = compare(*loader, ComposingOnce(loader[0]))
    assert "values-again" in differ
    assert "derived-setting" not in differ  # composed from scratch: Hydra's own


def test_a_copy_is_never_the_template(loader: tuple[ConfigLoaderImpl, DictConfig]) -> None:
    base, master = loader
    once = ComposingOnce(base)
    first = once.load_sweep_config(master, ["x=0.5"])
    first.x = 0.9  # a job changing its config changes nothing for the next one
    assert once.load_sweep_config(master, ["x=0.6"]).x == 0.6
    assert once.load_sweep_config(master, ["encoder.size=2"]).x == 0.0


def test_a_bad_value_fails_as_hydra_fails(loader: tuple[ConfigLoaderImpl, DictConfig]) -> None:
    base, master = loader
    once = ComposingOnce(base)
    once.load_sweep_config(master, ["x=0.5"])
    for overrides in (["nope=1"], ["hydra.sweeper.n_trials=abc"], ["+x=1"]):
        with pytest.raises(ConfigCompositionException) as hydra:
            base.load_sweep_config(master, overrides)
        with pytest.raises(ConfigCompositionException) as ours:
            once.load_sweep_config(master, overrides)
        assert str(ours.value) == str(hydra.value)


def travels(app: str) -> None:
    """joblib pickles the loader with every job: each copy shares the sweep's templates in the
    process that unpickled it. Run by the test below in a fresh interpreter: Hydra's suites in
    this one re-execute the config source modules, after which none of their objects pickle."""
    import pickle

    from hydra._internal.config_loader_impl import ConfigLoaderImpl
    from hydra._internal.utils import create_config_search_path

    base = ConfigLoaderImpl(config_search_path=create_config_search_path(f"{app}/conf"))
    master = base.load_configuration("config", COMMAND, run_mode=RunMode.MULTIRUN)
    once = ComposingOnce(base)
    copies = [pickle.loads(pickle.dumps(once)) for _ in range(3)]
    assert all(c.token == once.token for c in copies)
    configs = [c.load_sweep_config(master, [f"x=0.{i}"]) for i, c in enumerate(copies)]
    assert [c.composed for c in copies] == [1, 0, 0]
    assert [cfg.x for cfg in configs] == [0.0, 0.1, 0.2]
    assert copy.deepcopy(configs[2]) == configs[2]


@pytest.mark.slow
def test_it_travels_to_a_worker_and_composes_there(tmp_path: Path) -> None:
    app = make_app(tmp_path / "app")
    code = f"from tests.test_composing import travels; travels({str(app)!r}); print('ok')"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
