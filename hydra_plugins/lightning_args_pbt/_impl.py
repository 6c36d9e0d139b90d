"""The PBT sweep: a population trained interval by interval, each interval a job of Hydra's
launcher, judged and perturbed as it ends (:mod:`._population`).

    parse the mutable hyperparameters -> read the journal (a resumed sweep) -> draw the first
    values -> ``n_jobs`` loops, each taking the next member that is free: its next interval's
    job (interval 0 from scratch; later ones fork the member's own last run, or a better
    member's: ``fork.parent``) -> the interval's score in the journal -> the summary
    (``pbt.yaml``) and its pictures (``pbt_scores.png``, ``pbt_lineage.png``)

Interval ``k`` of member ``m`` runs in ``<sweep dir>/m<m>/<k>`` and trains to epoch
``(k + 1) * perturbation_interval``; it goes on from a checkpoint through
:mod:`lightning_args.run.fork`, so weights, optimizer, schedule and random streams carry over and
the new hyperparameters are written into the restored states. No barrier: a member that ends an
interval is judged against the others' latest scores and goes on at once.

Killed and re-run with the same command, the sweep reads ``pbt.jsonl`` and continues: finished
intervals are kept; an interval that was running, or that failed, continues from its own
checkpoint (or starts again, its old directory moved aside, if it saved none).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import yaml
from hydra.core.plugins import Plugins
from hydra.core.utils import JobReturn
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

from hydra_plugins.lightning_args_optuna._composed import parse_space
from hydra_plugins.lightning_args_optuna._console import QuietTask, ShortLaunchLines
from hydra_plugins.lightning_args_optuna._progress import in_threads
from hydra_plugins.lightning_args_optuna._settings import (
    container,
    launcher_parallelism,
    parse_directions,
    pin_sweep_dir,
)
from hydra_plugins.lightning_args_pbt._plots import write_plots
from hydra_plugins.lightning_args_pbt._population import (
    JOURNAL,
    Interval,
    Member,
    Step,
    append,
    next_step,
    read_journal,
    rng,
    sample,
)
from hydra_plugins.lightning_args_pbt.config import PBTSweeperConfig
from lightning_args._compat import joblib as joblib_compat
from lightning_args._compat.hydra import failed_job, is_joblib_launcher, job_error
from lightning_args._util.atomic import atomic_write
from lightning_args.errors import SearchSpaceError, SweepError
from lightning_args.run.explain import headline
from lightning_args.run.fork import FORK_CHECKPOINT, is_forkable_key
from lightning_args.run.record import RECORD_NAME
from lightning_args.sweep.pacing import admission

_log = logging.getLogger(__name__)

SUMMARY = "pbt.yaml"


class PBTSweep:
    """One ``-m`` invocation of the PBT sweeper."""

    def __init__(
        self,
        settings: PBTSweeperConfig,
        hydra_context: HydraContext,
        task_function: TaskFunction,
        config: DictConfig,
    ) -> None:
        _check(settings)
        self.settings = settings
        self.config = config
        self.sweep_dir = pin_sweep_dir(config)
        task = task_function if settings.verbose else QuietTask(task_function)
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task, config=config
        )
        self.in_process = type(self.launcher).__name__ == "BasicLauncher"
        self.maximize = parse_directions(settings.direction)[0] == "maximize"
        self._lock = threading.Lock()
        self._started = time.time()
        self._launch_lines = ShortLaunchLines()  # "#<job> : m<k>/<i> <values>", headers once

    def run(self, arguments: list[str]) -> list[list[JobReturn]]:
        try:
            return self._run(arguments)
        except BaseException:
            if is_joblib_launcher(self.launcher):  # no member has a job left: not waited for
                joblib_compat.release_workers(idle=True)
            raise

    def _run(self, arguments: list[str]) -> list[list[JobReturn]]:
        base, space = parse_space(container(self.settings.params), arguments)
        if not space.params:
            raise SearchSpaceError(
                "hydra.sweeper.params names no hyperparameter to explore. Fix: e.g. "
                "hydra.sweeper.params='{optimizer.lr: tag(log, interval(1e-4, 1e-1))}'"
            )
        refused = [p.name for p in space.params if not is_forkable_key(p.name)]
        if refused:
            raise SearchSpaceError(
                f"hydra.sweeper.params.{refused[0]}: population-based training changes its "
                "hyperparameters mid-training, and this one cannot change there (the model's "
                "architecture, what is built). Fix: explore an optimizer's, a scheduler's or a "
                "loss weight's hyperparameter, or search it with +sweep=optuna"
            )
        self.base = [*base, *space.fixed]
        self.space = {p.name: p.distribution for p in space.params}
        self.keys = {p.name: p for p in space.params}
        self.sweep_dir.mkdir(parents=True, exist_ok=True)
        self.journal = self.sweep_dir / JOURNAL
        self.members = self._members(read_journal(self.journal))
        done = sum(len(m.history) for m in self.members)
        total = self.settings.population * self.settings.intervals
        _log.info(
            "PBT: %d members x %d intervals of %d epochs; %d of %d intervals done, %d at a time "
            "here. Journal: %s",
            self.settings.population,
            self.settings.intervals,
            self.settings.perturbation_interval,
            done,
            total,
            self._workers(),
            self.journal,
        )
        self.returns: list[tuple[int, JobReturn]] = []
        self._busy: set[int] = set()
        with self._launch_lines.installed():
            self._loops()
        if is_joblib_launcher(self.launcher):
            joblib_compat.release_workers(idle=True)
        summary = self._summary()
        atomic_write(self.sweep_dir / SUMMARY, yaml.safe_dump(summary, sort_keys=False))
        metric = OmegaConf.select(self.config, "objective.metric", default="score")
        history = [i for m in self.members for i in m.history]
        write_plots(history, self.sweep_dir, metric=str(metric))
        best = summary["best"]
        _log.info(
            "PBT done: best member %s, %s=%s after %d intervals; its schedule is in %s",
            best["member"],
            metric,
            best["score"],
            len(best["schedule"]),
            self.sweep_dir / SUMMARY,
        )
        return [[ret] for _, ret in sorted(self.returns, key=lambda p: p[0])]

    # --- the population -------------------------------------------------------------------

    def _members(self, journal: list[Interval]) -> list[Member]:
        members = [
            Member(m, sample(self.space, rng(self.settings.seed, m)))
            for m in range(self.settings.population)
        ]
        for entry in journal:
            if entry.score is None:  # a failed interval: a re-run of the sweep tries it again
                continue
            if not 0 <= entry.member < len(members) or entry.interval != len(
                members[entry.member].history
            ):
                raise SweepError(
                    f"{self.journal}: member {entry.member}'s interval {entry.interval} does not "
                    "follow its earlier ones: the journal belongs to another sweep. Fix: a new "
                    "hydra.sweep.dir, or the same population and settings as before"
                )
            member = members[entry.member]
            member.history.append(entry)
            member.params = dict(entry.params)
        return members

    def _loops(self) -> None:
        def loop() -> None:
            while True:
                with admission(self.launcher):  # see the optuna sweeper's _trial_loop
                    member = self._take()
                    if member is None:
                        return
                    self._train(member)

        in_threads(loop, self._workers())

    def _take(self) -> Member | None:
        """The free member furthest behind (ties: the lowest number), marked busy; ``None``
        once every member has run its intervals."""
        with self._lock:
            free = [
                m
                for m in self.members
                if m.number not in self._busy
                and len(m.history) < self.settings.intervals
                and not (m.latest is not None and m.latest.score is None)  # a failed member stops
            ]
            if not free:
                return None
            member = min(free, key=lambda m: (len(m.history), m.number))
            self._busy.add(member.number)
            return member

    def _train(self, member: Member) -> None:
        """Run ``member``'s next interval and record how it ended."""
        k = len(member.history)
        with self._lock:  # the population's latest scores, as they are now
            step = (
                Step(dict(member.params), None, None)
                if member.latest is None
                else next_step(
                    member,
                    self.members,
                    self.space,
                    seed=self.settings.seed,
                    quantile_fraction=self.settings.quantile_fraction,
                    resample_probability=self.settings.resample_probability,
                    factors=self.settings.perturbation_factors,
                    maximize=self.maximize,
                )
            )
        run = f"m{member.number}/{k}"
        if step.exploited is not None:
            _log.info(
                "Member %d exploits member %d (its %s) and explores: %s",
                member.number,
                step.exploited,
                step.parent,
                _values(step.params),
            )
        job = k * self.settings.population + member.number
        epochs = self._epochs(step)
        origin = f" from {step.parent}" if step.parent else ""
        line = f"{run}{origin}, to epoch {epochs}: {_values(step.params)}"
        ret = self._launch(self._overrides(run, epochs, step), job, line)
        error = job_error(ret)
        score = None if error is not None else _score(ret.return_value)
        entry = Interval(
            member.number, k, run, step.params, score, epochs, step.parent, step.exploited
        )
        with self._lock:
            append(self.journal, entry)
            member.history.append(entry)
            member.params = dict(step.params)
            self.returns.append((job, ret))
            self._busy.discard(member.number)
            done = sum(len(m.history) for m in self.members)
        total = self.settings.population * self.settings.intervals
        if error is not None:
            _log.warning(
                "Member %d, interval %d failed: %s. The member stops; the others go on "
                "(its output: %s)",
                member.number,
                k,
                headline(error),
                self.sweep_dir / run,
            )
        else:
            _log.info(
                "Member %d, interval %d: %.6g (%s) | %d/%d intervals, %s elapsed",
                member.number,
                k,
                score,
                _values(step.params),
                done,
                total,
                _elapsed(time.time() - self._started),
            )

    def _epochs(self, step: Step) -> int:
        """The epoch an interval trains to: ``perturbation_interval`` past the checkpoint it
        goes on from (a better member's may be further on than this member's own)."""
        with self._lock:
            reached = {i.run: i.epochs for m in self.members for i in m.history}
        start = 0 if step.parent is None else reached[step.parent]
        return start + self.settings.perturbation_interval

    def _overrides(self, run: str, epochs: int, step: Step) -> list[str]:
        """The job of an interval in ``run``: the base overrides, the member's values, its
        length, where it goes on from; continued in its own directory if it began already."""
        values = [self.keys[key].override(value) for key, value in step.params.items()]
        lines = [
            *self.base,
            *values,
            f"trainer.max_epochs={epochs}",
            f"hydra.sweep.dir={_quoted(self.sweep_dir)}",
            f"hydra.sweep.subdir={run}",
        ]
        if step.parent is not None:
            lines.append(f"fork.parent={_quoted(self.sweep_dir / step.parent)}")
        here = self.sweep_dir / run
        for name in ("last.ckpt", "requeue.ckpt", FORK_CHECKPOINT):
            started = here / "checkpoints" / name
            if started.is_file():  # killed mid-interval: it goes on where it was
                lines.append(f"ckpt_path={_quoted(started)}")
                break
        else:
            if (here / RECORD_NAME).is_file():  # began, saved nothing: start it again
                lines.append("overwrite=true")
        return lines

    def _launch(self, overrides: list[str], job: int, line: str) -> JobReturn:
        try:
            with self._launch_lines.launching([(job, line)]):
                (ret,) = self.launcher.launch([overrides], initial_job_idx=job)
        except Exception as error:  # the launcher itself failed (e.g. submission refused)
            ret = failed_job(overrides, error)
        return ret

    def _workers(self) -> int:
        if self.settings.n_jobs is not None:
            return 1 if self.in_process else max(1, self.settings.n_jobs)
        return launcher_parallelism(
            self.config.hydra.launcher, in_process=self.in_process, plugin=self.launcher
        )

    # --- results ----------------------------------------------------------------------------

    def _summary(self) -> dict[str, Any]:
        """The best member's schedule (its values per interval, and whose checkpoint each
        interval went on from) and every member's scores."""
        finished = [m for m in self.members if m.latest is not None and m.latest.score is not None]
        if not finished:
            raise SweepError(
                f"every member failed: see each one's log under {self.sweep_dir}/m<k>/. Fix: "
                "remove the cause, then re-run the same command (the journal keeps what ended)"
            )
        pick = max if self.maximize else min
        best = pick(finished, key=lambda m: m.latest.score or 0.0)  # type: ignore[union-attr]
        return {
            "best": {
                "member": best.number,
                "score": best.latest.score if best.latest else None,
                "run": best.latest.run if best.latest else None,
                "schedule": [_scheduled(self.keys, i) for i in best.history],
            },
            "members": [_history(m) for m in self.members],
            "settings": {k: container(v) for k, v in asdict(self.settings).items()}
            | {"direction": "maximize" if self.maximize else "minimize"},
        }


