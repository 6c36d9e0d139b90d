"""The example app on a real Slurm cluster (``scripts/slurm-cluster``), through ``launcher=slurm``.

Every job is a real sbatch job array task on the single-node cluster that ``.ci/run`` starts
(or the ``slurm_cluster`` fixture, run by hand). Jobs ask for one CPU each so that two fit on a
two-core machine at once.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest
import torch
import yaml

from tests.conftest import REPO, read_record, run_app

pytestmark = [pytest.mark.slurm, pytest.mark.slow, pytest.mark.usefixtures("slurm_cluster")]


SLURM = ("launcher=slurm", "hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=1")
QUIET = ("trainer.enable_progress_bar=false", "trainer.enable_model_summary=false")


def sacct(job_id: str, *, duplicates: bool = False) -> list[tuple[str, str]]:
    """``(job id, state)`` of each allocation of ``job_id`` (array tasks: ``<id>_<index>``).

    The job's result file can appear before slurmctld has told the accounting database that the
    job ended: states are read until none is still running (a few seconds at most).
    """
    args = ["sacct", "-n", "-X", "-P", "-o", "JobID,State", "-j", job_id]
    deadline = time.monotonic() + 30
    while True:
        command = [*args, *(["-D"] if duplicates else [])]
        out = subprocess.run(command, capture_output=True, text=True)
        rows = [tuple(line.split("|")[:2]) for line in out.stdout.split()]
        if all(state not in ("RUNNING", "PENDING", "COMPLETING") for _, state in rows):
            return rows  # type: ignore[return-value]
        if time.monotonic() > deadline:
            return rows  # type: ignore[return-value]
        time.sleep(0.5)


def array_id(sweep: Path) -> str:
    """The Slurm job id of the (only) array submitted for ``sweep``."""
    # submitit's folder holds the submission script and one folder per job id (and array task).
    (job,) = {p.name.split("_")[0] for p in (sweep / ".submitit").iterdir() if p.is_dir()}
    return job


def multirun(tmp_path: Path, *args: str, timeout: float = 600) -> Path:
    sweep = tmp_path / "sweep"
    result = run_app(
        "-m", *SLURM, *QUIET, f"hydra.sweep.dir={sweep}", *args, cwd=tmp_path, timeout=timeout
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return sweep


def test_three_jobs_run_as_a_job_array_each_in_its_own_run_directory(tmp_path: Path) -> None:
    sweep = multirun(tmp_path, "trainer=debug", "seed=1,2,3")
    job = array_id(sweep)
    assert sorted(sacct(job)) == [(f"{job}_{i}", "COMPLETED") for i in range(3)]
    seeds = []
    for i in range(3):
        record = read_record(sweep / str(i))
        assert record["status"] == "completed"
        assert (sweep / str(i) / "checkpoints" / "last.ckpt").is_file()
        seeds.append(record["seed"])
    assert seeds == [1, 2, 3]


def test_the_issue_command_trains_both_models(tmp_path: Path) -> None:
    # `python train.py -m launcher=slurm model=mlp,cnn`, two epochs instead of twenty.
    sweep = multirun(tmp_path, "model=mlp,cnn", "trainer.max_epochs=2")
    for i, encoder in enumerate(("mlp", "cnn")):
        record = read_record(sweep / str(i))
        assert record["status"] == "completed"
        assert f"model={encoder}" in record["overrides"]
        assert record["objective"]["value"] > 0.5


def test_a_kfold_run_with_parallel_folds_runs_them_as_a_slurm_job_array(tmp_path: Path) -> None:
    """``python train.py +cv=kfold cv.parallel=true launcher=slurm`` (a single run, no ``-m``):
    each fold is a task of one job array, asking for what ``hydra.launcher`` says."""
    run = tmp_path / "kfold"
    result = run_app(
        *SLURM, *QUIET, "+cv=kfold", "cv.folds=2", "cv.parallel=true", "trainer.max_epochs=1",
        f"hydra.run.dir={run}", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    job = array_id(run)  # submitit's files are in the k-fold run's directory
    assert sorted(sacct(job)) == [(f"{job}_{i}", "COMPLETED") for i in range(2)]
    parent = read_record(run)
    assert (parent["status"], parent["objective"]["folds"]) == ("completed", 2)
    for index in range(2):
        fold = read_record(run / "folds" / str(index))
        assert fold["status"] == "completed"
        assert fold["pid"] != parent["pid"]
        assert "Run completed" in (run / "folds" / str(index) / "train.log").read_text()
    assert f"as slurm jobs {job}_0, {job}_1" in (run / "train.log").read_text()


def test_a_pbt_sweep_runs_each_interval_as_a_slurm_job(tmp_path: Path) -> None:
    """``+sweep=pbt -m launcher=slurm``: 2 members x 2 intervals, each interval a job; the
    second interval of each goes on from a checkpoint (its own or the better member's)."""
    sweep = multirun(
        tmp_path, "+sweep=pbt", "hydra.sweeper.population=2", "hydra.sweeper.intervals=2",
        "hydra.sweeper.perturbation_interval=1", "hydra.sweeper.quantile_fraction=0.5",
    )  # fmt: skip
    lines = [json.loads(line) for line in (sweep / "pbt.jsonl").read_text().splitlines()]
    assert sorted((i["member"], i["interval"]) for i in lines) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    jobs = {p.name for p in (sweep / ".submitit").iterdir() if p.is_dir()}
    assert len(jobs) == 4  # one Slurm job per interval
    for job in jobs:
        assert sacct(job) == [(job, "COMPLETED")]
    for line in lines:
        record = read_record(sweep / line["run"])
        assert record["status"] == "completed"
        if line["interval"] == 1:
            assert record["fork"]["parent"] == str(sweep / line["parent"])
    # With 2 members and quantile 0.5, the worse one copies the better one if both had ended
    # their first interval when it was judged (no barrier: the order is the cluster's).
    assert sum(line["exploited"] is not None for line in lines) <= 1


def test_ddp_runs_as_two_slurm_tasks_with_one_run_directory_and_survives_preemption(
    tmp_path: Path,
) -> None:
    sweep = tmp_path / "sweep"
    proc = _start(
        tmp_path,
        "trainer=ddp",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "trainer.max_epochs=30",
        "trainer.log_every_n_steps=1",
        "test=false",
        "hydra.launcher.tasks_per_node=2",
        "hydra.launcher.timeout_min=30",
    )
    run = sweep / "0"
    _preempt_and_finish(proc, run, lambda: array_id(sweep))  # both tasks get the signal
    job = array_id(sweep)

    assert sorted(p.name for p in sweep.iterdir() if not p.name.startswith(".")) == [
        "0",
        "multirun.yaml",
    ]
    record = read_record(run)
    assert record["status"] == "completed"
    assert [r["previous_status"] for r in record["resumes"]] == ["requeued"]
    assert [state for _, state in sacct(job, duplicates=True)] == ["REQUEUED", "COMPLETED"]
    # Each of the 2 ranks took half of every epoch: 10 of the 19 batches of one process.
    checkpoint = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["global_step"] == 30 * 10
    # Rank 0 alone logs, and the requeued job continued the file: every step once.
    steps = [int(r["step"]) for r in _csv(run / "metrics.csv") if r["train/loss"]]
    assert sorted(steps) == list(range(300))
    log = (run / "train.log").read_text()
    assert "Initializing distributed: GLOBAL_RANK: 1, MEMBER: 2/2" in log


def test_a_preempted_job_resumes_in_its_run_directory_and_ends_as_an_uninterrupted_one(
    tmp_path: Path,
) -> None:
    """Two identical jobs; one gets USR2 mid-training (what Slurm sends before preempting)."""
    sweep = tmp_path / "sweep"
    proc = _start(
        tmp_path,
        "trainer.max_epochs=20",
        "test=false",
        "+copy=whole,preempted",
        # submitit counts a signal as a time-out when the limit is under 10 min (stack facts).
        "hydra.launcher.timeout_min=30",
    )
    preempted = sweep / "1"
    _preempt_and_finish(proc, preempted, lambda: f"{array_id(sweep)}_1")
    job = f"{array_id(sweep)}_1"

    whole, record = read_record(sweep / "0"), read_record(preempted)
    assert record["status"] == "completed"
    assert [r["previous_status"] for r in record["resumes"]] == ["requeued"]
    assert record["resumes"][0]["checkpoint"] == "checkpoints/requeue.ckpt"
    assert record["metrics"] == whole["metrics"]
    assert record["objective"] == whole["objective"]
    assert _weights(preempted) == _weights(sweep / "0")
    metrics = [
        sorted((run / "metrics.csv").read_text().splitlines()) for run in (sweep / "0", preempted)
    ]
    assert metrics[0] == metrics[1]  # every row once, the signalled step's included
    states = [state for _, state in sacct(job, duplicates=True)]
    assert states == ["REQUEUED", "COMPLETED"]
    # submitit requeued the same job: the same overrides, run directory and job number.
    assert not (sweep / "2").exists()


def test_a_sweep_runs_two_trials_at_a_time_prunes_and_keeps_a_requeued_trial(
    tmp_path: Path,
) -> None:
    sweep = tmp_path / "sweep"
    proc = _start(
        tmp_path,
        "+sweep=optuna",
        "hydra.sweeper.n_trials=6",
        "hydra.sweeper.n_jobs=2",
        # A seeded random sampler over a good and a hopeless learning rate (and a weight decay
        # too small to matter, so that no two trials are alike: #20's duplicate guard) draws
        # G G b b G G: trials 0 and 1 start together, hopeless ones started after a good one
        # ended are pruned.
        "hydra/sweeper/sampler=random",
        "hydra.sweeper.sampler.seed=6",
        "hydra.sweeper.search_space_group=null",
        "hydra.sweeper.plots=false",
        "hydra/sweeper/pruner=median",
        "hydra.sweeper.pruner.n_startup_trials=1",
        "hydra.sweeper.pruner.n_warmup_steps=1",
        "optimizer.lr=choice(0.01,0.000001)",
        "optimizer.weight_decay=interval(0,0.000001)",
        "trainer.max_epochs=8",
        "test=false",
        "hydra.launcher.timeout_min=30",
    )
    first = sweep / "0"
    _preempt_and_finish(proc, first, lambda: _job_of(first))

    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(sweep / "study.journal"))
    )
    (study,) = optuna.get_all_study_summaries(storage)
    trials = optuna.load_study(study_name=study.study_name, storage=storage).trials
    assert [t.number for t in trials] == list(range(6))  # none added by the requeue
    states = {t.number: t.state.name for t in trials}
    assert states[0] == "COMPLETE"
    assert "PRUNED" in states.values()
    assert set(states.values()) <= {"COMPLETE", "PRUNED"}
    record = read_record(first)
    assert [r["previous_status"] for r in record["resumes"]] == ["requeued"]
    assert record["objective"]["value"] == trials[0].value  # the trial got the resumed result
    # Asynchronous: trials overlapped in time, two at most.
    spans = sorted(_span(sweep / str(n)) for n in range(6))
    assert any(b[0] < a[1] for a, b in itertools.pairwise(spans))


