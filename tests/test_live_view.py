"""#21: a sweep you can watch. The study's status (counts, best, running trials, time left), the
sweep's short console (trial output in run directories, short launch lines), the live table on
a terminal, and ``lightning-args watch`` from another process."""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import FrozenTrial, TrialState, create_trial

from hydra_plugins.lightning_args_optuna._console import ShortLaunchLines
from lightning_args._compat.hydra import JOB_LINE, LAUNCHER_LOGGERS
from lightning_args._util.output import output_into
from lightning_args.sweep.attrs import DUPLICATE, ERROR, INTERRUPTED
from lightning_args.sweep.status import StudyStatus, ended_line, status_of
from lightning_args.sweep.view import LiveView
from tests.helpers import REPO, cli, run_app, start_app, tree_digest

NOW = datetime(2026, 12, 3, 12, 0, 0)
X = {"x": FloatDistribution(0, 1)}


def _trial(
    state: TrialState,
    value: float | None = None,
    *,
    seconds: float = 10.0,
    steps: dict[int, float] | None = None,
    attrs: dict[str, object] | None = None,
) -> FrozenTrial:
    return create_trial(
        state=state,
        value=value,
        params={"x": 0.5},
        distributions=X,
        user_attrs=attrs or {},
        intermediate_values=steps or {},
    )


def _study(*trials: FrozenTrial, direction: str = "maximize") -> list[FrozenTrial]:
    """``trials`` as a study stores them: numbered, each started ``seconds`` before ``NOW``."""
    study = optuna.create_study(direction=direction)
    for trial in trials:
        study.add_trial(trial)
    stored = study.get_trials()
    for frozen in stored:
        frozen.datetime_start = NOW - timedelta(seconds=10)
        if frozen.state != TrialState.RUNNING:
            frozen.datetime_complete = NOW
    return stored


# --- the status ---------------------------------------------------------------------------


def test_the_status_counts_what_the_budget_counts_and_finds_the_best() -> None:
    trials = _study(
        _trial(TrialState.COMPLETE, 0.8),
        _trial(TrialState.COMPLETE, 0.9),
        _trial(TrialState.PRUNED, steps={0: 0.3, 1: 0.4}),
        _trial(TrialState.FAIL, attrs={ERROR: "ValueError: boom\nmore"}),
        _trial(TrialState.FAIL, attrs={INTERRUPTED: True}),  # its values ran again
        _trial(TrialState.FAIL, attrs={DUPLICATE: 0}),  # closed without running
        _trial(TrialState.RUNNING, steps={0: 0.5, 1: 0.7, 2: 0.75}),
    )
    status = status_of(trials, total=10, minimize=False, started=0.0, now=NOW.timestamp())
    assert dict(status.states) == {"COMPLETE": 2, "PRUNED": 1, "FAIL": 1}
    assert status.done == 4
    assert status.best == (1, 0.9)
    ((running,),) = [status.running]
    assert (running.number, running.progress, running.latest) == (6, "3 epochs", 0.75)
    assert running.params == "x=0.5"
    # 5 trials to start after the one running, one slot: 5 rounds of 10 s, the running one done.
    assert status.left == pytest.approx(50.0)
    assert not status.finished
    headline = status.headline()
    assert "4/10 done (2 complete, 1 pruned, 1 fail)" in headline
    assert "best 0.9 (trial 1)" in headline


def test_the_best_follows_the_direction() -> None:
    trials = _study(
        _trial(TrialState.COMPLETE, 0.8), _trial(TrialState.COMPLETE, 0.9), direction="minimize"
    )
    status = status_of(trials, total=2, minimize=True, started=0.0, now=NOW.timestamp())
    assert status.best == (0, 0.8)
    assert status.finished
    assert status.left is None or "left" not in status.headline()


@pytest.mark.parametrize(
    ("trial", "said"),
    [
        (_trial(TrialState.COMPLETE, 0.93), "finished: 0.93 (x=0.5)"),
        (_trial(TrialState.PRUNED, steps={0: 0.1, 3: 0.2}), "pruned after epoch 3 (x=0.5)"),
        (_trial(TrialState.FAIL, attrs={ERROR: "KeyError: 'y'\nTraceback"}), "failed: KeyError"),
    ],
    ids=["complete", "pruned", "failed"],
)
def test_an_ended_trial_is_one_line_with_its_state_and_value(trial: FrozenTrial, said: str) -> None:
    (stored,) = _study(trial)
    empty = StudyStatus(1, {"COMPLETE": 1}, (), (), elapsed=1.0, left=None)
    line = ended_line(stored, empty, Path("/runs/0/train.log"))
    assert said in line
    assert "\n" not in line
    assert ("Its output: /runs/0/train.log" in line) == (stored.state == TrialState.FAIL)


