"""#16, forked runs: ``lightning-args fork RUN key=value`` goes on from RUN's checkpoint in a new
run directory with some hyperparameters changed, and records where it came from."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch

from lightning_args import LightningArgsError, UntrustedTargetError, fork, reproduce
from tests.helpers import cli, read_record, train_in_process

# One worker runs them all: the parent is trained once.
pytestmark = pytest.mark.xdist_group("fork")

LAST = Path("checkpoints") / "last.ckpt"
START = Path("checkpoints") / "fork.ckpt"
CHECKPOINT_CALLBACK = "BestAndLastCheckpoint"


@pytest.fixture(scope="module")
def parent(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished run of 2 epochs under a cosine schedule far from its end (lr well above 0)."""
    run = tmp_path_factory.mktemp("fork") / "parent"
    return train_in_process(
        run, "trainer.max_epochs=2", "scheduler.T_max=1000", "trainer.enable_progress_bar=false"
    )


def _load(path: Path) -> dict[str, Any]:
    return torch.load(path, weights_only=True)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _without(mapping: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in mapping.items() if k not in keys}


@pytest.mark.slow
def test_a_fork_changes_the_learning_rate_in_the_restored_optimizer_and_nothing_else(
    parent: Path, tmp_path: Path
) -> None:
    forked = fork(parent, ["optimizer.lr=0.01", "trainer.max_epochs=3"], out_dir=tmp_path / "fork")
    before, after = _load(parent / LAST), _load(forked.run_dir / START)

    # The optimizer: the learning rate is the schedule's base, scaled where it is now (x10).
    (old,), (new,) = (
        before["optimizer_states"][0]["param_groups"],
        after["optimizer_states"][0]["param_groups"],
    )
    assert old["lr"] > 0
    assert new["lr"] == pytest.approx(old["lr"] * 10)
    assert (old["initial_lr"], new["initial_lr"]) == (pytest.approx(0.001), pytest.approx(0.01))
    assert _same(_without(new, "lr", "initial_lr"), _without(old, "lr", "initial_lr"))
    assert _same(after["optimizer_states"][0]["state"], before["optimizer_states"][0]["state"])
    (was,), (now,) = before["lr_schedulers"], after["lr_schedulers"]
    assert now["base_lrs"] == [pytest.approx(0.01)]
    assert now["_last_lr"] == [pytest.approx(was["_last_lr"][0] * 10)]
    assert _same(_without(now, "base_lrs", "_last_lr"), _without(was, "base_lrs", "_last_lr"))
    # Nothing else: weights, loops, random generators, epoch and step are the parent's.
    for key in before.keys() - {"optimizer_states", "lr_schedulers", "callbacks", "lightning_args"}:
        assert _same(after[key], before[key]), key
    # The parent's checkpoint callback state points at its own files: the fork tracks its own.
    kept = {k for k in before["callbacks"] if not k.startswith(CHECKPOINT_CALLBACK)}
    assert set(after["callbacks"]) == kept
    config = after["lightning_args"]["config"]
    assert (config["optimizer"]["lr"], config["trainer"]["max_epochs"]) == (0.01, 3)
    assert config["paths"]["run_dir"] == str(forked.run_dir)

    # The lineage, in run.json and in `lightning-args runs`.
    record = read_record(forked.run_dir)
    assert record["status"] == "completed"
    assert record["fork"] == {
        "parent": str(parent),
        "run": "parent",
        "checkpoint": "last.ckpt",
        "epoch": before["epoch"],
        "step": before["global_step"],
        "changes": {"optimizer.lr": 0.01, "trainer.max_epochs": 3},
    }
    rows = json.loads(cli("runs", str(tmp_path), "--format", "json").stdout)
    assert [(r["forked_from"], r["overrides"]) for r in rows] == [
        (f"parent@{before['global_step']}", "optimizer.lr=0.01 trainer.max_epochs=3")
    ]

    # The change took effect in training: against a fork that changes only the length, the
    # fork's learning rate is 10x at its last step (cosine, eta_min 0: the schedule scales).
    control = fork(parent, ["trainer.max_epochs=3"], out_dir=tmp_path / "control").run_dir
    lr = [_load(run / LAST)["optimizer_states"][0]["param_groups"][0]["lr"] for run in (
        forked.run_dir, control)]  # fmt: skip
    assert lr[0] == pytest.approx(lr[1] * 10)
    assert _load(control / LAST)["global_step"] == _load(forked.run_dir / LAST)["global_step"]
    # A fork reproduces from the checkpoint it started from (its parent may be gone).
    again = reproduce(control, tmp_path / "again")
    assert again.identical, again.differences

    # A fork of the fork: `runs --tree` puts each under the run it came from.
    fork(forked.run_dir, ["trainer.max_epochs=4"], out_dir=tmp_path / "grandchild")
    tree = json.loads(cli("runs", str(tmp_path), "--tree", "--format", "json").stdout)
    assert [r["run"] for r in tree] == [
        str(tmp_path / "again"), str(tmp_path / "control"), str(tmp_path / "fork"),
        "└ " + str(tmp_path / "grandchild"),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("override", "said"),
    [
        ("model.encoder.hidden=[32]", "the model is built from it"),
        ("optimizer._target_=torch.optim.SGD", "optimizer._target_ decides what is built"),
        ("optimizer.nope=1", "the restored optimizer has no 'nope'; it holds amsgrad, betas"),
        ("optimizer.lr=-1", "a learning rate is a number above 0"),
        ("scheduler.interval=epoch", "scheduler.interval decides what is built"),
        ("scheduler.nope=1", "the restored scheduler has no 'nope'; it holds T_max, base_lrs"),
        ("seed=3", "cannot change in the middle of a training"),
        ("trainer.max_epochs=2", "after epoch 2 of max_epochs=2: nothing left to train"),
    ],
)
def test_what_cannot_change_mid_training_is_refused_before_anything_is_made(
    parent: Path, tmp_path: Path, override: str, said: str
) -> None:
    with pytest.raises(LightningArgsError, match=r"^fork: |nothing left") as refused:
        fork(parent, [override], out_dir=tmp_path / "fork")
    assert said in str(refused.value)
    assert not (tmp_path / "fork").exists()


