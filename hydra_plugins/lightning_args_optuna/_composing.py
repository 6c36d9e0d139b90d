"""Each trial's config, composed once per set of config group choices instead of once per trial.

Hydra composes every job's config from the files again (``load_sweep_config``): 0.2-0.3 s of a
trial here, most of the sweeper's cost per trial. Two trials that choose the same config group
options differ only in values set after composition, so the first composition of those
choices is kept (the template) and each trial gets a copy with its own values applied, exactly
as Hydra applies them (:mod:`lightning_args._compat.hydra`), its override lists and job name
rebuilt as Hydra builds them. ``tests/test_composing.py`` compares both for every kind of
override. Overrides that change what is composed or what Hydra derives afterwards
(``hydra.searchpath``, ``hydra.job.env_copy``, ...) make that trial composed from scratch.

Templates live in the process that composes (the sweeper's, or a joblib worker's, which
receives this loader pickled with each job), keyed by the sweep's token and the choices, for
the sweep's life: an edit of a config file during a sweep reaches no trial of it.
"""

from __future__ import annotations

import copy
import os
import threading
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from hydra.core.config_loader import ConfigLoader
from hydra.core.default_element import ResultDefault
from hydra.core.override_parser.types import Override
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict

from lightning_args._compat.hydra import (
    apply_value_overrides,
    is_group_override,
    keep_plugins_per_process,
    overrides_dirname,
    parse_overrides,
)

#: Value overrides that Hydra reads while it composes, or derives something from afterwards:
#: a trial setting one of these is composed from scratch.
_DERIVED = (
    "hydra.searchpath",
    "hydra.job.env_copy",
    "hydra.job.name",
    "hydra.job.config_name",
    "hydra.job.config.override_dirname",
    "hydra.runtime",
    "hydra.overrides",
)
_KEPT = 16  # templates kept per process, most recently used first

_templates: OrderedDict[tuple[str, ...], DictConfig] = OrderedDict()
_lock = threading.Lock()


class ComposingOnce(ConfigLoader):
    """Hydra's config loader for one sweep, composing each set of group choices once.

    Example::

        context = HydraContext(config_loader=ComposingOnce(hydra_context.config_loader),
                               callbacks=hydra_context.callbacks)
        launcher = Plugins.instance().instantiate_launcher(hydra_context=context, ...)
    """

    def __init__(self, loader: ConfigLoader) -> None:
        self.loader = loader
        self.token = uuid.uuid4().hex  # this sweep's templates, in whichever process composes
        #: Compositions from scratch this object made (a pickled copy counts its own).
        self.composed = 0

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Unpickled in a joblib worker, before Hydra restores the sweeper's singletons there:
        # from then on they keep the worker's plugin scan (lightning_args._compat.hydra).
        self.__dict__.update(state)
        keep_plugins_per_process()

    def load_sweep_config(
        self, master_config: DictConfig, sweep_overrides: list[str]
    ) -> DictConfig:
        # Unresolved, as Hydra reads them: a value may interpolate (``${hydra.job.num}``).
        hydra_lines = _lines(master_config.hydra.overrides.hydra)
        parsed = parse_overrides([*hydra_lines, *sweep_overrides])
        trial = parsed[len(hydra_lines) :]
        grouped = [is_group_override(self.loader, o) for o in trial]
        values = [o for o, group in zip(trial, grouped, strict=True) if not group]
        if any(_derived(o) for o in values) or any(o.is_sweep_override() for o in trial):
            self.composed += 1
            return self.loader.load_sweep_config(master_config, sweep_overrides)
        structural = [str(o.input_line) for o, group in zip(trial, grouped, strict=True) if group]
        key = (self.token, str(master_config.hydra.job.config_name), *hydra_lines, *structural)
        with _lock:
            template = _templates.get(key)
            if template is None:
                self.composed += 1
                template = self.loader.load_sweep_config(master_config, structural)
                _templates[key] = template
            _templates.move_to_end(key, last=False)
            while len(_templates) > _KEPT:
                _templates.popitem()
            cfg = copy.deepcopy(template)
        apply_value_overrides(cfg, values)
        composed = parsed[: len(hydra_lines)] + [
            o for o, g in zip(trial, grouped, strict=True) if g
        ]
        _rebuild(cfg, template, parsed, composed)
        OmegaConf.copy_cache(from_config=master_config, to_config=cfg)
        return cfg

    # The rest of the interface is the loader's.

    def load_configuration(
        self,
        config_name: str | None,
        overrides: list[str],
        run_mode: RunMode,
        from_shell: bool = True,
        validate_sweep_overrides: bool = True,
    ) -> DictConfig:
        return self.loader.load_configuration(
            config_name, overrides, run_mode, from_shell, validate_sweep_overrides
        )

    def get_search_path(self) -> Any:
        return self.loader.get_search_path()

    def get_sources(self) -> list[Any]:
        return self.loader.get_sources()

    def list_groups(self, parent_name: str) -> list[str]:
        return self.loader.list_groups(parent_name)

    def get_group_options(
        self,
        group_name: str,
        results_filter: Any = None,
        config_name: str | None = None,
        overrides: list[str] | None = None,
    ) -> list[str]:
        return self.loader.get_group_options(group_name, results_filter, config_name, overrides)

    def compute_defaults_list(
        self, config_name: str | None, overrides: list[str], run_mode: RunMode
    ) -> list[ResultDefault]:
        return list(self.loader.compute_defaults_list(config_name, overrides, run_mode))


def _lines(overrides: Any) -> list[str]:
    lines = OmegaConf.to_container(overrides, resolve=False)
    if not isinstance(lines, list):  # Hydra writes hydra.overrides.* itself, always as lists
        raise TypeError(f"hydra.overrides: expected a list of overrides, got {lines!r}")
    return [str(line) for line in lines]


def _derived(override: Override) -> bool:
    key = override.key_or_group.lstrip("+~")
    return any(key == d or key.startswith(f"{d}.") for d in _DERIVED)


def _rebuild(
    cfg: DictConfig,
    template: DictConfig,
    parsed: Sequence[Override],
    composed: Sequence[Override],
) -> None:
    """What Hydra derives from a job's overrides after composing, for ``parsed`` where the
    template had only ``composed``: the override lists (``hydra.overrides.hydra`` and
    ``.task``: what the config itself had, then each override of that kind in order), the
    environment copied into the job, the working directory and ``override_dirname``."""
    for kind, is_hydra in (("hydra", True), ("task", False)):
        listed = _lines(template.hydra.overrides[kind])
        before = len(listed) - sum(o.is_hydra_override() == is_hydra for o in composed)
        cfg.hydra.overrides[kind] = listed[:before] + [
            str(o.input_line) for o in parsed if o.is_hydra_override() == is_hydra
        ]
    with open_dict(cfg.hydra):
        for key in cfg.hydra.job.env_copy:
            cfg.hydra.job.env_set[key] = os.environ[key]
    cfg.hydra.runtime.cwd = os.getcwd()
    task = [o for o in parsed if not o.is_hydra_override()]
    cfg.hydra.job.override_dirname = overrides_dirname(cfg, task)
