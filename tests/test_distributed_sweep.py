"""Several sweepers share one study (#5): a journal file on a shared file system, or PostgreSQL.

Four sweeper processes start together on the same storage, study name and sweep directory, each
with ``n_trials=40``: ``n_trials`` is the study's budget, so 40 trials run in all, each once.
The PostgreSQL variant runs against a real server (``scripts/postgres-server``, Debian's package
on loopback), started here if CI did not start it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
import sqlalchemy

from lightning_args.sweep.storage import lock_kind, open_storage
from tests.helpers import READY, REPO, run_app, run_together, service, start_app
from tests.test_sweeper import configurations, make_app

SERVER = REPO / "scripts" / "postgres-server"
WORKERS, TRIALS = 4, 40


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The URL of the loopback server's database (``scripts/postgres-server``)."""
    with service("postgres-server"):
        url = subprocess.run([SERVER, "url"], capture_output=True, text=True, check=True).stdout
        yield url.strip()


@pytest.fixture
def postgres_db(postgres_server: str) -> Iterator[str]:
    """A fresh, empty database for one test; dropped afterwards."""
    server = sqlalchemy.engine.make_url(postgres_server)
    name = f"test_{uuid.uuid4().hex[:12]}"
    admin = sqlalchemy.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sqlalchemy.text(f"CREATE DATABASE {name}"))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(sqlalchemy.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


@pytest.fixture(params=["journal", pytest.param("postgres", marks=pytest.mark.postgres)])
def storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "journal":
        return str(tmp_path / "shared" / "study.journal")  # the shared file system's path
    url: str = request.getfixturevalue("postgres_db")
    return url


def environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    return {**env, "PYTHONWARNINGS": "ignore", **extra}


@pytest.mark.slow
def test_four_sweepers_share_one_budget_of_forty_trials(tmp_path: Path, storage_url: str) -> None:
    app = make_app(tmp_path / "app")
    name = f"distributed_{uuid.uuid4().hex[:8]}"
    run_log = app / "runs.jsonl"
    with contextlib.ExitStack() as stack:
        logs = [stack.enter_context(tempfile.TemporaryFile()) for _ in range(WORKERS)]
        workers = [
            start_app(
                "-m",
                "x=interval(0,1)",
                "sleep=0.1",
                f"hydra.sweeper.n_trials={TRIALS}",
                "hydra.sweeper.n_jobs=1",
                "hydra.sweeper.sampler.seed=0",  # one seed: the sweepers must not repeat
                f"hydra.sweeper.storage='{storage_url}'",
                f"hydra.sweeper.study_name={name}",
                f"hydra.sweep.dir='{app / 'sweep'}'",
                cwd=app,
                script=app / "app.py",
                env={"RUN_LOG": str(run_log)},
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
            for log in logs
        ]
        try:
            for worker in workers:
                worker.wait(timeout=240)
        finally:
            for worker in workers:
                worker.kill()
        errors = []
        for log in logs:
            log.seek(0)
            errors.append(log.read().decode(errors="replace"))
    assert [w.returncode for w in workers] == [0] * WORKERS, "\n---\n".join(errors)

    study = optuna.load_study(study_name=name, storage=open_storage(storage_url))
    trials = study.get_trials()
    assert sorted(t.number for t in trials) == list(range(TRIALS))
    assert {t.state for t in trials} == {optuna.trial.TrialState.COMPLETE}
    nums = [json.loads(line)["num"] for line in run_log.read_text().splitlines()]
    assert sorted(nums) == list(range(TRIALS))  # each trial ran once, in its own job
    for n in range(TRIALS):
        assert (app / "sweep" / str(n) / ".hydra" / "overrides.yaml").is_file()
    by_sweeper = {t.user_attrs["sweeper_pid"] for t in trials}
    assert len(by_sweeper) > 1, "one sweeper ran every trial: the test did not interleave"
    assert by_sweeper <= {w.pid for w in workers}
    # Same seed, one study: each sweeper's draws come from the trial's own stream (#20), so
    # no configuration ran twice.
    assert len(set(configurations(trials))) == TRIALS


CONTEND = (
    """
import os, sys, time
from pathlib import Path
from lightning_args.sweep.storage import budget_lock, open_storage

url, counter = sys.argv[1], Path(sys.argv[2])
storage = open_storage(url)
"""
    + READY
    + """
for _ in range(15):
    with budget_lock(storage, url, "contended"):
        value = int(counter.read_text())  # read, wait, write: lost updates without a lock
        time.sleep(0.003)
        tmp = counter.with_name(f"{counter.name}.{os.getpid()}")
        tmp.write_text(str(value + 1))
        os.replace(tmp, counter)  # a reader never sees a half-written counter
"""
)


def increments(url: str, counter: Path, processes: int = 4) -> int:
    """How far ``processes`` processes, 15 locked increments each, got a shared counter."""
    counter.write_text("0")
    # All begin together: once every process has opened the storage, one start signal.
    done = run_together(CONTEND, *[[url, str(counter)]] * processes, cwd=REPO, timeout=120)
    errors = [d.stderr for d in done]
    assert [d.returncode for d in done] == [0] * processes, "\n---\n".join(errors)
    return int(counter.read_text())


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("/shared/sweep/study.journal", "journal file"),
        ("journal:/shared/sweep/study", "journal file"),
        ("postgresql+psycopg2://postgres@127.0.0.1:55432/db", "postgres advisory"),
        ("postgresql://u@host/db", "postgres advisory"),
        ("sqlite:///sweep.db", "none"),
        ("mysql+pymysql://u@host/db", "none"),
    ],
)
def test_each_storage_gets_its_own_kind_of_lock(url: str, kind: str) -> None:
    assert lock_kind(url) == kind


