"""#14, the k-fold run: ``python train.py +cv=kfold`` leaves a parent run directory with one
ordinary run per fold, and the parent's record aggregates what the folds measured."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from lightning_args.errors import JobError
from tests.helpers import cli, read_record, run_app, run_dirs
from tests.test_sweep_app import summary, trials


@pytest.mark.slow
def test_a_kfold_run_keeps_a_run_per_fold_and_its_record_aggregates_them(tmp_path: Path) -> None:
    result = run_app(
        "+cv=kfold",
        "cv.folds=3",
        "cv.stratify=label",
        "trainer.max_epochs=2",
        "trainer.enable_progress_bar=false",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (parent,) = run_dirs(tmp_path)
    record = read_record(parent)
    assert record["status"] == "completed"
    folds = record["cv"]["folds"]
    assert [f["run"] for f in folds] == ["folds/0", "folds/1", "folds/2"]
    objectives, accuracies = [], []
    for index, entry in enumerate(folds):
        fold = parent / entry["run"]
        own = read_record(fold)
        assert own["status"] == entry["status"] == "completed"
        assert (fold / "checkpoints" / "best.ckpt").is_file()
        assert (fold / "metrics.csv").is_file()  # the logger follows the fold's directory
        config = yaml.safe_load((fold / ".hydra" / "config.yaml").read_text())
        assert config["cv"]["fold"] == index
        assert config["paths"]["run_dir"] == str(fold)
        assert entry["objective"] == own["objective"]["value"]
        objectives.append(own["objective"]["value"])
        accuracies.append(own["metrics"]["test/acc"])
    assert not (parent / "metrics.csv").exists()  # the parent trains nothing itself
    assert len(set(objectives)) > 1  # three validation parts, three values
    objective = record["objective"]
    assert objective["value"] == pytest.approx(statistics.fmean(objectives))
    assert objective["std"] == pytest.approx(statistics.stdev(objectives))
    assert objective["sem"] == pytest.approx(statistics.stdev(objectives) / math.sqrt(3))
    assert objective["folds"] == 3
    assert record["metrics"]["test/acc"] == pytest.approx(statistics.fmean(accuracies))
    assert record["cv"]["std"]["test/acc"] == pytest.approx(statistics.stdev(accuracies))
    assert "K-fold run completed: val/acc=" in result.stdout + result.stderr
    # `lightning-args runs`: the k-fold run is one row, its folds behind it (--folds lists them).
    (row,) = json.loads(cli("runs", "--format", "json", cwd=tmp_path).stdout)
    assert row["run"] == f"outputs/runs/{parent.name}"
    assert (row["objective"], row["folds"]) == (objective["value"], 3)
    assert row["objective_std"] == pytest.approx(objective["std"])
    rows = json.loads(cli("runs", "--folds", "--format", "json", cwd=tmp_path).stdout)
    assert len(rows) == 4
    assert all("model=mlp" in r["choices"].split() for r in rows)  # the folds' are the parent's
    shown = cli("show", str(parent), cwd=tmp_path).stdout
    assert "# folds (a k-fold run" in shown
    for index, value in enumerate(objectives):
        assert f"folds/{index}  completed  {value:.6g}" in shown
    assert f"val/acc: {objective['value']:.6g} +- {objective['std']:.4g}" in shown
    # `plot`: the folds' curves and their mean; a metric the folds never logged names the file.
    assert cli("plot", str(parent), "--out", str(tmp_path / "p.png"), cwd=tmp_path).returncode == 0
    assert (tmp_path / "p.png").stat().st_size > 0
    missing = cli("plot", str(parent), "--metric", "val/nope", cwd=tmp_path)
    assert f"logged no 'val/nope' in {parent / 'folds' / '0' / 'metrics.csv'}" in missing.stderr
    _check_the_ensemble(parent)


def _check_the_ensemble(parent: Path) -> None:
    """``load_run`` of a k-fold run: its folds' models as one, whose outputs are their mean."""
    import torch

    from lightning_args import CheckpointError, FoldEnsemble, load_run

    run = load_run(parent)
    assert isinstance(run.module, FoldEnsemble)
    assert [f.checkpoint.parent.parent.name for f in run.folds] == ["0", "1", "2"]
    run.datamodule.setup("test")
    batch = next(iter(run.datamodule.test_dataloader()))
    folds = [load_run(parent, fold=k).module for k in range(3)]
    with torch.no_grad():
        logits = torch.stack([m(batch)["logits"] for m in folds])
        assert torch.equal(run.module(batch)["logits"], logits.mean(0))
        assert not torch.equal(logits[0], logits[1])  # three models, not one loaded thrice
    with pytest.raises(CheckpointError, match=r"no folds/7 .* expected one of \[0, 1, 2\]"):
        load_run(parent, fold=7)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("overrides", "said", "folds_made"),
    [
        (("cv.folds=1",), "cv.folds=1: expected at least 2 folds", False),
        (("cv.stratify=label", "cv.groups=label"), "not supported", False),
        (("cv.stratify=labl",), "cv.stratify='labl': the DataModule's fold_samples()", True),
        (("cv.folds=5000",), "cv.folds=5000 is more than the 1438 samples", True),
    ],
    ids=[
        "one-fold",
        "stratified-and-grouped",
        "unknown-key",
        "more-folds-than-samples",
    ],
)
def test_bad_cv_settings_are_one_message_before_anything_trains(
    tmp_path: Path, overrides: tuple[str, ...], said: str, folds_made: bool
) -> None:
    result = run_app("+cv=kfold", *overrides, "trainer=debug", cwd=tmp_path)
    assert result.returncode == 1
    assert said in result.stderr
    assert "Traceback" not in result.stderr
    (parent,) = run_dirs(tmp_path)
    assert read_record(parent)["status"] == "failed"
    folds = parent / "folds"
    assert folds.exists() == folds_made  # settings that need no data are checked first
    assert not list(folds.rglob("*.ckpt"))  # nothing trained


