"""``launcher=gpus``: k trials per GPU, each job seeing only its own device, checked on CPU over
fake device lists (what each job sees in ``CUDA_VISIBLE_DEVICES``, and who runs at once)."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

import lightning_args
from hydra_plugins.lightning_args_gpus import _auto
from hydra_plugins.lightning_args_gpus._impl import packing
from hydra_plugins.lightning_args_gpus.config import PACKING_KEYS
from hydra_plugins.lightning_args_optuna._settings import launcher_parallelism
from lightning_args.errors import ConfigValueError
from lightning_args.sweep.pacing import Gate, admission
from tests.helpers import CONF, REPO, run_app, run_python

GIB = 2**30

#: A job that logs what it saw. With BARRIER=n, each worker's first job (of those numbered from
#: BARRIER_FROM on) waits, at most 60 s, until n workers have started one: so that all of them
#: run at once however late each starts.
APP = """
import json, os, time
import hydra

@hydra.main(config_path=None, version_base="1.3")
def main(cfg):
    start = time.time()
    started = os.environ["RUN_LOG"] + ".pids"
    os.makedirs(started, exist_ok=True)
    mine = os.path.join(started, str(os.getpid()))
    if cfg.i >= int(os.environ.get("BARRIER_FROM", 0)) and not os.path.exists(mine):
        open(mine, "w").close()
        while len(os.listdir(started)) < int(os.environ["BARRIER"]) and time.time() < start + 60:
            time.sleep(0.02)
    time.sleep(0.4)
    line = {"i": cfg.i, "pid": os.getpid(), "start": start, "end": time.time(),
            "visible": os.environ.get("CUDA_VISIBLE_DEVICES")}
    with open(os.environ["RUN_LOG"], "a") as log:
        log.write(json.dumps(line) + "\\n")

if __name__ == "__main__":
    main()
