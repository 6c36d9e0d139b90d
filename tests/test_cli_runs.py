"""``lightning-args runs | show | diff`` on real run directories, as subprocesses."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import run_app, run_dirs, run_python

# One worker runs them all: the workspace's three runs are trained once.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("cli_runs")]


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_python("-m", "lightning_args.cli", *args, cwd=cwd, timeout=60)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two finished runs (mlp, cnn) and a failed one."""
    root = tmp_path_factory.mktemp("workspace")
    for overrides in (["model=mlp"], ["model=cnn"], ["objective.metric=val/nope"]):
        run_app("trainer=debug", "trainer.enable_progress_bar=false", *overrides, cwd=root)
    assert len(run_dirs(root)) == 3
    return root


def _json_rows(result: subprocess.CompletedProcess[str]) -> list[dict]:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_runs_lists_every_run_with_status_objective_and_metrics(workspace: Path) -> None:
    rows = _json_rows(cli("runs", "outputs", "--format", "json", cwd=workspace))
    assert [row["status"] for row in rows] == ["completed", "completed", "failed"]
    assert rows[0]["overrides"].endswith("model=mlp")
    assert isinstance(rows[0]["objective"], float)
    assert isinstance(rows[0]["test/acc"], float)


def test_runs_filters_and_sorts(workspace: Path) -> None:
    completed = _json_rows(cli("runs", "--status", "completed", "--format", "json", cwd=workspace))
    assert len(completed) == 2
    cnn = _json_rows(
        cli(
            "runs",
            "--where",
            "model.encoder._target_=lightning_args.demos.CNNEncoder",
            "--format",
            "json",
            cwd=workspace,
        )
    )
    assert [row["overrides"].split()[-1] for row in cnn] == ["model=cnn"]
    ranked = _json_rows(
        cli("runs", "--sort", "test/acc", "--desc", "--format", "json", cwd=workspace)
    )
    scores = [row["test/acc"] for row in ranked if row["test/acc"] is not None]
    assert scores == sorted(scores, reverse=True)
    assert ranked[-1]["status"] == "failed"  # no score: last


def test_runs_as_csv_and_table(workspace: Path) -> None:
    result = cli("runs", "--format", "csv", cwd=workspace)
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == 3
    assert {"run", "status", "objective", "duration_s"} <= set(rows[0])
    table = cli("runs", cwd=workspace)
    assert table.returncode == 0
    assert "completed" in table.stdout


def test_show_and_diff(workspace: Path) -> None:
    mlp, cnn, _ = run_dirs(workspace)
    shown = cli("show", str(mlp), cwd=workspace)
    assert shown.returncode == 0, shown.stderr
    assert '"status": "completed"' in shown.stdout
    assert "lightning_args.demos.MLPEncoder" in shown.stdout
    assert "best.ckpt" in shown.stdout
    diff = cli("diff", str(mlp), str(cnn), cwd=workspace)
    assert diff.returncode == 0
    assert (
        'model.encoder._target_: "lightning_args.demos.MLPEncoder" -> '
        '"lightning_args.demos.CNNEncoder"' in diff.stdout
    )
    assert "model.encoder.hidden" in diff.stdout  # only the MLP has it
    assert "same config" in cli("diff", str(mlp), str(mlp), cwd=workspace).stdout


def test_runs_show_and_select_the_options_each_run_used(workspace: Path) -> None:
    """#21: Hydra's recorded choices, not only the overrides typed."""
    rows = _json_rows(cli("runs", "--format", "json", cwd=workspace))
    on_defaults = rows[2]  # objective.metric=val/nope: every group on its default
    assert "model" not in on_defaults["overrides"]
    assert {"model=mlp", "optimizer=adamw", "data=digits"} <= set(on_defaults["choices"].split())
    assert not any(choice.startswith("hydra/") for choice in on_defaults["choices"].split())
    assert "model=cnn" in rows[1]["choices"].split()
    cnn = _json_rows(cli("runs", "--choice", "model=cnn", "--format", "json", cwd=workspace))
    assert [row["overrides"].split()[-1] for row in cnn] == ["model=cnn"]
    mlp = _json_rows(
        cli("runs", "--choice", "model=mlp", "--choice", "optimizer=adamw", "--format", "json",
            cwd=workspace)
    )  # fmt: skip
    assert len(mlp) == 2
    first, second, _ = run_dirs(workspace)
    shown = cli("show", str(first), cwd=workspace)
    assert "# choices (.hydra/hydra.yaml)" in shown.stdout
    assert "model=mlp" in shown.stdout
    diff = cli("diff", str(first), str(second), cwd=workspace)
    assert 'choice model: "mlp" -> "cnn"' in diff.stdout