def _pids(parent: Path) -> tuple[int, dict[str, int]]:
    """The pid of the process that wrote the k-fold run's record, and each fold's and refit's."""
    parts = [*sorted(parent.glob("folds/*")), parent / "refit"]
    return read_record(parent)["pid"], {p.name: read_record(p)["pid"] for p in parts}


@pytest.mark.slow
def test_parallel_folds_train_in_worker_processes_and_end_as_one_after_another(
    tmp_path: Path,
) -> None:
    """``cv.parallel=true``: the folds and the refit train at once, in joblib's worker processes
    (``hydra.launcher.n_jobs`` of them), and end with the values of the same run trained one
    after another. The control: without it, every fold trains in the k-fold run's own process."""
    args = ("+cv=kfold", "cv.folds=3", "cv.refit=true", "trainer.max_epochs=2")
    args += ("trainer.enable_progress_bar=false",)
    runs = {}
    for name, extra in (
        ("one-by-one", ()),
        ("parallel", ("cv.parallel=true", "launcher=joblib", "hydra.launcher.n_jobs=2")),
    ):
        result = run_app(*args, *extra, f"hydra.run.dir={tmp_path / name}", cwd=tmp_path)
        assert result.returncode == 0, result.stderr[-3000:]
        runs[name] = read_record(tmp_path / name)
        assert runs[name]["status"] == "completed"

    parent, parts = _pids(tmp_path / "one-by-one")
    assert set(parts.values()) == {parent}  # the control: one process trained everything
    parent, parts = _pids(tmp_path / "parallel")
    assert parent not in parts.values()
    assert len(set(parts.values())) == 2  # hydra.launcher.n_jobs=2 workers shared 4 jobs
    log = (tmp_path / "parallel" / "train.log").read_text()
    assert "Training folds 0, 1, 2, the refit at once, in 2 worker processes" in log
    for part in ("folds/0", "folds/1", "folds/2", "refit"):
        own = (tmp_path / "parallel" / part / "train.log").read_text()
        assert "Params" in own  # Lightning's model summary: the worker's output, in its log
        assert "could not find the monitored key" not in own  # the refit validates on nothing
    one, parallel = runs["one-by-one"], runs["parallel"]
    for got, want in zip(parallel["cv"]["folds"], one["cv"]["folds"], strict=True):
        assert got["objective"] == pytest.approx(want["objective"], abs=1e-3)
    assert parallel["objective"]["value"] == pytest.approx(one["objective"]["value"], abs=1e-3)

    refit = parallel["cv"]["refit"]
    assert (refit["run"], refit["status"]) == ("refit", "completed")
    own = read_record(tmp_path / "parallel" / "refit")
    assert own["objective"]["value"] is None  # nothing validated: no objective is claimed
    assert own["checkpoints"]["best"] == own["checkpoints"]["last"] == "checkpoints/last.ckpt"
    assert refit["metrics"]["test/acc"] == own["metrics"]["test/acc"] > 0.5
    assert not any(name.startswith("val/") for name in own["metrics"])
    assert refit["metrics"]["test/acc"] == pytest.approx(
        one["cv"]["refit"]["metrics"]["test/acc"], abs=1e-3
    )
    shown = cli("show", str(tmp_path / "parallel"), cwd=tmp_path).stdout
    assert f"refit  completed  test/acc={own['metrics']['test/acc']:.6g}" in shown
    rows = json.loads(cli("runs", str(tmp_path), "--format", "json", cwd=tmp_path).stdout)
    assert len(rows) == 2  # the two k-fold runs; --folds lists their folds and refits too
    rows = json.loads(cli("runs", str(tmp_path), "--folds", "--format", "json").stdout)
    assert len(rows) == 10
    changes = cli("diff", str(tmp_path / "one-by-one"), str(tmp_path / "parallel")).stdout
    assert "cv.parallel: false -> true" in changes
    assert "val/acc: " in changes
    assert "(3 folds): within noise (gap " in changes