@pytest.mark.slow
def test_the_budget_lock_excludes_other_processes(tmp_path: Path, storage_url: str) -> None:
    assert increments(storage_url, tmp_path / "counter") == 4 * 15
    assert not list((tmp_path / "shared").glob("*.lock"))  # every lock file was released


@pytest.mark.slow
def test_without_a_lock_the_contention_test_would_fail(tmp_path: Path) -> None:
    # The control: sqlite takes no lock, and the same processes lose updates.
    url = f"sqlite:///{tmp_path / 'x.db'}"
    open_storage(url)  # Optuna's tables exist before the processes start
    assert increments(url, tmp_path / "counter") < 4 * 15


def test_the_server_script_says_how_to_use_it() -> None:
    usage = subprocess.run([SERVER, "nonsense"], capture_output=True, text=True)
    assert usage.returncode == 1
    assert usage.stderr.strip().endswith("usage: " + str(SERVER) + " up|down|url")


# --- sweepers on other machines: heartbeats ----------------------------------------------------


def other_host(app: Path, *overrides: str, host: str = "host-a") -> subprocess.Popen[str]:
    """A sweeper that sees itself on machine ``host`` (its own UTS namespace: root only)."""
    command = [sys.executable, str(app / "app.py"), "-m", *overrides]
    script = f'hostname {host} && exec "$@"'
    return subprocess.Popen(
        ["unshare", "--uts", "sh", "-c", script, "sh", *command],
        cwd=app,
        env=environment(RUN_LOG=str(app / "runs.jsonl")),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


GRACE_S = 2.0


def sweep_args(app: Path, name: str) -> list[str]:
    """Three trials, trial 0 slow; heartbeats every 0.2 s, stale after :data:`GRACE_S`."""
    return [
        "x=interval(0,1)",
        "hydra.sweeper.n_trials=3",
        "slow_trial=0",
        "hydra.sweeper.heartbeat_interval=0.2",
        f"hydra.sweeper.grace_period={GRACE_S}",
        f"hydra.sweeper.storage='{app / 'shared' / 'study.journal'}'",
        f"hydra.sweeper.study_name={name}",
        f"hydra.sweep.dir='{app / 'sweep'}'",
    ]


def running_trial(app: Path, name: str, timeout: float = 60) -> optuna.trial.FrozenTrial:
    storage = open_storage(str(app / "shared" / "study.journal"))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            trials = optuna.load_study(study_name=name, storage=storage).get_trials()
        except KeyError:  # the study is not created yet
            trials = []
        # A trial is asked first, marked (host, pid, heartbeat) just after, and its values are
        # suggested after that: a sweeper killed before them leaves nothing to run again.
        running = [
            t
            for t in trials
            if t.state.name == "RUNNING" and "sweeper_heartbeat" in t.user_attrs and t.params
        ]
        if running:
            return running[0]
        time.sleep(0.1)
    raise AssertionError("no trial started")


def trial_of(app: Path, name: str, number: int) -> optuna.trial.FrozenTrial:
    storage = open_storage(str(app / "shared" / "study.journal"))
    (trial,) = [
        t
        for t in optuna.load_study(study_name=name, storage=storage).get_trials()
        if t.number == number
    ]
    return trial


@pytest.mark.root
@pytest.mark.slow
def test_a_dead_sweepers_trial_on_another_machine_is_taken_over_after_the_grace_period(
    tmp_path: Path,
) -> None:
    app = make_app(tmp_path / "app")
    name = f"stale_{uuid.uuid4().hex[:8]}"
    dead = other_host(app, *sweep_args(app, name), "slow_sleep=60")
    lost = running_trial(app, name)
    assert lost.user_attrs["sweeper_host"] == "host-a"
    os.killpg(dead.pid, signal.SIGKILL)  # the machine is gone: nobody on it will restart
    dead.wait()
    # Past the grace period, counted from the last heartbeat the dead sweeper wrote.
    last = float(trial_of(app, name, lost.number).user_attrs["sweeper_heartbeat"])
    time.sleep(max(0.0, last + GRACE_S - time.time()) + 0.1)

    here = run_app(
        "-m",
        *sweep_args(app, name),
        cwd=app,
        script=app / "app.py",
        env={"RUN_LOG": str(app / "runs.jsonl")},
    )
    assert here.returncode == 0, here.stderr[-3000:]
    trials = optuna.load_study(
        study_name=name, storage=open_storage(str(app / "shared" / "study.journal"))
    ).get_trials()
    taken = next(t for t in trials if t.number == lost.number)
    assert (taken.state.name, taken.user_attrs.get("interrupted")) == ("FAIL", True)
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    assert len(complete) == 3  # the budget is met: nothing lost
    assert any(t.params == lost.params for t in complete)  # its values ran again


@pytest.mark.root
@pytest.mark.slow
def test_a_live_sweeper_on_another_machine_keeps_its_trial(tmp_path: Path) -> None:
    app = make_app(tmp_path / "app")
    name = f"alive_{uuid.uuid4().hex[:8]}"
    remote = other_host(app, *sweep_args(app, name), "slow_sleep=8")
    slow = running_trial(app, name)
    # This sweeper starts once host-a's trial has run longer than the grace period (and it
    # runs 8 s): a trial judged by its age rather than its heartbeat would be taken.
    started = slow.datetime_start
    assert started is not None
    time.sleep(max(0.0, started.timestamp() + GRACE_S - time.time()) + 0.1)
    # Two trials of 1.5 s here: this sweeper still claims trials when host-a's has run longer
    # than the grace period.
    here = run_app(
        "-m",
        *sweep_args(app, name),
        "sleep=1.5",
        cwd=app,
        script=app / "app.py",
        env={"RUN_LOG": str(app / "runs.jsonl")},
    )
    assert here.returncode == 0, here.stderr[-3000:]
    _, err = remote.communicate(timeout=120)
    assert remote.returncode == 0, err[-3000:]
    trials = optuna.load_study(
        study_name=name, storage=open_storage(str(app / "shared" / "study.journal"))
    ).get_trials()
    # Its trial ran past the grace period on host-a, beating; nobody took it.
    assert [t.state.name for t in trials] == ["COMPLETE"] * 3
    assert next(t for t in trials if t.number == slow.number).user_attrs["sweeper_host"] == "host-a"
