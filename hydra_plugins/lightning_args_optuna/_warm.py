"""``hydra.sweeper.warm_start``: finished runs of earlier sweeps or plain trainings, added to the
study as completed trials, so that the sampler starts from what they measured.

A run is used when it completed, measured the study's objective, has a value of every searched
parameter inside the space, and its config equals what this sweep would compose for those
values on every other key (:data:`NOT_COMPARED` aside). Otherwise it is skipped, and the
reason counted in the summary. A run already in the study (a resumed sweep) is not added again.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import yaml
from optuna.trial import TrialState, create_trial

from lightning_args._util.flat import flatten
from lightning_args.cli.runs import Run, find_runs
from lightning_args.errors import SearchSpaceError
from lightning_args.run.record import RunStatus
from lightning_args.sweep.attrs import OVERRIDES, WARM_START, WARM_START_REPORT
from lightning_args.sweep.space import Param, as_value

_log = logging.getLogger(__name__)

#: Config keys (and their subtrees) a run may differ in and still count: where it was written,
#: how it was shown or logged, its seed (another draw of the same configuration).
NOT_COMPARED = (
    "paths",
    "seed",
    "logger",
    "callbacks",
    "test",
    "ckpt_path",
    "overwrite",
    "trainer.enable_progress_bar",
    "trainer.enable_model_summary",
)

#: The parameters a run with these group choices (``{group: option}``) has, and the flat config
#: this sweep composes for a trial's overrides.
ParamsOf = Callable[[dict[str, str]], Sequence[Param]]
ComposeFlat = Callable[[list[str]], dict[str, Any]]


@dataclass
class WarmStart:
    """What a warm start found: runs used, and the skipped ones by reason."""

    used: int = 0
    skipped: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {"used": self.used, "skipped": dict(sorted(self.skipped.items()))}


def read_runs(
    study: optuna.Study,
    roots: Sequence[str],
    *,
    metric: str,
    params_of: ParamsOf,
    compose: ComposeFlat,
    own: Path,
) -> tuple[list[optuna.trial.FrozenTrial], WarmStart]:
    """The usable runs under ``roots`` as COMPLETE trials, and what was skipped and why.

    Reads and composes, so it runs outside the study's lock; :func:`add_runs` adds them under
    it. Runs under ``own``, this sweep's directory, are its own trials: never used; runs the
    study has already are left out.
    """
    if len(study.directions) != 1:
        raise SearchSpaceError(
            "hydra.sweeper.warm_start: a run records one objective value, the study has "
            f"{len(study.directions)} directions. Fix: warm-start single-objective studies only"
        )
    already = _added(study)
    mine = own.resolve()
    found, trials = WarmStart(), []
    for root in roots:
        path = Path(root)
        if not path.is_dir():
            raise SearchSpaceError(
                f"hydra.sweeper.warm_start: {root!r} is not a directory. Expected run "
                "directories or folders of them (outputs/runs, outputs/sweeps/<study>). Fix: "
                "correct the path"
            )
        for run in find_runs(path):
            where = run.path.resolve()
            if str(where) in already or where.is_relative_to(mine):
                continue
            trial = _trial(run, metric, params_of, compose)
            if isinstance(trial, str):
                found.skipped[trial] += 1
            else:
                trials.append(trial)
                already.add(str(where))
    return trials, found


def add_runs(
    study: optuna.Study, trials: Sequence[optuna.trial.FrozenTrial], found: WarmStart
) -> WarmStart:
    """Add what :func:`read_runs` found (under the study's lock: another sweeper may have added
    some meanwhile, which are not added twice); what the study now holds is also kept on it
    (its ``warm_start`` user attribute), for the summary."""
    already = _added(study)
    for trial in trials:
        if trial.user_attrs[WARM_START] not in already:
            study.add_trial(trial)
    # Those of earlier starts of this sweep count too: the summary tells the study's story.
    found.used = len(_added(study))
    study.set_user_attr(WARM_START_REPORT, found.as_dict())
    _log.info(
        "Warm start: %d earlier run(s) in the study as completed trials; skipped: %s",
        found.used,
        ", ".join(f"{n} {why}" for why, n in sorted(found.skipped.items())) or "none",
    )
    return found


def _added(study: optuna.Study) -> set[str]:
    """The run directories the study's warm-started trials came from."""
    return {
        str(t.user_attrs[WARM_START])
        for t in study.get_trials(deepcopy=False)
        if WARM_START in t.user_attrs
    }


def _trial(
    run: Run, metric: str, params_of: ParamsOf, compose: ComposeFlat
) -> optuna.trial.FrozenTrial | str:
    """The run as a COMPLETE trial, or why it is skipped (a short reason, counted)."""
    record = run.record
    if record is None or run.status != RunStatus.COMPLETED.value:
        return f"not completed ({run.status})"
    if record.objective.get("metric") != metric:
        return f"another objective ({record.objective.get('metric')})"
    value = record.objective.get("value")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return "no finite objective value"
    try:
        config = flatten(run.config())
        choices = _choices(run.path)
    except (OSError, yaml.YAMLError):
        return "unreadable config"
    params = params_of(choices)
    values: dict[str, Any] = {}
    for param in params:
        raw = choices.get(param.name, config.get(param.name, _MISSING))
        if raw is _MISSING:
            return f"no value of {param.name}"
        held = as_value(param.distribution, raw)
        if held is None:
            return f"outside the space ({param.name})"
        values[param.name] = held
    ours = compose([param.override(values[param.name]) for param in params])
    differs = sorted(
        key
        for key in set(ours) | set(config)
        if not _ignored(key) and ours.get(key, _MISSING) != config.get(key, _MISSING)
    )
    if differs:
        return f"config differs ({differs[0]})"
    return create_trial(
        state=TrialState.COMPLETE,
        value=float(value),
        params=values,
        distributions={p.name: p.distribution for p in params},
        user_attrs={WARM_START: str(run.path.resolve()), OVERRIDES: list(record.overrides)},
    )


_MISSING = object()


def _ignored(key: str) -> bool:
    return any(key == k or key.startswith(k + ".") for k in NOT_COMPARED)


def _choices(run_dir: Path) -> dict[str, str]:
    """The run's config-group choices (``.hydra/hydra.yaml``'s ``hydra.runtime.choices``)."""
    path = run_dir / ".hydra" / "hydra.yaml"
    if not path.is_file():
        return {}
    with path.open() as stream:
        node: Any = yaml.safe_load(stream)
    for key in ("hydra", "runtime", "choices"):  # a file from anyone: every level checked
        node = node.get(key) if isinstance(node, dict) else None
    if not isinstance(node, dict):
        return {}
    return {str(k): v for k, v in node.items() if isinstance(v, str)}