def _start(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    env["PYTHONWARNINGS"] = "ignore"
    command = [sys.executable, str(REPO / "train.py"), "-m", *SLURM, *QUIET]
    command += [f"hydra.sweep.dir={tmp_path / 'sweep'}", *args]
    return subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _preempt_and_finish(proc: subprocess.Popen[str], run: Path, job: Callable[[], str]) -> None:
    """Once ``run`` has its first epoch's checkpoint, send its Slurm job USR2 (what Slurm sends
    before a preemption or the time limit), then wait for the multirun to end."""
    _wait_for(lambda: (run / "checkpoints" / "last.ckpt").is_file(), proc, 240)
    subprocess.run(["scancel", "--signal=USR2", job()], check=True)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, out[-2000:] + err[-3000:]


def _wait_for(condition: Callable[[], bool], proc: subprocess.Popen[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=60)
            queue = subprocess.run(
                ["squeue", "-o", "%i %T %r %C"], capture_output=True, text=True, check=False
            ).stdout
            pytest.fail(f"the job never got there:\n{out[-2000:]}\n{err[-3000:]}\nqueue:\n{queue}")
        time.sleep(0.2)


def _job_of(run: Path) -> str:
    """The Slurm job id of the job running in ``run`` (from its Hydra config)."""
    deadline = time.monotonic() + 30
    hydra_yaml = run / ".hydra" / "hydra.yaml"
    while not hydra_yaml.is_file() and time.monotonic() < deadline:
        time.sleep(0.2)
    return str(yaml.safe_load(hydra_yaml.read_text())["hydra"]["job"]["id"])


def _weights(run: Path) -> dict[str, list[float]]:
    checkpoint = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    return {k: v.flatten().tolist() for k, v in checkpoint["state_dict"].items()}


def _span(run: Path) -> tuple[float, float]:
    from datetime import datetime

    record = read_record(run)
    start = datetime.fromisoformat(record["started_at"]).timestamp()
    return start, datetime.fromisoformat(record["ended_at"]).timestamp()


def _csv(path: Path) -> list[dict[str, str]]:
    import csv

    with path.open() as f:
        return list(csv.DictReader(f))
