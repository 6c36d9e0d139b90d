"""The Optuna sweeper plugin on a tiny app (no torch): budget, resume, failures, search spaces.

The app returns ``(x - 0.3)^2`` plus a term from its ``encoder`` option; each job appends one
JSON line (trial number, start and end times, its config) to ``$RUN_LOG`` and may sleep, raise or
return NaN, so the sweeper's bookkeeping can be checked from the outside.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml
from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper

from tests.helpers import Result, run_app, run_python, start_app

APP = """
import json, math, os, time
from pathlib import Path

from hydra.core.hydra_config import HydraConfig

import lightning_args


@lightning_args.main(config_path="conf", config_name="config")
def main(cfg):
    started = time.time()
    num = HydraConfig.get().job.num
    time.sleep(cfg.sleep if num != cfg.slow_trial else cfg.slow_sleep)
    value = (cfg.x - 0.3) ** 2 + cfg.encoder.penalty * cfg.encoder.get("size", 1)
    line = {"num": num, "start": started, "end": time.time(), "x": cfg.x,
            "encoder": dict(cfg.encoder), "cwd": os.getcwd(),
            "trial_env": "LIGHTNING_ARGS_TRIAL" in os.environ}
    with open(os.environ["RUN_LOG"], "a") as log:
        log.write(json.dumps(line) + "\\n")
    if cfg.x > cfg.fail_above:
        raise RuntimeError(f"x={cfg.x} is too large")
    if cfg.x < cfg.nan_below:
        return float("nan")
    if cfg.objectives == 2:
        return value, cfg.encoder.get("size", 1)
    return value


if __name__ == "__main__":
    main()
"""

CONFIG = """
defaults:
  - encoder: a
  - override hydra/sweeper: lightning_args_optuna
  - _self_

x: 0.0
sleep: 0.0
slow_trial: -1
slow_sleep: 0.0
fail_above: 2.0
nan_below: -1.0
objectives: 1

hydra:
  sweep:
    dir: sweep
  sweeper:
    n_trials: 6
    plots: false
    sampler:
      seed: 0
    params:
      x: interval(0, 1)
"""

FILES = {
    "encoder/a.yaml": "penalty: 0.0\nsize: 1\n",
    "encoder/b.yaml": "penalty: 0.5\ndepth: 1\n",
    # What each option makes tunable; only sampled when a trial uses that option.
    "search_space/encoder/a.yaml": "size: choice(1, 2, 3)\n",
    "search_space/encoder/b.yaml": "depth: range(1, 4)\n",
}


def make_app(root: Path) -> Path:
    """The tiny app (``app.py`` and ``conf/``) written into ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "app.py").write_text(APP)
    for name, text in {"config.yaml": CONFIG, **FILES}.items():
        (root / "conf" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "conf" / name).write_text(text)
    return root


@pytest.fixture
def app(tmp_path: Path) -> Path:
    return make_app(tmp_path)


def sweep(app: Path, *overrides: str, timeout: float = 120) -> Result:
    return run_app(
        "-m",
        *overrides,
        cwd=app,
        script=app / "app.py",
        env={"RUN_LOG": str(app / "runs.jsonl")},
        timeout=timeout,
    )


def runs(app: Path) -> list[dict[str, Any]]:
    path = app / "runs.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def summary(app: Path) -> dict[str, Any]:
    return yaml.safe_load((app / "sweep" / "summary.yaml").read_text())


def configurations(trials: list[optuna.trial.FrozenTrial]) -> list[tuple[tuple[str, Any], ...]]:
    """The values of the COMPLETE trials, one sorted tuple per trial, in trial order."""
    return [tuple(sorted(t.params.items())) for t in trials if t.state.name == "COMPLETE"]


def launched(app: Path, number: int) -> bool:
    """Whether trial ``number`` runs with all its values (its overrides are set last)."""
    try:
        trials = study(app).get_trials()
    except (FileNotFoundError, ValueError):  # no journal, or no study in it yet
        return False
    return any(t.number == number and "overrides" in t.user_attrs for t in trials)


