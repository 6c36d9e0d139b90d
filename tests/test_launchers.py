"""``launcher=local|joblib|submitit_local|slurm``: the app's launcher group picks Hydra's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

import lightning_args
from tests.helpers import CONF, REPO, run_app

LAUNCHERS = [
    ("local", "hydra._internal.core_plugins.basic_launcher.BasicLauncher"),
    ("joblib", "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"),
    ("submitit_local", "hydra_plugins.hydra_submitit_launcher.submitit_launcher.LocalLauncher"),
    ("slurm", "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"),
]


@pytest.mark.parametrize(("option", "target"), LAUNCHERS, ids=[o for o, _ in LAUNCHERS])
def test_launcher_option_selects_hydras_launcher(option: str, target: str) -> None:
    lightning_args.register()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=[f"launcher={option}"], return_hydra_config=True)
    assert cfg.hydra.launcher._target_ == target
    assert "launcher" not in cfg  # only Hydra's node changes, not the job's config


def test_slurm_launcher_keeps_preemption_settings() -> None:
    lightning_args.register()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=["launcher=slurm"], return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert (launcher.signal_delay_s, launcher.max_num_timeout) == (120, 3)
    assert launcher.tasks_per_node == 1


@pytest.mark.slow
def test_a_multirun_through_submitit_local_trains_each_model(tmp_path: Path) -> None:
    result = run_app(
        "-m",
        "launcher=submitit_local",
        "model=mlp,cnn",
        "trainer=debug",
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
        cwd=REPO,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for job in ("0", "1"):
        assert (tmp_path / "sweep" / job / "run.json").is_file()
    assert list((tmp_path / "sweep" / ".submitit").iterdir())


GPU_APP = """
import json, os, time
import hydra

@hydra.main(config_path=None, version_base="1.3")
def main(cfg):
    start = time.time()
    # Each worker's first job waits for the other worker's first one (at most 60 s), so that
    # the two run at the same time however late a worker starts: no race with a sleep.
    started = os.environ["RUN_LOG"] + ".pids"
    os.makedirs(started, exist_ok=True)
    mine = os.path.join(started, str(os.getpid()))
    if not os.path.exists(mine):
        open(mine, "w").close()
        while len(os.listdir(started)) < 2 and time.time() < start + 60:
            time.sleep(0.02)
    time.sleep(0.4)
    line = {"i": cfg.i, "pid": os.getpid(), "start": start, "end": time.time(),
            "visible": os.environ.get("CUDA_VISIBLE_DEVICES")}
    with open(os.environ["RUN_LOG"], "a") as log:
        log.write(json.dumps(line) + "\\n")

if __name__ == "__main__":
    main()
"""


def test_gpus_launcher_composes_one_device_per_worker() -> None:
    lightning_args.register()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(
            "config",
            overrides=["launcher=gpus", "hydra.launcher.n_jobs=4"],
            return_hydra_config=True,
        )
    callback = cfg.hydra.callbacks.one_device_per_job
    assert callback._target_ == "lightning_args.callbacks.devices.OneDevicePerJob"
    assert callback.devices == 4


@pytest.mark.slow
@pytest.mark.parametrize(("visible", "devices"), [(None, {"0", "1"}), ("5,7,9", {"5", "7"})])
def test_each_gpu_job_sees_only_its_own_device(
    tmp_path: Path, visible: str | None, devices: set[str]
) -> None:
    (tmp_path / "app.py").write_text(GPU_APP)
    env = {"RUN_LOG": str(tmp_path / "runs.jsonl")}
    if visible is not None:
        env["CUDA_VISIBLE_DEVICES"] = visible
    result = run_app(
        "-m",
        "+i=range(0,8)",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        "+hydra.callbacks.gpus._target_=lightning_args.callbacks.devices.OneDevicePerJob",
        "+hydra.callbacks.gpus.devices=2",
        f"+hydra.callbacks.gpus.lock_dir={tmp_path / 'locks'}",
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
        cwd=tmp_path,
        script=tmp_path / "app.py",
        env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = [json.loads(line) for line in (tmp_path / "runs.jsonl").read_text().splitlines()]
    assert len(jobs) == 8
    assert {j["visible"] for j in jobs} == devices  # one device each, both used
    by_pid: dict[int, set[str]] = {}
    for job in jobs:
        by_pid.setdefault(job["pid"], set()).add(job["visible"])
    assert all(len(seen) == 1 for seen in by_pid.values())  # a worker keeps its device
    overlapping = [
        (a, b)
        for a in jobs
        for b in jobs
        if a is not b and a["start"] < b["end"] and b["start"] < a["end"]
    ]
    assert overlapping  # the two workers did run at the same time
    for a, b in overlapping:  # and jobs running at the same time never share a device
        assert a["visible"] != b["visible"]
