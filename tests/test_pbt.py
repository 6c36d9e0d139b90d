"""#16, population-based training (``+sweep=pbt``): members that copy better members'
checkpoints and perturb their hyperparameters between intervals, each interval a launcher's job."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from hydra_plugins.lightning_args_pbt._population import (
    Interval,
    Member,
    append,
    explore,
    next_step,
    read_journal,
)
from lightning_args.errors import SweepError
from tests.helpers import read_record, run_app, start_app

SPACE = {
    "lr": FloatDistribution(1e-4, 1e-1, log=True),
    "layers": IntDistribution(1, 4),
    "act": CategoricalDistribution(["relu", "gelu", "tanh"]),
}


# --- the rules, in process ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "resample", "check"),
    [
        ({"lr": 0.01}, 0.0, lambda v: v["lr"] in (pytest.approx(0.008), pytest.approx(0.012))),
        ({"lr": 0.1}, 0.0, lambda v: v["lr"] <= 0.1),  # x1.2 is clipped to the range
        ({"layers": 4}, 0.0, lambda v: v["layers"] in (3, 4)),  # an integer stays one
        ({"act": "relu"}, 0.0, lambda v: v["act"] in ("relu", "gelu")),  # a neighbour
        ({"act": "tanh"}, 1.0, lambda v: v["act"] in ("relu", "gelu", "tanh")),  # resampled
    ],
    ids=["factor", "clipped", "integer", "neighbour", "resampled"],
)
def test_explore_perturbs_within_the_space(
    params: dict[str, Any], resample: float, check: Any
) -> None:
    for seed in range(20):
        explored = explore(
            params, SPACE, random.Random(seed), factors=[0.8, 1.2], resample_probability=resample
        )
        assert check(explored), explored


def _member(number: int, score: float | None, interval: int = 0) -> Member:
    run = f"m{number}/{interval}"
    entry = Interval(number, interval, run, {"lr": 0.01 * (number + 1)}, score, interval + 1)
    return Member(number, {"lr": 0.01 * (number + 1)}, [entry])


def _step(member: Member, population: list[Member], quantile: float = 0.25) -> Any:
    return next_step(
        member,
        population,
        {"lr": SPACE["lr"]},
        seed=0,
        quantile_fraction=quantile,
        resample_probability=0.0,
        factors=[0.8, 1.2],
        maximize=True,
    )


def test_the_bottom_member_exploits_the_top_one_and_the_others_go_on_from_their_own() -> None:
    population = [_member(0, 0.5), _member(1, 0.9), _member(2, 0.7), _member(3, 0.6)]
    worst = _step(population[0], population)
    assert (worst.parent, worst.exploited) == ("m1/0", 1)
    assert worst.params["lr"] in (pytest.approx(0.016), pytest.approx(0.024))  # 0.02, perturbed
    for member in population[1:]:
        step = _step(member, population)
        assert (step.parent, step.exploited, step.params) == (
            f"m{member.number}/0", None, member.params
        )  # fmt: skip
    # The control: with fewer scored members than one quantile holds, nobody exploits.
    assert _step(population[0], population, quantile=0.2).exploited is None
    # Still running members count with their latest score; failed ones not at all.
    failed = [_member(0, 0.5), _member(1, None), _member(2, 0.7), _member(3, 0.6)]
    assert _step(failed[0], failed, quantile=0.34).exploited == 2


def test_the_journal_drops_a_torn_last_line_and_names_any_other_bad_one(tmp_path: Path) -> None:
    journal = tmp_path / "pbt.jsonl"
    entry = Interval(0, 0, "m0/0", {"lr": 0.01}, 0.9, 2)
    append(journal, entry)
    with journal.open("a") as f:
        f.write('{"member": 1, "interv')  # a kill while writing
    assert read_journal(journal) == [entry]
    journal.write_text(journal.read_text() + "\n")  # no longer the torn last line
    with pytest.raises(SweepError, match=r"pbt.jsonl, line 2: not an interval"):
        read_journal(journal)
    for key, value, said in (
        ("run", "../../elsewhere", "outside the sweep directory"),
        ("parent", "/home/someone/runs/x", "is not a run of this sweep"),  # forked from there
        ("parent", "m0/../../x", "is not a run of this sweep"),
    ):
        journal.write_text(json.dumps({**entry.__dict__, key: value}) + "\n")
        with pytest.raises(SweepError, match=said):
            read_journal(journal)


# --- sweeps ------------------------------------------------------------------------------------

PBT = (
    "+sweep=pbt",
    "-m",
    "launcher=joblib",
    "hydra.launcher.n_jobs=2",
    "hydra.sweeper.population=4",
    "hydra.sweeper.intervals=3",
    "hydra.sweeper.perturbation_interval=1",
)


def _sweep_dir(tmp_path: Path) -> Path:
    (sweep,) = (tmp_path / "outputs" / "sweeps").iterdir()
    return sweep


def _journal(sweep: Path) -> list[Interval]:
    return read_journal(sweep / "pbt.jsonl")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("quantile", "intervals"), [(0.25, 3), (0.2, 2)], ids=["exploits", "control-no-quantile"]
)
def test_a_pbt_sweep_trains_its_intervals_and_exploits_by_copying_a_checkpoint(
    tmp_path: Path, quantile: float, intervals: int
) -> None:
    result = run_app(
        *PBT, f"hydra.sweeper.quantile_fraction={quantile}",
        f"hydra.sweeper.intervals={intervals}", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    sweep = _sweep_dir(tmp_path)
    journal = _journal(sweep)
    assert sorted((i.member, i.interval) for i in journal) == [
        (m, k) for m in range(4) for k in range(intervals)
    ]
    assert all(i.score is not None for i in journal)
    exploits = [i for i in journal if i.exploited is not None]
    summary = yaml.safe_load((sweep / "pbt.yaml").read_text())
    assert len(summary["best"]["schedule"]) == intervals
    for picture in ("pbt_scores.png", "pbt_lineage.png"):
        assert (sweep / picture).read_bytes().startswith(b"\x89PNG")
    if quantile < 0.25:  # 4 members x 0.2 < 1: no quantile, no exploit
        assert exploits == []
        return
    assert exploits, [(i.member, i.interval, i.parent) for i in journal]
    for interval in exploits:
        run = sweep / interval.run
        lineage = read_record(run)["fork"]
        assert lineage["parent"] == str(sweep / interval.parent)
        assert not interval.parent.startswith(f"m{interval.member}/")  # another member's
        copied = torch.load(run / "checkpoints" / "fork.ckpt", weights_only=True)["state_dict"]
        source = torch.load(sweep / interval.parent / "checkpoints" / "last.ckpt",
                            weights_only=True)["state_dict"]  # fmt: skip
        assert all(torch.equal(copied[k], source[k]) for k in source)  # its weights, copied
        said = f"Member {interval.member} exploits member {interval.exploited}"
        assert said in result.stdout + result.stderr


@pytest.mark.slow
def test_a_killed_pbt_sweep_finishes_its_intervals_without_redoing_finished_ones(
    tmp_path: Path,
) -> None:
    proc = start_app(
        *PBT,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        new_session=True,
    )
    deadline = time.time() + 240
    journal: list[Interval] = []
    while len(journal) < 5 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
        if (tmp_path / "outputs" / "sweeps").is_dir():
            journal = _journal(_sweep_dir(tmp_path))
    assert proc.poll() is None, "the sweep ended before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)  # its joblib workers too
    proc.wait()
    sweep = _sweep_dir(tmp_path)
    before = _journal(sweep)
    assert 5 <= len(before) < 12
    kept = {i.run: (sweep / i.run / "checkpoints" / "last.ckpt").stat().st_mtime_ns for i in before}

    result = run_app(*PBT, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    after = _journal(sweep)
    assert after[: len(before)] == before  # the finished intervals, as they were
    assert sorted((i.member, i.interval) for i in after) == [
        (m, k) for m in range(4) for k in range(3)
    ]
    for run, mtime in kept.items():  # none of them trained again
        assert (sweep / run / "checkpoints" / "last.ckpt").stat().st_mtime_ns == mtime, run
    assert f"{len(before)} of 12 intervals done" in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("settings", "said"),
    [
        ({"nope": 1}, "hydra.sweeper.nope is not a setting of PBTSweeperConfig"),
        ({"population": 1}, "hydra.sweeper.population=1: expected at least 2 members"),
        ({"quantile_fraction": 0.7}, "hydra.sweeper.quantile_fraction=0.7: expected above 0"),
        ({"perturbation_factors": []}, "hydra.sweeper.perturbation_factors=[]: expected"),
    ],
    ids=["unknown", "population", "quantile", "factors"],
)
def test_bad_settings_are_one_message_before_anything_runs(
    settings: dict[str, Any], said: str
) -> None:
    from hydra_plugins.lightning_args_pbt._impl import _check
    from hydra_plugins.lightning_args_pbt.lightning_args_pbt_sweeper import (
        LightningArgsPBTSweeper,
    )
    from lightning_args.errors import ConfigValueError

    with pytest.raises(ConfigValueError) as refused:
        _check(LightningArgsPBTSweeper(**settings).settings)
    assert said in str(refused.value)


def test_a_rerun_tries_a_failed_interval_again_and_keeps_the_ended_ones(tmp_path: Path) -> None:
    from hydra_plugins.lightning_args_pbt._impl import PBTSweep
    from hydra_plugins.lightning_args_pbt.config import PBTSweeperConfig

    sweep = PBTSweep.__new__(PBTSweep)  # only what reading the journal needs
    sweep.settings = PBTSweeperConfig(population=2, intervals=3)
    sweep.space = {"lr": SPACE["lr"]}
    sweep.journal = tmp_path / "pbt.jsonl"
    ended = [
        Interval(0, 0, "m0/0", {"lr": 0.01}, 0.9, 1),
        Interval(1, 0, "m1/0", {"lr": 0.02}, 0.8, 1),
        Interval(0, 1, "m0/1", {"lr": 0.01}, None, 2, "m0/0"),  # failed
    ]
    members = sweep._members(ended)
    assert [len(m.history) for m in members] == [1, 1]  # member 0's interval 1 runs again
    assert members[0].latest == ended[0]
    retried = Interval(0, 1, "m0/1", {"lr": 0.01}, 0.95, 2, "m0/0")
    assert sweep._members([*ended, retried])[0].history == [ended[0], retried]
    with pytest.raises(SweepError, match="does not follow its earlier ones"):
        sweep._members([Interval(0, 2, "m0/2", {"lr": 0.01}, 0.9, 3)])  # another sweep's
