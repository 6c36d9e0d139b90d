"""``hydra.sweeper.warm_start``: earlier runs become completed trials of a new study, those that
do not fit its space or config are skipped with their reason, and the sampler starts from them."""

from __future__ import annotations

from pathlib import Path

import pytest

from lightning_args.sweep.attrs import WARM_START
from tests.helpers import REPO, run_app
from tests.test_sweep_app import summary, trials

pytestmark = pytest.mark.slow

SPACE = (
    "+sweep=optuna",
    "-m",
    "hydra.sweeper.search_space_group=null",
    "optimizer.lr=tag(log,interval(1e-3,1e-2))",
    "hydra/sweeper/pruner=none",
)
QUICK = ("trainer.max_epochs=1", "test=false")


def sweep(root: Path, name: str, *args: str) -> Path:
    directory = root / name
    result = run_app(
        *SPACE,
        *QUICK,
        *args,
        f"paths.output_root={root}",
        f"hydra.sweep.dir={directory}",
        f"hydra.sweeper.study_name={name}",
        cwd=REPO,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return directory


def train(root: Path, *args: str) -> None:
    result = run_app(*QUICK, *args, f"paths.output_root={root}", cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]


def test_earlier_runs_start_the_study_and_those_that_do_not_fit_are_skipped(
    tmp_path: Path,
) -> None:
    old = sweep(tmp_path, "old", "hydra/sweeper/sampler=random", "hydra.sweeper.n_trials=4")
    train(tmp_path, "optimizer.lr=0.5")  # outside the space
    train(tmp_path, "optimizer.lr=0.003", "data.batch_size=32")  # another config
    earlier = {t.value for t in trials(old)}

    warm = (
        f"hydra.sweeper.warm_start=[{old},{tmp_path / 'runs'}]",
        "hydra/sweeper/sampler=tpe",
        "hydra.sweeper.sampler.n_startup_trials=3",
    )
    new = sweep(tmp_path, "new", *warm, "hydra.sweeper.n_trials=6")
    s = summary(new)
    assert s["warm_start"] == {
        "used": 4,
        "skipped": {"config differs (data.batch_size)": 1, "outside the space (optimizer.lr)": 1},
    }
    done = trials(new)
    assert [t.state.name for t in done] == ["COMPLETE"] * 6  # the earlier runs count
    assert {t.value for t in done[:4]} == earlier
    assert all(WARM_START in t.user_attrs for t in done[:4])
    assert not any(WARM_START in t.user_attrs for t in done[4:])

    # The control: the same warm start, but TPE still in its random start-up phase (it needs
    # 100 trials first). Its first new trial draws from the same stream, so the values differ
    # only because the warm-started TPE above modelled the 4 earlier runs.
    control = sweep(
        tmp_path,
        "control",
        *warm[:2],
        "hydra.sweeper.sampler.n_startup_trials=100",
        "hydra.sweeper.n_trials=5",
    )
    (random_first,) = [t for t in trials(control) if WARM_START not in t.user_attrs]
    assert random_first.params["optimizer.lr"] != done[4].params["optimizer.lr"]

    # The same command again, also warm-starting from its own folder: nothing is added twice,
    # and its own trials are not taken for earlier runs.
    rewarm = (f"hydra.sweeper.warm_start=[{old},{tmp_path / 'runs'},{new}]", *warm[1:])
    again = sweep(tmp_path, "new", *rewarm, "hydra.sweeper.n_trials=6")
    assert sum(WARM_START in t.user_attrs for t in trials(again)) == 4