"""


def _jobs(
    tmp_path: Path, *overrides: str, barrier: int, visible: str | None, barrier_from: int = 0
) -> tuple[list[Any], str]:
    """The jobs of a 12-job multirun of :data:`APP`, as each logged itself, and the sweep's
    console output."""
    (tmp_path / "app.py").write_text(APP)
    env = {
        "RUN_LOG": str(tmp_path / "runs.jsonl"),
        "BARRIER": str(barrier),
        "BARRIER_FROM": str(barrier_from),
    }
    if visible is not None:
        env["CUDA_VISIBLE_DEVICES"] = visible
    result = run_app(
        "-m",
        "+i=range(0,12)",
        *overrides,
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
        cwd=tmp_path,
        script=tmp_path / "app.py",
        env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = [json.loads(line) for line in (tmp_path / "runs.jsonl").read_text().splitlines()]
    assert sorted(j["i"] for j in jobs) == list(range(12))
    return jobs, result.stdout + result.stderr


def _most_at_once(jobs: list[Any]) -> dict[str, int]:
    """For each device, the most jobs that ran on it at the same moment."""
    most: dict[str, int] = {}
    for job in jobs:  # the moments a job starts are where the count can peak
        at = job["start"]
        running = [j for j in jobs if j["start"] <= at < j["end"]]
        for device in {j["visible"] for j in running}:
            count = sum(j["visible"] == device for j in running)
            most[device] = max(most.get(device, 0), count)
    return most


def check_packed(jobs: list[Any], devices: set[str], per_device: int) -> None:
    """Each job saw one of ``devices``, all were used, a worker kept its device, and no device
    ever ran more than ``per_device`` jobs at once (but did run that many: they were packed)."""
    assert {j["visible"] for j in jobs} == devices
    by_pid: dict[int, set[str]] = {}
    for job in jobs:
        by_pid.setdefault(job["pid"], set()).add(job["visible"])
    assert all(len(seen) == 1 for seen in by_pid.values())
    assert _most_at_once(jobs) == dict.fromkeys(devices, per_device)


LAUNCHER = "hydra/launcher=lightning_args_gpus"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("visible", "overrides", "devices"),
    [
        ("3,5", [], {"3", "5"}),
        (None, ["hydra.launcher.devices=[0,1]"], {"0", "1"}),
        ("0,1,2,3", ["hydra.launcher.devices=[GPU-aa,GPU-bb]"], {"GPU-aa", "GPU-bb"}),
    ],
    ids=["visible", "listed", "listed-over-visible"],
)
def test_two_trials_per_device_each_seeing_only_its_own(
    tmp_path: Path, visible: str | None, overrides: list[str], devices: set[str]
) -> None:
    jobs, _ = _jobs(
        tmp_path,
        LAUNCHER,
        "hydra.launcher.trials_per_device=2",
        f"hydra.launcher.lock_dir={tmp_path / 'locks'}",
        *overrides,
        barrier=4,
        visible=visible,
    )
    check_packed(jobs, devices, per_device=2)
    assert len({j["pid"] for j in jobs}) == 4  # n_jobs followed: 2 devices x 2


@pytest.mark.slow
def test_control_joblibs_launcher_fails_the_packing_check(tmp_path: Path) -> None:
    """The check above can fail: four joblib workers without the GPU launcher all see both
    devices."""
    jobs, _ = _jobs(
        tmp_path, "hydra/launcher=joblib", "hydra.launcher.n_jobs=4", barrier=4, visible="3,5"
    )
    with pytest.raises(AssertionError):
        check_packed(jobs, {"3", "5"}, per_device=2)


@pytest.mark.slow
def test_auto_measures_the_first_trial_alone_then_packs(tmp_path: Path) -> None:
    """On CPU the first trial uses no GPU memory, so ``auto`` chooses one trial per device; the
    first job runs before any other starts."""
    jobs, output = _jobs(
        tmp_path,
        LAUNCHER,
        "hydra.launcher.trials_per_device=auto",
        f"hydra.launcher.lock_dir={tmp_path / 'locks'}",
        barrier=2,
        barrier_from=1,  # the first job runs alone: the rest wait for each other
        visible="3,5",
    )
    first = min(jobs, key=lambda j: j["start"])
    assert first["i"] == 0
    assert all(j["start"] >= first["end"] for j in jobs if j is not first)
    check_packed(jobs, {"3", "5"}, per_device=1)
    assert (
        "trials_per_device=auto: the first trial used no GPU memory that could be measured, "
        "so 1 trial(s) per device, 2 at once"
    ) in output


@pytest.mark.slow
def test_the_old_one_device_per_job_callback_still_shares_devices_out(tmp_path: Path) -> None:
    """Configs written before the launcher name ``OneDevicePerJob``: one device per worker."""
    callback = "+hydra.callbacks.gpus"
    jobs, _ = _jobs(
        tmp_path,
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        f"{callback}._target_=lightning_args.callbacks.devices.OneDevicePerJob",
        f"{callback}.devices=2",
        f"{callback}.lock_dir={tmp_path / 'locks'}",
        barrier=2,
        visible="5,7,9",
    )
    check_packed(jobs, {"5", "7"}, per_device=1)


HOLD = """
import json, sys, time
from lightning_args.callbacks.devices import Slots, slot
with slot(Slots(("a", "b"), 2, sys.argv[1])) as device:
    start = time.time()
    time.sleep(2)
