"""The search space as the config groups extend it: an option that a trial chooses may declare
more tunable keys (``<search_space_group>/<group>/<option>.yaml``), so a trial's overrides, the
check before any job and the list of a finite space's configurations all compose configs.

None of it touches the study: it is what the config allows, kept apart from the sweep's loop.
"""

from __future__ import annotations

from typing import Any

import optuna
from hydra.errors import ConfigCompositionException, MissingConfigException
from hydra.types import HydraContext
from omegaconf import DictConfig, OmegaConf

from lightning_args._util.flat import flatten
from lightning_args.run.explain import translate
from lightning_args.sweep.attrs import OVERRIDES
from lightning_args.sweep.space import (
    ConfigKey,
    Param,
    Space,
    config_key,
    finite_values,
    parse,
    suggest,
)

_MAX_LISTED = 10_000  # a finite space with more configurations is not listed (nor checked)


def parse_space(sweeper_params: Any, arguments: list[str]) -> tuple[list[str], Space]:
    """Split the command line into fixed overrides and searched ones; join ``params``
    (``sweeper_params``: ``hydra.sweeper.params`` as plain values, or ``None``)."""
    from_params = parse(sweeper_params or {}, where="hydra.sweeper.params")
    from_line = parse(arguments, where="command line")
    params = {p.name: p for p in from_params.params}
    params.update({p.name: p for p in from_line.params})  # the command line wins
    overridden = {p.name for p in from_line.params} | {_key(f) for f in from_line.fixed}
    fixed = [f for f in from_params.fixed if _key(f) not in overridden]
    params = {k: p for k, p in params.items() if k not in {_key(f) for f in from_line.fixed}}
    return list(from_line.fixed), Space(tuple(params.values()), tuple(fixed))