def study(app: Path, name: str | None = None) -> optuna.Study:
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(app / "sweep" / "study.journal"))
    )
    if name is None:
        (name,) = optuna.get_all_study_names(storage)
    return optuna.load_study(study_name=name, storage=storage)


def test_the_plugin_is_discovered_under_its_own_name() -> None:
    names = {f"{c.__module__}.{c.__name__}" for c in Plugins.instance().discover(Sweeper)}
    assert (
        "hydra_plugins.lightning_args_optuna.lightning_args_optuna_sweeper."
        "LightningArgsOptunaSweeper" in names
    )
    from hydra.core.config_store import ConfigStore

    sweepers = ConfigStore.instance().list("hydra/sweeper")
    assert "lightning_args_optuna.yaml" in sweepers
    assert "optuna.yaml" not in sweepers  # the upstream plugin's name stays free


@pytest.mark.slow
def test_a_sweep_runs_its_budget_and_writes_a_summary(app: Path) -> None:
    result = sweep(app)
    assert result.returncode == 0, result.stderr
    done = runs(app)
    assert sorted(r["num"] for r in done) == list(range(6))
    assert all(r["trial_env"] for r in done)
    s = summary(app)
    assert s["trials"]["COMPLETE"] == 6
    best = min(done, key=lambda r: (r["x"] - 0.3) ** 2)
    assert s["best"]["number"] == best["num"]
    assert s["best"]["value"] == pytest.approx((best["x"] - 0.3) ** 2)
    # Ready-to-paste overrides reproduce the best trial's values.
    assert f"x={best['x']!r}" in s["best"]["overrides"]
    for n in range(6):  # one directory per trial, named by its number
        assert (app / "sweep" / str(n) / ".hydra" / "overrides.yaml").is_file()
    assert (app / "sweep" / "multirun.yaml").is_file()
    assert (app / "sweep" / "optimization_results.yaml").is_file()


@pytest.mark.slow
def test_rerunning_continues_the_study_up_to_the_total(app: Path) -> None:
    assert sweep(app, "hydra.sweeper.n_trials=3").returncode == 0
    first = {p.name: p.stat().st_mtime_ns for p in (app / "sweep").glob("[0-9]*/.hydra/*")}
    result = sweep(app, "hydra.sweeper.n_trials=5")
    assert result.returncode == 0, result.stderr
    assert sorted(r["num"] for r in runs(app)) == [0, 1, 2, 3, 4]  # 3 old + 2 new, none rerun
    assert summary(app)["trials"]["COMPLETE"] == 5
    after = {p.name: p.stat().st_mtime_ns for p in (app / "sweep").glob("[0-9]*/.hydra/*")}
    assert {k: after[k] for k in first} == first  # earlier job folders untouched
    assert sweep(app, "hydra.sweeper.n_trials=5").returncode == 0
    assert len(runs(app)) == 5  # the total is reached: nothing more runs
    # The raised budget explored new values: the seeded sampler did not start over (#20).
    assert len(set(configurations(study(app).get_trials()))) == 5