print(json.dumps({"visible": device, "start": start, "end": time.time()}))
"""


def _holders(tmp_path: Path, lock_dirs: list[Path]) -> list[Any]:
    """Processes started at once, each holding a slot of two devices with two slots each for
    2 s: when each held which device."""
    script = tmp_path / "hold.py"
    script.write_text(HOLD)

    def one(lock_dir: Path) -> Any:
        done = run_python(str(script), str(lock_dir), cwd=REPO)
        assert done.returncode == 0, done.stderr[-2000:]
        return json.loads(done.stdout)

    with ThreadPoolExecutor(len(lock_dirs)) as pool:
        return list(pool.map(one, lock_dirs))


@pytest.mark.slow
def test_a_fifth_job_waits_for_a_slot_of_four(tmp_path: Path) -> None:
    held = _holders(tmp_path, [tmp_path / "locks"] * 5)
    assert _most_at_once(held) == {"a": 2, "b": 2}
    last = max(held, key=lambda h: h["start"])
    assert last["start"] >= min(h["end"] for h in held if h is not last)  # it waited


@pytest.mark.slow
def test_control_without_shared_locks_every_job_takes_the_same_slot(tmp_path: Path) -> None:
    """The guard is the lock files: jobs that do not share them all take slot 0 of a."""
    held = _holders(tmp_path, [tmp_path / f"locks{i}" for i in range(5)])
    assert _most_at_once(held) == {"a": 5}


def test_gpus_option_selects_our_launcher() -> None:
    lightning_args.register()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=["launcher=gpus"], return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("lightning_args_gpus_launcher.LightningArgsGpusLauncher")
    assert (launcher.trials_per_device, launcher.n_jobs) == (1, None)
    assert set(PACKING_KEYS) <= set(launcher)


def _keys(**given: Any) -> dict[str, Any]:
    keys: dict[str, Any] = {
        "trials_per_device": 1,
        "max_trials_per_device": 8,
        "devices": ["0", "1"],
        "memory_fraction": None,
        "lock_dir": None,
    }
    return {**keys, **given}


@pytest.mark.parametrize(
    ("given", "n_jobs", "message"),
    [
        ({"trials_per_device": 0}, None, "trials_per_device=0: expected an integer of at least 1"),
        ({"trials_per_device": "many"}, None, "trials_per_device='many': expected"),
        ({"trials_per_device": True}, None, "trials_per_device=True: expected"),
        ({"max_trials_per_device": 0}, None, "max_trials_per_device=0: expected"),
        ({"memory_fraction": 1.5}, None, "memory_fraction=1.5: expected a number in (0, 1]"),
        ({"memory_fraction": 0}, None, "memory_fraction=0: expected"),
        ({"devices": []}, None, "devices=[]: expected a list of distinct device ids"),
        ({"devices": ["0", "0"]}, None, "devices=['0', '0']: expected"),
        ({"devices": "0,1"}, None, "devices='0,1': expected a list"),
        ({}, 0, "n_jobs=0: expected an integer of at least 1, or null"),
        ({"trials_per_device": 2}, 5, "n_jobs=5: expected at most the 4 slots of 2 device(s)"),
    ],
)
def test_bad_packing_keys_are_one_message(given: dict[str, Any], n_jobs: Any, message: str) -> None:
    with pytest.raises(ConfigValueError) as error:
        packing(_keys(**given), n_jobs)
    assert message in str(error.value)
    assert "Fix: hydra.launcher." in str(error.value)


def test_devices_come_from_cuda_visible_devices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2, 7")
    assert packing(_keys(devices=None), None).devices == ("2", "7")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    with pytest.raises(ConfigValueError, match="launcher=gpus found no GPU"):
        packing(_keys(devices=None), None)


@pytest.mark.parametrize(
    ("measured", "k"),
    [
        (_auto.Measured(2 * GIB, 80 * GIB, 20.0), 4),  # the GPU's time decides
        (_auto.Measured(30 * GIB, 80 * GIB, 5.0), 2),  # its memory decides
        (_auto.Measured(1 * GIB, 80 * GIB, 1.0), 8),  # the ceiling decides
        (_auto.Measured(1 * GIB, 80 * GIB, 0.0), 8),  # never busy: the ceiling
        (_auto.Measured(1 * GIB, 80 * GIB, None), 8),  # no NVML: memory alone
        (_auto.Measured(70 * GIB, 80 * GIB, 10.0), 1),  # one fits, barely
        (_auto.Measured(90 * GIB, 80 * GIB, 10.0), 1),  # not even one: still one
        (_auto.Measured(2 * GIB, 80 * GIB, 100.0), 1),  # a busy GPU
        (_auto.Measured(), 1),  # nothing measured (a CPU trial)
    ],
)
def test_auto_rule(measured: _auto.Measured, k: int) -> None:
    assert _auto.per_device(measured, ceiling=8)[0] == k


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not json",
        "[1, 2]",
        '{"peak_bytes": true, "total_bytes": 8}',
        '{"peak_bytes": -1, "total_bytes": 8}',
        '{"peak_bytes": 1e300, "total_bytes": 8}',
        '{"peak_bytes": "1", "total_bytes": 8}',
        '{"peak_bytes": NaN, "total_bytes": 8}',
    ],
)
def test_a_malformed_probe_file_counts_as_not_measured(tmp_path: Path, text: str) -> None:
    path = tmp_path / "use.json"
    path.write_text(text)
    assert _auto.read(path).peak_bytes is None
    assert _auto.read(tmp_path / "missing.json") == _auto.Measured()


def test_a_probe_file_is_read_back() -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "use.json"
        path.write_text(json.dumps({"peak_bytes": GIB, "total_bytes": 8 * GIB, "utilisation": 150}))
        assert _auto.read(path) == _auto.Measured(GIB, 8 * GIB, None)  # 150 % is no utilisation


class _Paced:
    def __init__(self) -> None:
        self.gate = Gate(1)

    def jobs_at_once(self) -> int:
        return 6

    def admitted(self) -> Any:
        return self.gate.admitted()


def test_sweepers_follow_a_paced_launcher() -> None:
    config = OmegaConf.create({"n_jobs": 2})
    assert launcher_parallelism(config, in_process=False, plugin=_Paced()) == 6
    assert launcher_parallelism(config, in_process=False, plugin=object()) == 2


def test_the_gate_admits_as_many_as_its_size_even_when_it_grows() -> None:
    launcher = _Paced()
    inside, most = [0], [0]
    lock = threading.Lock()

    def work() -> None:
        with admission(launcher):
            with lock:
                inside[0] += 1
                most[0] = max(most[0], inside[0])
            time.sleep(0.05)
            with lock:
                inside[0] -= 1

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    time.sleep(0.02)
    assert most[0] == 1  # size 1: one at a time
    launcher.gate.resize(3)
    for thread in threads:
        thread.join()
    assert most[0] == 3


@pytest.mark.slow
def test_an_optuna_sweep_asks_nothing_while_auto_measures_its_first_trial(
    tmp_path: Path,
) -> None:
    """``+sweep=optuna launcher=gpus trials_per_device=auto``: the sweeper starts as many trial
    loops as the launcher's ceiling allows, but the launcher admits one trial until the first
    has been measured; no other trial is asked (started, in the study) before it ends."""
    from tests.test_sweep_app import sweep_dir, trials

    result = run_app(
        "+sweep=optuna",
        "-m",
        "launcher=gpus",
        "hydra.launcher.devices=[a,b]",
        "hydra.launcher.trials_per_device=auto",
        "hydra.launcher.max_trials_per_device=2",
        f"hydra.launcher.lock_dir={tmp_path / 'locks'}",
        "hydra.sweeper.n_trials=4",
        "trainer=debug",
        f"paths.output_root={tmp_path}",
        cwd=REPO,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "so 1 trial(s) per device, 2 at once" in result.stdout + result.stderr
    directory = sweep_dir(tmp_path)
    done = sorted(trials(directory), key=lambda t: t.number)
    assert [t.state.name for t in done] == ["COMPLETE"] * 4
    # The first job's end, as its run record says (optuna's times are local and naive).
    record = json.loads((directory / "0" / "run.json").read_text())
    ended = datetime.fromisoformat(record["ended_at"]).astimezone().replace(tzinfo=None)
    started = [t.datetime_start for t in done[1:]]
    assert all(start is not None and start >= ended for start in started), (ended, started)


def test_the_old_callback_refuses_more_workers_than_visible_devices(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from omegaconf import OmegaConf

    from lightning_args.callbacks.devices import OneDevicePerJob

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1,2")
    callback = OneDevicePerJob(devices=4, lock_dir=str(tmp_path))
    with pytest.raises(ConfigValueError) as error:
        callback.on_job_start(OmegaConf.create({}))
    assert str(error.value) == (
        "hydra.launcher.n_jobs=4 jobs at once, one per device, but CUDA_VISIBLE_DEVICES='1,2' "
        "lists 2. Fix: hydra.launcher.n_jobs=2"
    )