@pytest.mark.slow
def test_a_failed_parallel_fold_is_named_and_the_others_train_to_their_end(
    tmp_path: Path,
) -> None:
    from lightning_args.run.fold_jobs import FoldJob, FoldResult, train_in_parallel
    from tests.fold_train import fail_on_fold_one

    jobs = [
        FoldJob(
            OmegaConf.create(
                {"cv": {"fold": k}, "paths": {"run_dir": str(tmp_path / f"folds/{k}")}}
            ),
            fail_on_fold_one,
            "train.log",
        )
        for k in range(3)
    ]
    ended: list[FoldResult] = []
    with pytest.raises(JobError) as raised:
        train_in_parallel(jobs, tmp_path, ended.append)
    assert str(raised.value).startswith(
        "1 of 3 jobs failed: fold 1: optimizer.lr=-1: expected a positive learning rate (its "
        "log: folds/1/train.log). The others are kept."
    )
    assert sorted((r.fold, r.value) for r in ended) == [(0, 0.0), (1, None), (2, 2.0)]
    assert "fold 2 trains" in (tmp_path / "folds" / "2" / "train.log").read_text()


def _folds_by_lr(sweep: Path) -> dict[float, list[tuple[str, int]]]:
    """Each trial's (state, folds reported), by its learning rate, in the trials' order."""
    out: dict[float, list[tuple[str, int]]] = {}
    for trial in trials(sweep):
        lr = float(trial.params["optimizer.lr"])
        out.setdefault(lr, []).append((trial.state.name, len(trial.intermediate_values)))
    return out