def test_a_broken_hydra_yaml_is_named_and_its_run_still_listed(
    workspace: Path, tmp_path: Path
) -> None:
    import shutil

    shutil.copytree(workspace / "outputs", tmp_path / "outputs")
    broken = run_dirs(tmp_path)[0] / ".hydra" / "hydra.yaml"
    broken.write_text("hydra: {runtime: [unclosed\n")
    result = cli("runs", "--format", "json", cwd=tmp_path)
    rows = _json_rows(result)
    assert len(rows) == 3
    assert rows[0]["choices"] == ""
    assert f"{broken.relative_to(tmp_path)}' line 2: not valid YAML" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["show", "nowhere"], "'nowhere' is not a run directory"),
        (["runs", "nowhere"], "no directory 'nowhere'"),
        (["runs", "--where", "seed"], "expected KEY=VALUE"),
        (["runs", "--choice", "model"], "expected GROUP=OPTION, e.g. --choice model=cnn"),
    ],
)
def test_bad_arguments_get_one_line(workspace: Path, args: list[str], message: str) -> None:
    result = cli(*args, cwd=workspace)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_listing_imports_no_torch(workspace: Path) -> None:
    code = (
        "import sys; from lightning_args.cli import main; main(['runs', '--format', 'json']); "
        "print('TORCH' if 'torch' in sys.modules else 'NO_TORCH', file=sys.stderr)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=workspace, capture_output=True, text=True, timeout=60
    )
    assert result.stderr.strip().endswith("NO_TORCH")


def test_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "lightning-args"
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert "runs" in result.stdout


def test_plot_draws_the_curves_of_several_runs(workspace: Path, tmp_path: Path) -> None:
    from PIL import Image

    mlp, cnn, _ = run_dirs(workspace)
    out = tmp_path / "curves.png"
    result = cli(
        "plot", str(mlp), str(cnn), "--metric", "val/acc", "--out", str(out), cwd=workspace
    )
    assert result.returncode == 0, result.stderr
    with Image.open(out) as image:
        assert image.size[0] > 400
    missing = cli("plot", str(mlp), "--metric", "val/nope", cwd=workspace)
    assert missing.returncode == 2
    assert "logged no 'val/nope'" in missing.stderr
    assert "val/acc" in missing.stderr  # names what it did log


def test_a_broken_run_json_is_flagged_and_named_never_a_traceback(
    workspace: Path, tmp_path: Path
) -> None:
    """#12: ``runs`` lists the healthy runs and flags the broken one; ``show``, ``resume`` and
    ``load_run`` name the file and the fix."""
    import shutil

    import lightning_args

    copy = tmp_path / "outputs"
    shutil.copytree(workspace / "outputs", copy)
    broken = run_dirs(tmp_path)[0]
    record = broken / "run.json"
    record.write_bytes(record.read_bytes()[:-40])  # cut mid-write by a crash, or by hand

    rows = _json_rows(cli("runs", "outputs", "--format", "json", cwd=tmp_path))
    assert [row["status"] for row in rows] == ["broken", "completed", "failed"]
    for args in (["runs", "outputs"], ["show", str(broken)], ["resume", str(broken)]):
        result = cli(*args, cwd=tmp_path)
        assert f"{record.relative_to(tmp_path)} cannot be read: it is truncated" in result.stderr
        assert "Traceback" not in result.stderr
        assert result.returncode == (0 if args[0] == "runs" else 2)
    with pytest.raises(lightning_args.RecordError, match=r"Fix: restore run\.json"):
        lightning_args.load_run(broken)


def test_runs_tree_nests_forks_and_shows_every_row_once_even_in_a_cycle(tmp_path: Path) -> None:
    """``runs --tree`` from records alone: a fork under its parent, a fork of a fork deeper;
    two hand-edited records naming each other (a cycle no root reaches) still each get a row,
    and a parent that is not a string is a root, not an error."""
    from lightning_args.cli.runs import Run, _as_tree
    from lightning_args.run.record import RunRecord

    def run(name: str, parent: object = None) -> Run:
        fork = {} if parent is None else {"parent": parent}
        return Run(tmp_path / name, RunRecord(id=name, fork=fork))

    runs = [
        run("a"),
        run("b", str(tmp_path / "a")),
        run("c", str(tmp_path / "b")),
        run("x", str(tmp_path / "y")),
        run("y", str(tmp_path / "x")),
        run("z", ["not", "a", "path"]),
    ]
    rows = [{"run": r.path.name} for r in runs]
    assert [row["run"] for row in _as_tree(rows, runs)] == [
        "a", "└ b", "  └ c", "z", "x", "└ y"
    ]  # fmt: skip