@pytest.mark.slow
def test_the_cli_refuses_an_architecture_change_in_one_message(
    parent: Path, tmp_path: Path
) -> None:
    result = cli("fork", str(parent), "model.encoder.hidden=[32]", "--out", str(tmp_path / "f"))
    assert result.returncode == 2
    assert result.stderr.startswith("lightning-args: fork: model.encoder.hidden=[32] cannot")
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "f").exists()


def test_the_batch_size_changes_only_at_an_epochs_end(parent: Path, tmp_path: Path) -> None:
    run = shutil.copytree(parent, tmp_path / "run")
    state = _load(run / LAST)
    state["loops"]["fit_loop"]["epoch_loop.batch_progress"]["is_last_batch"] = False
    torch.save(state, run / "checkpoints" / "mid.ckpt")  # what a requeue saves mid-epoch
    with pytest.raises(LightningArgsError, match="the checkpoint is mid-epoch"):
        fork(run, ["data.batch_size=32", "trainer.max_epochs=3"], "mid", tmp_path / "fork")
    assert not (tmp_path / "fork").exists()


def test_a_fork_judges_the_checkpoints_config_before_anything_runs(
    parent: Path, tmp_path: Path
) -> None:
    """A stranger's run whose checkpoint config builds ``os.system``: refused by name."""
    run = shutil.copytree(parent, tmp_path / "run")
    state = _load(run / LAST)
    pwned = tmp_path / "pwned"
    state["lightning_args"]["config"]["model"] = {
        "_target_": "os.system",
        "command": f"touch {pwned}",
    }
    torch.save(state, run / LAST)
    with pytest.raises(UntrustedTargetError, match=r"os\.system"):
        fork(run, ["trainer.max_epochs=3"], out_dir=tmp_path / "fork")
    assert not pwned.exists()
    assert not (tmp_path / "fork").exists()
    # The app's own fork.parent (what a PBT interval's job runs) judges it too.
    with pytest.raises(UntrustedTargetError, match=r"os\.system"):
        train_in_process(
            tmp_path / "app", f"fork.parent={run}", "trainer.max_epochs=3",
            "scheduler.T_max=1000", "trainer.enable_progress_bar=false",
        )  # fmt: skip
    assert not pwned.exists()
    assert not (tmp_path / "app" / START).exists()


def test_the_app_forks_from_its_own_configs_with_fork_parent(parent: Path, tmp_path: Path) -> None:
    """``python train.py fork.parent=<run> optimizer.lr=0.01 ...`` (what a PBT interval's job
    runs): the changes are the keys whose value differs from the parent's."""
    same = ("scheduler.T_max=1000", "trainer.enable_progress_bar=false")
    run = train_in_process(
        tmp_path / "app", f"fork.parent={parent}", "optimizer.lr=0.01", "trainer.max_epochs=3",
        f"paths.output_root={tmp_path}",  # where it writes (its data cache too) is no change
        *same,
    )  # fmt: skip
    assert read_record(run)["fork"]["changes"] == {"optimizer.lr": 0.01, "trainer.max_epochs": 3}
    (group,) = _load(run / START)["optimizer_states"][0]["param_groups"]
    assert group["initial_lr"] == pytest.approx(0.01)
    with pytest.raises(LightningArgsError, match=r"model\.encoder\.hidden=\[32\] cannot change"):
        train_in_process(
            tmp_path / "refused", f"fork.parent={parent}", "model.encoder.hidden=[32]",
            "trainer.max_epochs=3", *same,
        )  # fmt: skip
    assert not (tmp_path / "refused" / START).exists()


@pytest.mark.slow
def test_a_named_optimizer_is_forked_alone(tmp_path: Path) -> None:
    """The GAN's two optimizers: ``optimizers.generator.optimizer.lr`` changes the generator's
    (the second, in config order) and leaves the discriminator's as it was."""
    gan = ("model=gan", "trainer.max_epochs=1", "trainer.enable_progress_bar=false")
    parent = train_in_process(tmp_path / "gan", *gan)
    run = train_in_process(
        tmp_path / "fork", *gan[:1], "trainer.max_epochs=2", *gan[2:], f"fork.parent={parent}",
        "optimizers.generator.optimizer.lr=0.004",
    )  # fmt: skip
    before = _load(parent / LAST)["optimizer_states"]
    after = _load(run / START)["optimizer_states"]
    (discriminator,), (generator,) = (state["param_groups"] for state in after)
    assert generator["lr"] == pytest.approx(0.004)
    assert _same(discriminator, before[0]["param_groups"][0])
    assert _same(_without(generator, "lr"), _without(before[1]["param_groups"][0], "lr"))
    assert read_record(run)["fork"]["changes"] == {
        "optimizers.generator.optimizer.lr": 0.004, "trainer.max_epochs": 2
    }  # fmt: skip