def _quoted(path: Path) -> str:
    """A path as an override's value, quoted (a sweep directory's name holds ``=`` and ``,``)."""
    return "'" + str(path).replace("'", "\\'") + "'"


def _history(member: Member) -> dict[str, Any]:
    return {
        "member": member.number,
        "scores": [i.score for i in member.history],
        "exploited": [i.exploited for i in member.history],
    }


def _scheduled(keys: dict[str, Any], interval: Interval) -> dict[str, Any]:
    return {
        "interval": interval.interval,
        "run": interval.run,
        "from": interval.parent,
        "overrides": [keys[k].override(v) for k, v in interval.params.items() if k in keys],
        "score": interval.score,
    }


def _check(settings: PBTSweeperConfig) -> None:
    rules = [
        ("population", settings.population >= 2, "at least 2 members", "population=8"),
        ("intervals", settings.intervals >= 1, "at least 1", "intervals=4"),
        ("perturbation_interval", settings.perturbation_interval >= 1, "at least 1 epoch",
         "perturbation_interval=2"),
        ("quantile_fraction", 0 < settings.quantile_fraction <= 0.5, "above 0, at most 0.5",
         "quantile_fraction=0.25"),
        ("resample_probability", 0 <= settings.resample_probability <= 1, "from 0 to 1",
         "resample_probability=0.25"),
        ("perturbation_factors", bool(settings.perturbation_factors)
         and all(f > 0 for f in settings.perturbation_factors), "positive numbers",
         "perturbation_factors=[0.8,1.2]"),
    ]  # fmt: skip
    for key, ok, expected, fix in rules:
        if not ok:
            from lightning_args.errors import ConfigValueError

            raise ConfigValueError(
                f"hydra.sweeper.{key}={getattr(settings, key)!r}: expected {expected}. "
                f"Fix: hydra.sweeper.{fix}"
            )


def _score(value: Any) -> float | None:
    first = value[0] if isinstance(value, list | tuple) else value
    return float(first) if isinstance(first, int | float) else None


def _values(params: dict[str, Any]) -> str:
    return " ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items()
    )


def _elapsed(seconds: float) -> str:
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}m{rest:02d}s" if minutes else f"{rest}s"


__all__ = ["SUMMARY", "PBTSweep"]