@pytest.mark.slow
@pytest.mark.parametrize("sampler", ["tpe", "random"])
def test_a_killed_sweep_resumes_without_rerunning_finished_trials(app: Path, sampler: str) -> None:
    # Seeded (CONFIG), killed in TPE's random start-up phase (its first 10 trials).
    args = ["-m", "sleep=0.6", "hydra.sweeper.n_trials=6", f"hydra/sweeper/sampler={sampler}"]
    proc = start_app(
        *args,
        cwd=app,
        script=app / "app.py",
        env={"RUN_LOG": str(app / "runs.jsonl")},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        new_session=True,
    )
    deadline = time.time() + 60
    while not launched(app, 2) and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)  # inside trial 2's job, which sleeps 0.6 s
    os.killpg(proc.pid, signal.SIGKILL)  # mid-trial: trial 2 is running
    proc.wait()
    killed = study(app)
    states = [t.state for t in killed.get_trials()]
    assert states.count(optuna.trial.TrialState.RUNNING) == 1
    interrupted = next(t for t in killed.get_trials() if t.state.name == "RUNNING")

    result = sweep(app, *args[1:])
    assert result.returncode == 0, result.stderr
    resumed = study(app)
    trials = resumed.get_trials()
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    assert len(complete) == 6
    nums = [r["num"] for r in runs(app)]
    assert len(nums) == len(set(nums))  # no job ran twice in the same folder
    old = next(t for t in trials if t.number == interrupted.number)
    assert old.state.name == "FAIL"
    assert old.user_attrs["interrupted"] is True
    # Its values were queued again and ran as a new trial.
    assert any(t.params == interrupted.params and t.number > old.number for t in complete)
    # Interruptions are counted apart from failures (they say nothing about the values).
    assert summary(app)["trials"]["FAIL"] == 0
    assert summary(app)["interrupted"] == 1

    # The restarted sampler continued its sequence (#20): no two finished trials alike, no
    # suggestion repeated (the duplicate guard had nothing to skip), and they are the trials an
    # uninterrupted sweep with the same seed runs.
    assert len(set(configurations(trials))) == 6
    assert summary(app)["duplicates"] == 0
    twin = make_app(app / "twin")
    result = sweep(twin, *args[2:])
    assert result.returncode == 0, result.stderr
    assert sorted(configurations(trials)) == sorted(configurations(study(twin).get_trials()))


FINITE = (
    "hydra.sweeper.params.x='choice(0.1,0.2,0.3)'",
    "hydra.sweeper.search_space_group=null",
    "hydra/sweeper/sampler=random",
    "hydra.sweeper.n_trials=6",
)


@pytest.mark.slow
@pytest.mark.parametrize("redraws", [10, 0])
def test_a_finite_space_ends_when_each_configuration_ran_once(app: Path, redraws: int) -> None:
    # max_redraws=0: after one repeat the sweeper queues a configuration that no trial has.
    args = (*FINITE, f"hydra.sweeper.max_redraws={redraws}")
    result = sweep(app, *args)
    assert result.returncode == 0, result.stderr
    assert "search space is exhausted: each of its 3 configuration(s) ran" in result.stdout
    trials = study(app).get_trials()
    assert sorted(configurations(trials)) == [(("x", 0.1),), (("x", 0.2),), (("x", 0.3),)]
    # The sampler repeated itself: those trials were closed without a job, and not counted.
    duplicates = [t for t in trials if "duplicate_of" in t.user_attrs]
    assert duplicates
    assert {t.state.name for t in duplicates} == {"FAIL"}
    for trial in duplicates:
        earlier = trials[trial.user_attrs["duplicate_of"]]
        assert (earlier.params, earlier.state.name) == (trial.params, "COMPLETE")
    complete = [t.number for t in trials if t.state.name == "COMPLETE"]
    assert sorted(r["num"] for r in runs(app)) == complete
    s = summary(app)
    assert (s["trials"]["COMPLETE"], s["trials"]["FAIL"], s["failed"]) == (3, 0, [])
    assert s["duplicates"] == len(duplicates)
    queued = [t for t in trials if "fixed_params" in t.system_attrs]
    assert bool(queued) == (redraws == 0)
    again = sweep(app, *args)  # nothing left to run: the study stays as it is
    assert again.returncode == 0, again.stderr
    assert "search space is exhausted" in again.stdout
    assert len(runs(app)) == 3
    assert len(study(app).get_trials()) == len(trials)


@pytest.mark.slow
def test_values_a_user_queued_run_even_when_an_earlier_trial_had_them(app: Path) -> None:
    assert sweep(app, "hydra.sweeper.n_trials=2").returncode == 0
    first = study(app).get_trials()[0]
    study(app).enqueue_trial(first.params)
    result = sweep(app, "hydra.sweeper.n_trials=3")
    assert result.returncode == 0, result.stderr
    queued = study(app).get_trials()[2]
    assert (queued.params, queued.state.name) == (first.params, "COMPLETE")
    assert "duplicate_of" not in queued.user_attrs
    assert len(runs(app)) == 3


