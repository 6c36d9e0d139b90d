"""Issue 12's acceptance: every failure, at every stage, is one clear message.

One table of bad inputs, each run in a subprocess as a user would type it: ``train.py`` (pre-flight,
composition, the job itself), ``-m`` sweeps, and every ``lightning-args`` subcommand, on a
workspace that holds one finished run (made once for the module) and damaged copies of it. For
each row: the exit status, no ``Traceback``, the offending key or file named, at most
:data:`MAX_LINES` lines of output (stdout and stderr together; blank lines are not counted), and
the earlier run byte-for-byte unchanged. Rows that fail in pre-flight also create no run
directory; rows whose job fails find in its ``run.json`` the message the user saw.

Most rows fail before torch is imported (a second or two each); those of the job itself (torch's
and Lightning's refusals, out of memory, a NaN loss) train for a batch or two.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from tests.helpers import REPO, Result, read_record, run_app, run_dirs, tree_digest

pytestmark = pytest.mark.slow  # every row spawns a process

#: Lines of output a failure may print (blank lines not counted).
MAX_LINES = 8
THEIR_SWEEPER = "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper"


@dataclass(frozen=True)
class Row:
    """One bad input. ``argv`` may hold ``{run}`` (the earlier run), ``{ws}`` (the workspace)
    and ``{damaged}`` (the folder of damaged copies)."""

    id: str
    tool: str  # "train" (train.py) or "cli" (lightning-args)
    argv: tuple[str, ...]
    status: int
    named: tuple[str, ...]  # fragments the message must hold: the key or file, the fix
    creates_run: bool = False  # False: refused before Hydra made a run directory
    recorded: bool = False  # True: the failed run's run.json holds the message shown
    env: dict[str, str] = field(default_factory=dict)


# Overrides that keep a job that does start short (a few batches on the CPU) and its ordinary
# output off (model summary, progress bar), so that what is counted is the failure's.
SHORT = ("trainer=cpu", "trainer.max_epochs=1", "trainer.limit_train_batches=3",
         "trainer.limit_val_batches=2", "test=false", "trainer.enable_model_summary=false",
         "trainer.enable_progress_bar=false")  # fmt: skip

ROWS: list[Row] = [
    # --- train.py, pre-flight: nothing heavy, no run directory -------------------------------
    Row("missing-checkpoint", "train", ("ckpt_path=/nonexistent/nope.ckpt",), 1,
        ("ckpt_path='/nonexistent/nope.ckpt'", "Fix:")),
    Row("truncated-checkpoint", "train",
        ("ckpt_path={damaged}/truncated_ckpt/checkpoints/last.ckpt",), 1,
        ("truncated_ckpt/checkpoints/last.ckpt", "cannot be read")),
    Row("not-a-checkpoint", "train", ("ckpt_path={ws}/notes.txt",), 1,
        ("notes.txt", "not a checkpoint")),
    Row("gpu-without-gpu", "train", ("trainer=gpu",), 1,
        ("trainer.accelerator='gpu'", "Fix: trainer=cpu")),
    Row("cuda-without-gpu", "train", ("trainer.accelerator=cuda",), 1,
        ("trainer.accelerator='cuda'", "Fix: trainer=cpu")),
    Row("zero-devices", "train", ("trainer.devices=0",), 1,
        ("trainer.devices=0", "Fix: trainer.devices=1")),
    Row("negative-devices", "train", ("trainer.devices=-3",), 1, ("trainer.devices=-3", "Fix:")),
    Row("output-root-is-a-file", "train", ("paths.output_root={ws}/notes.txt/out",), 1,
        ("paths.output_root=", "is a file, not a directory", "Fix:")),
    Row("run-dir-under-a-file", "train", ("hydra.run.dir={ws}/notes.txt/run",), 1,
        ("hydra.run.dir=", "is a file", "Fix:")),
    Row("missing-group", "train", ("~model",), 1, ("missing required value: model", "Fix:")),
    Row("output-root-broken-interpolation", "train", ("paths.output_root=${{oops}}",), 1,
        ("config key 'paths.output_root'", "'oops' not found", "Fix:")),
    # --- train.py, composition ---------------------------------------------------------------
    Row("misspelt-key", "train", ("trainer.max_epoch=3",), 1,
        ("trainer.max_epoch", "Fix: trainer.max_epochs=3")),
    Row("wrong-type", "train", ("optimizer.lr=abc",), 1, ("optimizer.lr", "Fix:")),
    Row("unknown-option", "train", ("model=mpl",), 1, ("'mpl'", "Fix: model=mlp")),
    Row("broken-interpolation", "train", ("optimizer.lr=${{oops}}", *SHORT), 1,
        ("config key 'optimizer.lr'", "'oops' not found", "Fix:"), creates_run=True,
        recorded=True),
    # --- train.py, the job: torch's and Lightning's refusals, memory, NaN ---------------------
    Row("negative-lr", "train", ("optimizer.lr=-1", *SHORT), 1,
        ("optimizer.lr=-1", "Invalid learning rate", "Fix: optimizer.lr="),
        creates_run=True, recorded=True),
    Row("negative-momentum", "train", ("optimizer=sgd", "optimizer.momentum=-1", *SHORT), 1,
        ("optimizer.momentum=-1", "Fix: optimizer.momentum="), creates_run=True, recorded=True),
    Row("scheduler-argument", "train",
        ("scheduler=onecycle", "scheduler.pct_start=2", *SHORT), 1,
        ("scheduler.pct_start", "OneCycleLR", "Fix:"), creates_run=True, recorded=True),
    Row("unknown-strategy", "train", ("trainer.strategy=bogus", *SHORT), 1,
        ("trainer.strategy='bogus'", "Fix: trainer.strategy=auto"), creates_run=True,
        recorded=True),
    Row("unknown-precision", "train", ("trainer.precision=17", *SHORT), 1,
        ("trainer.precision='17'", "Fix: trainer.precision="), creates_run=True, recorded=True),
    # A real allocation failure on the CPU: a 2e9-wide layer asks for ~477 GiB.
    Row("out-of-memory", "train", ("model.encoder.hidden=[2000000000]", *SHORT), 1,
        ("out of host (CPU) memory", "model.encoder", "Fix: make model.encoder smaller"),
        creates_run=True, recorded=True),
    Row("nan-loss", "train", ("optimizer.lr=1e30", *SHORT), 1,
        ("training loss became NaN", "optimizer.lr=1e+30", "trainer.detect_anomaly=true"),
        creates_run=True, recorded=True),
    Row("nan-loss-anomaly-detection", "train",
        ("optimizer.lr=1e30", *SHORT, "trainer.detect_anomaly=true"), 1,
        ("anomaly detection", "optimizer.lr=1e+30", "Fix: a smaller optimizer.lr"),
        creates_run=True, recorded=True),
    # --- -m sweeps -----------------------------------------------------------------------------
    Row("sweep-negative-trials", "train", ("+sweep=optuna", "-m", "hydra.sweeper.n_trials=-5"),
        1, ("hydra.sweeper.n_trials=-5",)),
    Row("sweep-failure-rate", "train",
        ("+sweep=optuna", "-m", "hydra.sweeper.max_failure_rate=2"), 1,
        ("hydra.sweeper.max_failure_rate=2",)),
    Row("sweep-their-option-name", "train", ("-m", "hydra/sweeper=optuna"), 1,
        ("hydra/sweeper=lightning_args_optuna",)),
    Row("sweep-their-class", "train",
        ("+sweep=optuna", "-m", f"hydra.sweeper._target_={THEIR_SWEEPER}"), 1,
        ("hydra.sweeper._target_=", "Fix: delete the `_target_:` line")),
    Row("sweep-output-root-is-a-file", "train",
        ("+sweep=optuna", "-m", "paths.output_root={ws}/notes.txt/out"), 1,
        ("paths.output_root=", "is a file")),
    Row("template-search-keeping-its-target", "train",
        ("+hparams_search=mnist_optuna_target", "hydra.searchpath=[file://{ws}/conf]"), 1,
        ("hydra.sweeper._target_=", "Fix: delete the `_target_:` line")),
    # --- lightning-args ------------------------------------------------------------------------
    Row("runs-no-such-folder", "cli", ("runs", "{ws}/nowhere"), 2, ("nowhere",)),
    Row("runs-bad-where", "cli", ("runs", "{ws}/outputs", "--where", "nokey"), 2,
        ("--where 'nokey'", "KEY=VALUE")),
    Row("show-truncated-record", "cli", ("show", "{damaged}/broken_record"), 2,
        ("broken_record/run.json", "Fix:")),
    Row("show-not-a-run", "cli", ("show", "{ws}"), 2, ("is not a run directory", "Fix:")),
    Row("show-config-gone", "cli", ("show", "{damaged}/no_config"), 1,
        ("no_config/.hydra/config.yaml", "No such file", "Fix:")),
    Row("diff-corrupt-config", "cli", ("diff", "{run}", "{damaged}/bad_yaml"), 1,
        ("bad_yaml/.hydra/config.yaml", "not valid YAML", "Fix:")),
    Row("diff-not-a-run", "cli", ("diff", "{run}", "{ws}/nowhere"), 2, ("nowhere",)),
    Row("plot-unlogged-metric", "cli", ("plot", "{run}", "--metric", "val/nope", "--out",
        "{ws}/c.png"), 2, ("'val/nope'", "Fix: --metric")),
    Row("plot-truncated-record", "cli", ("plot", "{damaged}/broken_record"), 2,
        ("broken_record/run.json",)),
    Row("study-no-journal", "cli", ("study", "{run}"), 2, ("study.journal",)),
    Row("study-corrupt-journal", "cli", ("study", "{damaged}/bad_study"), 2,
        ("bad_study/study.journal",)),
    Row("watch-no-journal", "cli", ("watch", "{run}"), 2, ("study.journal", "--storage")),
    Row("watch-corrupt-journal", "cli", ("watch", "{damaged}/bad_study"), 2,
        ("bad_study/study.journal", "Fix:")),
    Row("watch-interval-zero", "cli", ("watch", "{run}", "--interval", "0"), 2,
        ("--interval: '0': expected seconds > 0",)),
    Row("resume-truncated-checkpoint", "cli", ("resume", "{damaged}/truncated_ckpt"), 2,
        ("truncated_ckpt/checkpoints/last.ckpt", "cannot be read")),
    Row("resume-truncated-record", "cli", ("resume", "{damaged}/broken_record"), 2,
        ("broken_record/run.json", "Fix:")),
    Row("reproduce-truncated-record", "cli", ("reproduce", "{damaged}/broken_record"), 2,
        ("broken_record/run.json", "Fix:")),
    Row("reproduce-not-a-run", "cli", ("reproduce", "{ws}/nowhere"), 2, ("nowhere",)),
    Row("fork-truncated-checkpoint", "cli",
        ("fork", "{damaged}/truncated_ckpt", "optimizer.lr=0.01"), 2,
        ("truncated_ckpt/checkpoints/last.ckpt", "cannot be read")),
    Row("fork-architecture", "cli", ("fork", "{run}", "model.encoder.hidden=[32]"), 2,
        ("model.encoder.hidden=[32] cannot change", "Fix: drop model.encoder.hidden")),
    Row("fork-nothing-left", "cli", ("fork", "{run}", "optimizer.lr=0.01"), 2,
        ("nothing left to train", "Fix: trainer.max_epochs=")),
]  # fmt: skip


@dataclass(frozen=True)
class Workspace:
    root: Path
    run: Path  # the earlier run
    damaged: Path  # damaged copies of it, one per kind of damage


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """A workspace holding one finished run, damaged copies of it and a file that is not a
    checkpoint; and, beside the app's configs, the template's search with its _target_ kept."""
    root = tmp_path_factory.mktemp("workspace")
    made = run_app("trainer=debug", cwd=root)
    assert made.returncode == 0, made.stderr
    (run,) = run_dirs(root)
    (root / "notes.txt").write_text("not a checkpoint\n")
    damaged = root / "damaged"
    for name in ("broken_record", "truncated_ckpt", "bad_yaml", "no_config", "bad_study"):
        shutil.copytree(run, damaged / name, ignore=shutil.ignore_patterns("owner.lock"))
    record = damaged / "broken_record" / "run.json"
    record.write_bytes(record.read_bytes()[:40])
    last = damaged / "truncated_ckpt" / "checkpoints" / "last.ckpt"
    last.write_bytes(last.read_bytes()[:1000])
    (damaged / "bad_yaml" / ".hydra" / "config.yaml").write_text("model:\n  a: [1, 2\nseed: 3\n")
    (damaged / "no_config" / ".hydra" / "config.yaml").unlink()
    (damaged / "bad_study" / "study.journal").write_text("{not json\n{also not\n")
    search = (REPO / "conf" / "hparams_search" / "mnist_optuna.yaml").read_text()
    kept = search.replace("  sweeper:\n", f"  sweeper:\n    _target_: {THEIR_SWEEPER}\n", 1)
    assert THEIR_SWEEPER in kept
    (root / "conf" / "hparams_search").mkdir(parents=True)
    (root / "conf" / "hparams_search" / "mnist_optuna_target.yaml").write_text(kept)
    return Workspace(root, run, damaged)


def run_row(row: Row, ws: Workspace) -> Result:
    """Run ``row``'s command in the workspace."""
    argv = [a.format(run=ws.run, ws=ws.root, damaged=ws.damaged) for a in row.argv]
    if row.tool == "train":
        return run_app(*argv, cwd=ws.root, env=row.env)
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    proc = subprocess.run(
        [sys.executable, "-m", "lightning_args.cli", *argv],
        cwd=ws.root,
        env={**env, "PYTHONWARNINGS": "ignore", **row.env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def problems(row: Row, result: Result) -> list[str]:
    """What is wrong with ``result`` as ``row``'s answer (nothing: an empty list)."""
    output = result.stdout + result.stderr
    lines = [line for line in output.splitlines() if line.strip()]
    found = []
    if result.returncode != row.status:
        found.append(f"exit status {result.returncode}, expected {row.status}")
    if "Traceback" in output:
        found.append("a traceback")
    for text in ("Error executing job", "Error in call to target", "full_key:"):
        if text in output:
            found.append(f"Hydra's wrapping: {text!r}")
    found += [f"{fragment!r} not named" for fragment in row.named if fragment not in output]
    if len(lines) > MAX_LINES:
        found.append(f"{len(lines)} lines of output, expected at most {MAX_LINES}")
    return found


@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
def test_bad_input_is_one_clear_message(workspace: Workspace, row: Row) -> None:
    if row.id.endswith("without-gpu") and _has_gpu():
        pytest.skip("this machine has a GPU")
    before = tree_digest(workspace.run)
    runs_before = set(run_dirs(workspace.root))

    result = run_row(row, workspace)

    output = result.stdout + result.stderr
    assert not problems(row, result), f"{problems(row, result)}\n{output}"
    assert tree_digest(workspace.run) == before  # the earlier run, byte for byte
    new = set(run_dirs(workspace.root)) - runs_before
    if not row.creates_run:
        assert not new, f"a refused run left {new}"
    if row.recorded:
        (failed,) = new
        error = read_record(failed)["error"]["message"]
        assert error in output, f"run.json says {error!r}; the user saw:\n{output}"


def test_the_table_covers_the_issue() -> None:
    """At least 30 inputs, across train.py, sweeps and every lightning-args subcommand."""
    import argparse

    from lightning_args.cli import parser

    assert len(ROWS) >= 30
    commands = {row.argv[0] for row in ROWS if row.tool == "cli"}
    (sub,) = [a for a in parser()._actions if isinstance(a, argparse._SubParsersAction)]
    assert set(sub.choices) <= commands, set(sub.choices) - commands
    assert any("-m" in row.argv for row in ROWS)
    assert len({row.id for row in ROWS}) == len(ROWS)


# --- controls: each check can fail -------------------------------------------------------------


def test_the_checks_catch_what_they_look_for() -> None:
    row = Row("control", "train", (), 1, ("optimizer.lr",))
    good = Result(1, "", "optimizer.lr=-1: refused.\n  Fix: optimizer.lr=0.001\n")
    assert problems(row, good) == []
    wall = "Traceback (most recent call last):\n" + "  File x\n" * 20 + "ValueError: optimizer.lr"
    assert set(problems(row, Result(1, "", wall))) == {
        "a traceback",
        f"22 lines of output, expected at most {MAX_LINES}",
    }
    assert problems(row, Result(0, "", "optimizer.lr")) == ["exit status 0, expected 1"]
    assert problems(row, Result(1, "", "something failed")) == ["'optimizer.lr' not named"]
    wrapped = "Error executing job with overrides: []\noptimizer.lr\nfull_key: optimizer"
    assert len(problems(row, Result(1, "", wrapped))) == 2


def test_the_digest_sees_one_changed_byte(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"abc")
    before = tree_digest(tmp_path)
    (tmp_path / "a").write_bytes(b"abd")
    assert tree_digest(tmp_path) != before


# --- the traceback on request ------------------------------------------------------------------


def test_full_error_shows_the_traceback(workspace: Workspace) -> None:
    row = Row("full", "train", ("trainer.devices=0",), 1, (), env={"HYDRA_FULL_ERROR": "1"})
    result = run_row(row, workspace)
    assert result.returncode == 1
    assert "Traceback" in result.stderr
    assert "AcceleratorError" in result.stderr


def test_debug_flag_shows_the_traceback(workspace: Workspace) -> None:
    quiet = run_row(Row("q", "cli", ("show", "{damaged}/broken_record"), 2, ()), workspace)
    loud = run_row(
        Row("d", "cli", ("show", "{damaged}/broken_record", "--debug"), 1, ()), workspace
    )
    assert "Traceback" not in quiet.stderr
    assert "Traceback" in loud.stderr
    assert "RecordError" in loud.stderr


def _has_gpu() -> bool:
    import torch

    return torch.cuda.is_available()


# --- what is no error: --help, --cfg job --resolve -------------------------------------------


def test_help_lists_the_groups_a_user_chooses(tmp_path: Path) -> None:
    result = run_app("--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    groups = result.stdout.split("== Configuration groups ==", 1)[1].split("== Config ==", 1)[0]
    # Control for the filter: the groups a user chooses from are there, nested ones too.
    for group in ("model:", "model/encoder:", "trainer:", "optimizer:", "hparams_search:"):
        assert f"\n{group}" in groups, groups
    assert "schema/" not in groups
    assert "search_space/" not in groups


def test_cfg_job_resolve_shows_the_run_directory_it_does_not_create(tmp_path: Path) -> None:
    result = run_app("--cfg", "job", "--resolve", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    paths = yaml.safe_load(result.stdout)["paths"]
    assert paths["run_dir"].startswith(str(tmp_path / "outputs" / "runs") + "/")
    assert not (tmp_path / "outputs").exists()  # showing a config is no run


@pytest.mark.parametrize(
    "flags", [("--cfg", "hydra", "--resolve"), ("--cfg", "all", "--resolve"), ("--info",)]
)
def test_showing_a_config_creates_no_run_directory(tmp_path: Path, flags: tuple[str, ...]) -> None:
    result = run_app(*flags, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "runtime" in result.stdout or "Config search path" in result.stdout, result.stdout
    assert not (tmp_path / "outputs").exists()