# --- the console --------------------------------------------------------------------------


def test_launch_lines_name_the_trial_and_its_values_and_headers_show_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The launchers' own format, logged on their own loggers; the control is the same lines
    without the filter: the trial link's JSON and every repeated header reach the console."""
    logger = logging.getLogger(LAUNCHER_LOGGERS[1])  # joblib's: indexes count within a launch
    link = "++hydra.job.env_set.LIGHTNING_ARGS_TRIAL='{\"trial_id\":3}'"

    def launch(number: int) -> None:
        logger.info("Launching jobs, sweep output dir : /sweep")
        logger.info("\t#%d : %s", 0, f"+sweep=optuna x=0.{number} {link}")

    caplog.set_level(logging.INFO)
    for number in (1, 2):  # control
        launch(number)
    assert sum("LIGHTNING_ARGS_TRIAL" in m for m in caplog.messages) == 2
    assert caplog.messages.count("Launching jobs, sweep output dir : /sweep") == 2
    caplog.clear()
    short = ShortLaunchLines()
    with short.installed():
        threads = [
            threading.Thread(target=lambda n=n: _launching(short, n, launch)) for n in (7, 8)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert not any("LIGHTNING_ARGS_TRIAL" in m for m in caplog.messages)
    assert caplog.messages.count("Launching jobs, sweep output dir : /sweep") == 1
    assert sorted(m for m in caplog.messages if JOB_LINE.match(m)) == [
        "\t#7 : x=0.07",
        "\t#8 : x=0.08",
    ]
    assert not logger.filters  # removed after the sweep


def _launching(short: ShortLaunchLines, number: int, launch: object) -> None:
    with short.launching([(number, f"x=0.0{number}")]):
        launch(number)  # type: ignore[operator]


def test_a_trials_output_goes_to_its_log_file(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """Everything a job writes, by file descriptor, Python's streams or a console log handler,
    lands in the log, once; the control writes the same outside and the console gets it."""
    root = logging.getLogger()
    console = logging.StreamHandler(sys.stderr)
    log = tmp_path / "job" / "train.log"

    def job() -> None:
        os.write(1, b"from C\n")
        print("from print")
        print("from stderr", file=sys.stderr)
        logging.getLogger("a.job").warning("from a logger")

    root.addHandler(console)
    try:
        job()  # control
        shown = capfd.readouterr()
        assert "from C" in shown.out
        assert "from a logger" in shown.err
        with output_into(log):
            job()
        shown = capfd.readouterr()
        assert (shown.out, shown.err) == ("", "")
        assert root.handlers.count(console) == 1  # back
        written = log.read_text()
        for line in ("from C", "from print", "from stderr", "from a logger"):
            assert written.count(line) == 1, written
        job()  # restored: the console again
        assert "from print" in capfd.readouterr().out
    finally:
        root.removeHandler(console)


def test_the_live_table_leaves_log_handlers_writing_where_they_did(tmp_path: Path) -> None:
    """While live, console handlers print above the table, including one made meanwhile (Hydra's
    joblib launcher configures logging at every launch); after it, none is left pointing at the
    table's stand-in streams (which write to a closed copy of the terminal)."""
    primary, secondary = os.openpty()
    terminal = os.fdopen(secondary, "w", buffering=1)
    terminal_stdout = sys.stdout
    root = logging.getLogger()
    before = logging.StreamHandler(terminal)
    root.addHandler(before)
    made: list[logging.StreamHandler] = []  # type: ignore[type-arg]
    still = StudyStatus(3, {"COMPLETE": 1}, (), (), elapsed=1.0, left=None)
    try:
        sys.stdout = terminal
        with LiveView("Study s", lambda: still, interval=0.1, stream=terminal) as view:
            assert view.live
            made.append(logging.StreamHandler(sys.stdout))  # during the live display
            root.addHandler(made[0])
            root.warning("a line above the table")
            time.sleep(0.3)
        sys.stdout = terminal_stdout
        assert before.stream is terminal
        assert made[0].stream is terminal
        root.warning("after the table")  # would raise inside logging on a closed stand-in
        shown = _read_all(primary)
        assert "a line above the table" in shown
        assert "1/3 done" in shown
        assert "after the table" in shown
    finally:
        sys.stdout = terminal_stdout
        for handler in (before, *made):
            root.removeHandler(handler)
        terminal.close()
        os.close(primary)


def _read_all(fd: int) -> str:
    import select

    out = b""
    while select.select([fd], [], [], 0.2)[0]:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        out += chunk
    return out.decode(errors="replace")


# --- end to end ---------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("verbose", [False, True], ids=["quiet", "control-verbose"])
def test_lightnings_output_stays_in_the_trials_log_unless_verbose(
    tmp_path: Path, verbose: bool
) -> None:
    """Hydra's basic launcher: trials run in the sweeper's own process, one at a time."""
    result = run_app(
        "+sweep=optuna",
        "-m",
        "hydra.sweeper.n_trials=2",
        f"hydra.sweeper.verbose={str(verbose).lower()}",
        "trainer.max_epochs=1",
        f"paths.output_root={tmp_path}",
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    console = result.stdout + result.stderr
    ((sweep,),) = [list((tmp_path / "sweeps").iterdir())]
    for number in (0, 1):
        log = (sweep / str(number) / "train.log").read_text()
        assert ("Trainable params" in log) != verbose
        assert "Run completed" in log  # log records: Hydra's file handler, both ways
    assert ("Trainable params" in console) == verbose
    assert ("GPU available" in console) == verbose
    assert "LIGHTNING_ARGS_TRIAL" not in console
    assert "Trial 1 finished: " in console


def console_is_short(console: str, n_trials: int) -> None:
    """#21's console of a piped sweep: a line per trial as it starts and one as it ends, plus a
    header and a summary (at most 3 lines per trial plus 6 in all)."""
    lines = [line for line in console.splitlines() if line.strip()]
    assert len(lines) <= 3 * n_trials + 6, console
    assert "LIGHTNING_ARGS_TRIAL" not in console
    for number in range(n_trials):
        (ended,) = [line for line in lines if f"] Trial {number} " in line]
        assert any(f"Trial {number} {state}" in ended for state in ("finished: ", "pruned"))
        assert f"/{n_trials} done" in ended
        (started,) = [line for line in lines if f"\t#{number} : " in line]
        assert "optimizer.lr=" in started


@pytest.mark.slow
def test_watch_follows_a_sweep_in_another_process_and_never_writes(tmp_path: Path) -> None:
    log = (tmp_path / "sweep.log").open("w")
    sweep = start_app(
        "+sweep=optuna",
        "-m",
        "hydra.sweeper.n_trials=6",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        "trainer.max_epochs=3",
        f"paths.output_root={tmp_path}",
        cwd=REPO,
        stdout=log,
        stderr=log,
    )
    deadline = time.time() + 120
    while time.time() < deadline and not list((tmp_path / "sweeps").glob("*/study.journal")):
        time.sleep(0.1)
    ((journal,),) = [list((tmp_path / "sweeps").glob("*/study.journal"))]
    directory = journal.parent
    try:
        watched = cli("watch", str(directory), "--interval", "0.3", timeout=300)
    finally:
        assert sweep.wait(timeout=300) == 0, (tmp_path / "sweep.log").read_text()[-3000:]
    assert watched.returncode == 0, watched.stderr
    lines = watched.stdout.splitlines()
    assert lines[0].startswith("Study ")
    assert any(" finished: " in line or " pruned" in line for line in lines[1:]), lines
    assert lines[-1].startswith("Study "), lines
    assert " ended: 6/6 done" in lines[-1], lines
    # On the finished study: the final table, once; and nothing under the sweep changed.
    before = tree_digest(directory)
    again = cli("watch", str(directory), timeout=120)
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("Study ") == 1
    assert "6/6 done" in again.stdout
    assert "best" in again.stdout
    assert tree_digest(directory) == before
    missing = cli("watch", str(tmp_path / "nowhere"), timeout=120)
    assert missing.returncode == 2
    assert "holds no study.journal" in missing.stderr


def test_watch_leaves_a_journal_being_written_as_it_is(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A sweeper may be half-way through appending a record when ``watch`` reads: opened
    read-only, the journal is read as it is. (The sweepers' own opening repairs a torn last
    record, which here would cut the writer's record short: by hand, watch opening the storage
    as sweepers do truncates this journal and leaves a ``.torn-`` copy.)"""
    from lightning_args.cli import main
    from lightning_args.sweep.attrs import N_TRIALS
    from lightning_args.sweep.storage import open_storage

    journal = tmp_path / "study.journal"
    study = optuna.create_study(study_name="s", storage=open_storage(str(journal)))
    study.add_trial(create_trial(value=0.5, params={"x": 0.5}, distributions=X))
    study.set_user_attr(N_TRIALS, 1)
    with journal.open("ab") as file:
        file.write(b'{"op_code": 5, "worker_id": "a-sweeper-wri')  # no line end yet
    before = sorted((p.name, p.read_bytes()) for p in tmp_path.iterdir())

    assert main(["watch", str(tmp_path)]) == 0
    assert "1/1 done" in capsys.readouterr().out
    assert sorted((p.name, p.read_bytes()) for p in tmp_path.iterdir()) == before