@pytest.mark.slow
def test_failures_are_recorded_and_the_sweep_goes_on(app: Path) -> None:
    result = sweep(
        app,
        "hydra.sweeper.params.x='choice(0.1,0.3,0.5,5.0,-5.0)'",
        "fail_above=1.0",
        "nan_below=-1.0",
        "hydra.sweeper.n_trials=8",
        "hydra.sweeper.max_failure_rate=0.9",
        "hydra/sweeper/sampler=random",
    )
    assert result.returncode == 0, result.stderr
    s = summary(app)
    failed = {f["number"]: f["error"] for f in s["failed"]}
    assert s["trials"]["FAIL"] == len(failed) > 0
    by_num = {r["num"]: r["x"] for r in runs(app)}
    for number, error in failed.items():
        if by_num[number] > 1:
            assert error == "RuntimeError: x=5.0 is too large"
        else:
            assert "(not finite)" in error
    assert s["trials"]["COMPLETE"] == 8 - len(failed)
    # #21: each failure is one line on the console, its error and where its output went.
    console = (result.stdout + result.stderr).splitlines()
    for number, error in failed.items():
        (line,) = [line for line in console if f"Trial {number} failed: " in line]
        assert error.splitlines()[0] in line
        assert line.split("Its output: ")[1].split(" | ")[0].endswith(f"/{number}/app.log")


@pytest.mark.slow
def test_too_many_failures_stop_the_sweep_with_a_clear_error(app: Path) -> None:
    result = sweep(app, "fail_above=-1", "hydra.sweeper.max_failure_rate=0.25")
    assert result.returncode == 1
    assert "sweep stopped: 2 trial(s) failed, more than hydra.sweeper.max_failure_rate=0.25" in (
        result.stderr
    )
    assert "Traceback" not in result.stderr
    assert len(runs(app)) == 2
    assert summary(app)["trials"]["FAIL"] == 2


@pytest.mark.slow
def test_option_spaces_are_sampled_only_when_the_option_is_chosen(app: Path) -> None:
    result = sweep(app, "encoder=choice(a,b)", "hydra.sweeper.n_trials=10")
    assert result.returncode == 0, result.stderr
    trials = study(app).get_trials()
    seen = set()
    for trial in trials:
        option = trial.params["encoder"]
        seen.add(option)
        own = {"a": "encoder.size", "b": "encoder.depth"}[option]
        other = {"a": "encoder.depth", "b": "encoder.size"}[option]
        assert own in trial.params
        assert other not in trial.params
    assert seen == {"a", "b"}
    by_num = {r["num"]: r["encoder"] for r in runs(app)}
    for trial in trials:  # what was sampled is what the job got
        if trial.params["encoder"] == "b":
            assert by_num[trial.number]["depth"] == trial.params["encoder.depth"] in (1, 2, 3)
        else:
            assert by_num[trial.number]["size"] == trial.params["encoder.size"]


@pytest.mark.slow
def test_multi_objective_studies_report_a_pareto_front(app: Path) -> None:
    result = sweep(
        app,
        "objectives=2",
        "hydra.sweeper.direction=[minimize,minimize]",
        "hydra/sweeper/sampler=nsgaii",
        "hydra.sweeper.sampler.population_size=4",
    )
    assert result.returncode == 0, result.stderr
    s = summary(app)
    front = s["pareto_front"]
    assert front
    assert "best" not in s
    values = [tuple(t["values"]) for t in front]
    for a in values:  # nothing on the front is dominated by another point of it
        assert not any(b != a and b[0] <= a[0] and b[1] <= a[1] for b in values)


@pytest.mark.slow
def test_nothing_to_tune_runs_the_task_once(app: Path) -> None:
    result = sweep(app, "hydra.sweeper.params=null", "hydra.sweeper.search_space_group=null")
    assert result.returncode == 0, result.stderr
    assert len(runs(app)) == 1