@pytest.mark.slow
@pytest.mark.parametrize(
    "pruner",
    [
        ("hydra/sweeper/pruner=median", "hydra.sweeper.pruner.n_warmup_steps=0",
         "hydra.sweeper.pruner.n_startup_trials=1",
         "cv.parallel=true"),  # a trial's folds still train one by one, in the trial's job
        ("hydra/sweeper/pruner=wilcoxon", "hydra.sweeper.pruner.p_threshold=0.3"),
        ("hydra/sweeper/pruner=none",),
    ],
    ids=["median", "wilcoxon", "control-no-pruner"],
)  # fmt: skip
def test_a_kfold_sweep_prunes_hopeless_trials_between_folds(
    tmp_path: Path, pruner: tuple[str, ...]
) -> None:
    """A trial is a k-fold run: each fold's score is a step for the pruner, and a hopeless
    learning rate is stopped after fewer folds than a good one runs."""
    result = run_app(
        "+cv=kfold",
        "cv.folds=3",
        "+sweep=optuna",
        "-m",
        *pruner,
        "hydra.sweeper.n_trials=8",
        "hydra/sweeper/sampler=random",
        "optimizer.lr=choice(0.01,0.000001)",
        "trainer.max_epochs=2",
        f"paths.output_root={tmp_path}",
        cwd=tmp_path,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (sweep,) = (tmp_path / "sweeps").iterdir()
    if "cv.parallel=true" in pruner:
        for trial in {p.parents[2] for p in tmp_path.rglob("folds/0/run.json")}:
            parent = read_record(trial)["pid"]
            assert {read_record(f)["pid"] for f in trial.glob("folds/*")} == {parent}
    by_lr = _folds_by_lr(sweep)
    good, hopeless = by_lr[0.01], by_lr[0.000001]
    assert len(hopeless) >= 2, by_lr
    assert ("COMPLETE", 3) in good, by_lr  # a good trial runs every fold
    if pruner[0].endswith("none"):
        assert all(trial == ("COMPLETE", 3) for trials in by_lr.values() for trial in trials)
        return
    # Every hopeless trial is stopped early (the first of the study has nothing to lose to),
    # and on average after fewer folds than the good trials run (a good trial worse than the
    # best may be stopped too: that is the pruner's job).
    first = float(min(trials(sweep), key=lambda t: t.number).params["optimizer.lr"])
    stopped = hopeless[1:] if first == 0.000001 else hopeless
    assert all(state == "PRUNED" and folds < 3 for state, folds in stopped), by_lr
    mean = statistics.fmean
    assert mean(f for _, f in hopeless) < mean(f for _, f in good), by_lr
    assert " pruned after fold " in result.stdout + result.stderr
    best = summary(sweep)["best"]
    assert best["folds"]["n"] == 3  # its folds' spread, in summary.yaml
    assert best["folds"]["mean"] == pytest.approx(best["value"])


@pytest.mark.slow
def test_a_killed_kfold_run_resumes_keeping_its_finished_folds(tmp_path: Path) -> None:
    """SIGKILL while fold 1 trains; ``lightning-args resume PARENT`` keeps fold 0 as it was,
    continues fold 1 from its last.ckpt, trains fold 2, and ends as an uninterrupted run."""
    import signal
    import subprocess
    import time

    from tests.helpers import REPO, start_app, tree_digest

    args = ("+cv=kfold", "cv.folds=3", "trainer.max_epochs=12", "trainer.enable_progress_bar=false")
    full = run_app(*args, f"hydra.run.dir={tmp_path / 'full'}", cwd=tmp_path)
    assert full.returncode == 0, full.stderr[-3000:]
    expected = read_record(tmp_path / "full")

    run = tmp_path / "killed"
    proc = start_app(
        *args,
        f"hydra.run.dir={run}",
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        nice=10,  # below this test's polling, which must see fold 1's saves in time
    )
    last = run / "folds" / "1" / "checkpoints" / "last.ckpt"
    seen: set[int] = set()
    deadline = time.time() + 240
    while len(seen) < 3 and time.time() < deadline and proc.poll() is None:
        if last.exists():
            seen.add(last.stat().st_mtime_ns)
        time.sleep(0.005)
    assert proc.poll() is None, "the k-fold run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=120)
    assert read_record(run)["status"] == "running"  # what a SIGKILL leaves
    assert read_record(run / "folds" / "1")["status"] == "running"
    assert not (run / "folds" / "2").exists()
    fold0 = tree_digest(run / "folds" / "0")

    resumed = cli("resume", str(run), cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    record = read_record(run)
    assert record["status"] == "completed"
    assert tree_digest(run / "folds" / "0") == fold0  # the finished fold, untouched
    (history,) = read_record(run / "folds" / "1")["resumes"]
    assert history["checkpoint"] == "checkpoints/last.ckpt"
    assert record["resumes"]  # the parent says it was continued
    for got, want in zip(record["cv"]["folds"], expected["cv"]["folds"], strict=True):
        assert (got["status"], got["metrics"]) == (want["status"], want["metrics"])  # exact
    assert record["cv"]["mean"] == expected["cv"]["mean"]
    assert record["objective"] == expected["objective"]


@pytest.mark.parametrize(
    ("runner_up", "verdict"),
    [([0.80, 0.88, 0.84], "within noise"), ([0.70, 0.71, 0.69], "beyond noise")],
    ids=["close", "far"],
)
def test_a_kfold_sweeps_summary_gives_the_spread_of_the_best_and_the_runner_up(
    runner_up: list[float], verdict: str
) -> None:
    """Whether the winner is within noise of the runner-up: their folds' means against their
    combined standard error."""
    import optuna
    from optuna.distributions import FloatDistribution

    from lightning_args.sweep import report
    from lightning_args.sweep.attrs import STEP_UNIT

    study = optuna.create_study(direction="maximize")
    for folds in ([0.84, 0.85, 0.86], runner_up):
        study.add_trial(
            optuna.trial.create_trial(
                value=statistics.fmean(folds),
                params={"x": 0.5},
                distributions={"x": FloatDistribution(0, 1)},
                intermediate_values=dict(enumerate(folds)),
                user_attrs={STEP_UNIT: "fold"},
            )
        )
    summary = report.summarize(study)
    assert summary["best"]["folds"]["n"] == 3
    assert summary["best"]["folds"]["std"] == pytest.approx(statistics.stdev([0.84, 0.85, 0.86]))
    assert summary["runner_up"]["number"] == 1
    lines = report.describe(summary)
    assert "Best: trial 0, value 0.85 +- 0.01 (std over 3 folds)" in lines
    assert f"Runner-up: trial 1, value {statistics.fmean(runner_up):.6g}" in lines
    assert verdict in lines


def test_resuming_a_kfold_run_judges_its_folds_config_before_anything_is_built(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A k-fold run directory from a stranger: its first fold's config names a target that
    runs a shell command; ``resume`` refuses it by name and nothing runs. (By hand, with the
    trust check removed, the same directory gets past its config to reading the checkpoint.)"""
    from lightning_args.cli import main

    run = tmp_path / "kfold"
    fold = run / "folds" / "0"
    (fold / ".hydra").mkdir(parents=True)
    (fold / "checkpoints").mkdir()
    (fold / "checkpoints" / "last.ckpt").write_bytes(b"not read before the config is judged")
    (run / "run.json").write_text(
        json.dumps({"id": "kfold", "status": "interrupted", "cv": {"folds": []}})
    )
    pwned = tmp_path / "pwned"
    (fold / ".hydra" / "config.yaml").write_text(
        yaml.safe_dump(
            {
                "model": {"_target_": "os.system", "command": f"touch {pwned}"},
                "paths": {"run_dir": str(fold)},
                "cv": {"folds": 2, "fold": 0},
            }
        )
    )
    assert main(["resume", str(run)]) == 2
    err = capsys.readouterr().err
    assert "os.system" in err
    assert not pwned.exists()