class ComposedSpace:
    """The config's groups as the search space reads them; each lookup is composed once."""

    def __init__(
        self, hydra_context: HydraContext, config: DictConfig, group_root: str | None
    ) -> None:
        self.hydra_context = hydra_context
        self.config = config
        #: ``hydra.sweeper.search_space_group``: where options declare their spaces (``None``:
        #: nowhere, the space is the given one).
        self.group_root = group_root
        self._choices_cache: dict[tuple[str, ...], dict[str, str]] = {}
        self._option_spaces: dict[tuple[str, str], Space | None] = {}
        self._groups: dict[str, bool] = {}

    def check(self, base: list[str], space: Space) -> None:
        """Compose the config with every choice (and each interval's bounds) before any job,
        so a key that is not in the config or an option that does not exist fails now."""
        first = {p.key: p.override(_first(p)) for p in space.params}
        probes = [first]
        for param in space.params:
            for value in _probe_values(param)[1:]:
                probes.append({**first, param.key: param.override(value)})
        # The options' own spaces, as far as the first choices reach them.
        declared = [p for p in self.option_params(base, first) if p.name not in space.names()]
        if declared:
            probes.append({**first, **{p.key: p.override(_first(p)) for p in declared}})
        for probe in probes:
            try:
                self._choices([*base, *space.fixed, *probe.values()])
            except (ConfigCompositionException, MissingConfigException) as error:
                readable = translate(error)
                if readable is None:
                    raise
                raise type(readable)(
                    f"the search space does not fit the config: {readable}\n  (while checking "
                    f"the trial {' '.join(probe.values())})"
                ) from None

    def finite_space(self, base: list[str], space: Space) -> dict[ConfigKey, dict[str, Any]] | None:
        """Every configuration a trial can have, by its key, when the space is finite (all
        ``choice``/``range``, the options' spaces included) and has at most
        :data:`_MAX_LISTED` of them; else ``None``.

        Follows :meth:`trial_overrides`: the searched keys first, then the keys that the chosen
        options declare, a level of nested options at a time.
        """
        found: dict[ConfigKey, dict[str, Any]] = {}

        def walk(
            chosen: dict[str, str],
            values: dict[str, Any],
            dists: dict[str, optuna.distributions.BaseDistribution],
            pending: list[Param],
            taken: set[str],
            level: int,
        ) -> bool:
            if not pending:
                extra = [] if level >= 8 else self.option_params(base, chosen)
                extra = [p for p in extra if p.name not in taken]
                if extra:
                    names = taken | {p.name for p in extra}
                    return walk(chosen, values, dists, extra, names, level + 1)
                found[config_key(values, dists)] = values
                return len(found) <= _MAX_LISTED
            param, rest = pending[0], pending[1:]
            options = finite_values(param.distribution, _MAX_LISTED)
            if options is None:
                return False
            dists = {**dists, param.name: param.distribution}
            for value in options:
                more = {**chosen, param.key: param.override(value)}
                if not walk(more, {**values, param.name: value}, dists, rest, taken, level):
                    return False
            return True

        listed = walk({}, {}, {}, list(space.params), space.names(), 0)
        return found if listed else None

    def trial_overrides(
        self, trial: optuna.trial.Trial, base: list[str], space: Space
    ) -> list[str]:
        """Sample the trial's values (define-by-run) and return the job's task overrides."""
        chosen: dict[str, str] = {}
        for param in space.params:
            chosen[param.key] = param.override(suggest(trial, param))
        taken = space.names()
        # Options chosen by the values so far may make more keys tunable; those may choose
        # further options (a depth of nested groups), hence the loop.
        for _ in range(8):
            extra = [p for p in self.option_params(base, chosen) if p.name not in taken]
            if not extra:
                break
            for param in extra:
                chosen[param.key] = param.override(suggest(trial, param))
                taken.add(param.name)
        overrides = [*base, *space.fixed, *chosen.values()]
        trial.set_user_attr(OVERRIDES, overrides)
        return overrides

    def option_params(self, base: list[str], chosen: dict[str, str]) -> list[Param]:
        """Parameters declared by the options this trial uses (``search_space/<group>/<opt>``)."""
        group_root = self.group_root
        if not group_root:
            return []
        group_overrides = [o for k, o in chosen.items() if self._is_group(k)]
        params: list[Param] = []
        for group, option in self._choices([*base, *group_overrides]).items():
            if group.startswith("hydra/"):
                continue
            space = self._option_space(group_root, group, option)
            if space is not None:
                params.extend(space.params)
        return params

    def conditional(self, base: list[str], space: Space) -> list[str]:
        """The parameters only some trials have: those the options of a searched group declare
        for some of its choices but not for all (one level of groups)."""
        names: list[str] = []
        for param in space.params:
            if not self._is_group(param.key):
                continue
            declared = [
                {p.name for p in self.option_params(base, {param.key: param.override(value)})}
                for value in _probe_values(param)
            ]
            every = set.intersection(*declared) if declared else set()
            for found in declared:
                names += [n for n in sorted(found - every) if n not in names]
        return names

    def flat_config(self, overrides: list[str]) -> dict[str, Any]:
        """The task config a job with ``overrides`` gets, flat, interpolations as written (as a
        run's ``.hydra/config.yaml`` holds it)."""
        cfg = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
        task = OmegaConf.to_container(cfg, resolve=False)
        assert isinstance(task, dict)
        task.pop("hydra", None)
        return flatten(task)

    def _choices(self, overrides: list[str]) -> dict[str, str]:
        """The config-group choices of a composed trial config (memoised)."""
        key = tuple(overrides)
        if key not in self._choices_cache:
            cfg = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
            choices = OmegaConf.to_container(cfg.hydra.runtime.choices)
            assert isinstance(choices, dict)
            self._choices_cache[key] = {str(k): v for k, v in choices.items() if isinstance(v, str)}
        return self._choices_cache[key]

    def _is_group(self, key: str) -> bool:
        """Whether an override key chooses a config group option (``model/encoder``, ``model``)
        rather than setting a value (``model.width``)."""
        name = key.lstrip("+~").split("@")[0]
        if name not in self._groups:
            loader = self.hydra_context.config_loader
            self._groups[name] = "." not in name and bool(loader.get_group_options(name))
        return self._groups[name]

    def _option_space(self, root: str, group: str, option: str) -> Space | None:
        cache_key = (group, option)
        if cache_key not in self._option_spaces:
            self._option_spaces[cache_key] = _load_option_space(
                self.hydra_context, f"{root}/{group.split('@')[0]}", option, group
            )
        return self._option_spaces[cache_key]


def _load_option_space(
    hydra_context: HydraContext, group: str, option: str, choice_key: str
) -> Space | None:
    """``<root>/<group>/<option>.yaml``, its keys relative to where the option's node goes."""
    loader = hydra_context.config_loader
    if option not in loader.get_group_options(group):
        return None
    path = f"{group}/{option}"
    for source in loader.get_sources():
        if source.is_config(path):
            result = source.load_config(path)
            break
    else:
        return None
    package = result.header.get("package")
    if package in (None, "_group_"):
        # The option's own package: its group path, unless the choice moved it (group@pkg).
        group_path, _, moved = choice_key.partition("@")
        package = moved or group_path.replace("/", ".")
    prefix = "" if package == "_global_" else package
    declared = OmegaConf.to_container(result.config)
    entries = flatten(declared, prefix) if declared else {}  # an empty file declares nothing
    return parse(entries, where=f"{path}.yaml")


def _first(param: Param) -> Any:
    return _probe_values(param)[0]


def _probe_values(param: Param) -> list[Any]:
    dist = param.distribution
    if isinstance(dist, optuna.distributions.CategoricalDistribution):
        return list(dist.choices)
    low, high = dist.low, dist.high  # type: ignore[attr-defined]
    return [low, high]


def _key(line: str) -> str:
    return line.split("=", 1)[0].lstrip("+~")