BAD_INPUT = [
    (["hydra/sweeper/pruner=medain"], "unknown option 'medain'", "hydra/sweeper/pruner=median"),
    (["hydra/sweeper/sampler=tpx"], "unknown option 'tpx'", "hydra/sweeper/sampler=tpe"),
    (["hydra.sweeper.params.x='interval(5,1)'"], "x=interval(5.0, 1.0)", "interval(1.0, 5.0)"),
    (["encoder=choice(a,c)"], "unknown option 'c' for config group 'encoder'", "options: a, b"),
    (["++hydra.sweeper.params.y='interval(0,1)'"], "unknown key 'y'", "search space"),
    (
        ["hydra.sweeper.storage=postgresql://nobody@127.0.0.1:9/none"],
        "hydra.sweeper.storage='postgresql://nobody@127.0.0.1:9/none' cannot be opened",
        "Fix:",
    ),
    (["hydra.sweeper.direction=maximise"], "hydra.sweeper.direction='maximise'", "maximize"),
    (["hydra.sweeper.n_trials=-5"], "hydra.sweeper.n_trials=-5: expected a whole", "n_trials=20"),
    (["hydra.sweeper.n_jobs=0"], "hydra.sweeper.n_jobs=0: expected", "n_jobs=1"),
    (["hydra.sweeper.max_failure_rate=1.5"], "max_failure_rate=1.5: expected a fraction", "0.25"),
    (["hydra.sweeper.grace_period=0"], "hydra.sweeper.grace_period=0.0: expected", "=300"),
]


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny app after a 2-trial sweep, made once: each bad-input row sweeps a copy of it."""
    app = make_app(tmp_path_factory.mktemp("swept"))
    assert sweep(app, "hydra.sweeper.n_trials=2").returncode == 0
    return app


@pytest.mark.slow
@pytest.mark.parametrize(("overrides", "names", "fix"), BAD_INPUT, ids=[b[0][0] for b in BAD_INPUT])
def test_bad_input_fails_before_any_job_and_leaves_the_study_intact(
    swept: Path, tmp_path: Path, overrides: list[str], names: str, fix: str
) -> None:
    app = shutil.copytree(swept, tmp_path / "app")
    assert len(runs(app)) == 2
    journal = app / "sweep" / "study.journal"
    before = journal.read_bytes()
    result = sweep(app, "hydra.sweeper.n_trials=4", *overrides)
    assert result.returncode == 1
    assert names in result.stderr, result.stderr
    assert fix in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert len(runs(app)) == 2  # no job started
    assert journal.read_bytes() == before


@pytest.mark.slow
def test_a_bad_key_in_an_options_space_fails_before_any_job(app: Path) -> None:
    (app / "conf" / "search_space" / "encoder" / "a.yaml").write_text("sise: choice(1, 2)\n")
    result = sweep(app)
    assert result.returncode == 1
    assert "the search space does not fit the config: unknown key 'encoder.sise'" in result.stderr
    assert runs(app) == []


@pytest.mark.slow
def test_the_job_link_reaches_out_of_process_jobs_through_joblib(app: Path) -> None:
    result = sweep(app, "hydra/launcher=joblib", "hydra.sweeper.n_jobs=2")
    assert result.returncode == 0, result.stderr
    done = runs(app)
    assert len(done) == 6
    assert all(r["trial_env"] for r in done)
    assert len({r["cwd"] for r in done}) == 1


def trials_inside_the_slow_one(app: Path, *overrides: str) -> list[int]:
    """Sweep on joblib with 2 slots where trial 0 is slow; the trials that ran inside it."""
    result = sweep(
        app,
        "hydra/launcher=joblib",
        "hydra.sweeper.n_jobs=2",
        "slow_trial=0",
        "sleep=0.2",
        *overrides,
    )
    assert result.returncode == 0, result.stderr
    done = {r["num"]: r for r in runs(app)}
    slow = done[0]
    return [
        n for n, r in done.items() if n and slow["start"] < r["start"] and r["end"] < slow["end"]
    ]


@pytest.mark.slow
def test_parallel_trials_start_as_slots_free_without_a_batch_barrier(app: Path) -> None:
    # With two slots, trials 1.. must run (and finish) while the slow trial 0 is running.
    assert len(trials_inside_the_slow_one(app, "slow_sleep=6")) >= 3


@pytest.mark.slow
def test_batched_mode_waits_for_the_slowest_trial(app: Path) -> None:
    # The control for the test above: hydra-optuna-sweeper's batches (batched=true) cannot
    # overlap trial 0 with more than one other trial.
    assert len(trials_inside_the_slow_one(app, "slow_sleep=3", "hydra.sweeper.batched=true")) <= 1


@pytest.mark.slow
def test_submitit_local_launcher_runs_trials(app: Path) -> None:
    result = sweep(
        app,
        "hydra/launcher=submitit_local",
        "hydra.sweeper.n_jobs=2",
        "hydra.sweeper.n_trials=3",
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    done = runs(app)
    assert len(done) == 3
    assert all(r["trial_env"] for r in done)
    assert summary(app)["trials"]["COMPLETE"] == 3


@pytest.mark.slow
def test_study_command_prints_the_summary_trials_and_plots(app: Path) -> None:
    assert sweep(app, "hydra.sweeper.n_trials=4").returncode == 0
    command = ["-m", "lightning_args.cli", "study", "sweep"]
    table = run_python(*command, cwd=app, timeout=120)
    assert table.returncode == 0, table.stderr
    assert "4 complete" in table.stdout
    assert f"Best: trial {summary(app)['best']['number']}" in table.stdout
    for name in ("history", "importances", "parallel_coordinate"):
        assert (app / "sweep" / "plots" / f"{name}.png").is_file()
    rows = json.loads(run_python(*command, "--format", "json", "--no-plots", cwd=app).stdout)
    assert [r["trial"] for r in rows] == [0, 1, 2, 3]
    assert {r["state"] for r in rows} == {"COMPLETE"}
    assert all(0 <= r["x"] <= 1 and r["run"].endswith(f"sweep/{r['trial']}") for r in rows)
    missing = run_python("-m", "lightning_args.cli", "study", "nowhere", cwd=app)
    assert missing.returncode == 2
    assert "'nowhere' holds no study.journal" in missing.stderr


def test_study_command_without_plots_writes_nothing_into_the_sweep(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--no-plots`` reads the study and prints it: the sweep's summary.yaml (and its list of
    plots), optimization_results.yaml and plots/ stay as the sweeper left them."""
    from lightning_args import cli
    from lightning_args.sweep.storage import open_storage

    directory = tmp_path / "sweep"
    storage = open_storage(str(directory / "study.journal"))
    finished = optuna.create_study(study_name="s", storage=storage)
    for value in (0.5, 0.25):
        finished.add_trial(
            optuna.trial.create_trial(
                params={"x": value},
                distributions={"x": optuna.distributions.FloatDistribution(0, 1)},
                value=value,
            )
        )
    written = "study: s\nplots: [plots/history.png]\n"  # what the sweeper wrote, plots listed
    (directory / "summary.yaml").write_text(written)

    assert cli.main(["study", str(directory), "--no-plots"]) == 0
    assert "Best: trial 1, value 0.25" in capsys.readouterr().out
    assert (directory / "summary.yaml").read_text() == written
    assert sorted(p.name for p in directory.iterdir()) == ["study.journal", "summary.yaml"]


@pytest.mark.slow
def test_optuna_dashboard_opens_the_sweeps_storage_as_it_is(app: Path) -> None:
    assert sweep(app, "hydra.sweeper.n_trials=2").returncode == 0
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dashboard = Path(sys.executable).parent / "optuna-dashboard"
    server = subprocess.Popen(
        [str(dashboard), str(app / "sweep" / "study.journal"), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline, studies = time.time() + 60, None
        while studies is None and time.time() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies") as response:
                    studies = json.loads(response.read())["study_summaries"]
            except OSError:
                time.sleep(0.2)
    finally:
        server.terminate()
        server.wait()
    assert studies is not None
    (listed,) = studies
    assert listed["study_name"] == study(app).study_name


def test_app_files_are_what_the_docstring_says(app: Path) -> None:
    # Guard for the fixture itself: a typo in APP would make every test above meaningless.
    assert "RUN_LOG" in (app / "app.py").read_text()
    assert textwrap.dedent(CONFIG).strip() in (app / "conf" / "config.yaml").read_text()
