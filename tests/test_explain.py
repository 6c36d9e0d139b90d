"""``explain``: each known family of foreign errors becomes its message; the rest one line.

In process and fast: the exceptions are made here, as torch, Lightning, Hydra, PyYAML and the
file system raise them (tests/test_error_boundary.py meets the real ones, in subprocesses).
Every family has a control: a near miss that it must leave to the next one.
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from typing import Any

import pytest
import yaml
from hydra.errors import InstantiationException
from lightning.fabric.utilities.exceptions import MisconfigurationException
from omegaconf import DictConfig, OmegaConf

from lightning_args.errors import (
    AcceleratorError,
    ConfigValueError,
    JobError,
    LightningArgsError,
    NonFiniteLossError,
    OutOfMemoryError,
    UsageError,
)
from lightning_args.run.explain import explain

CFG: DictConfig = OmegaConf.create(
    {
        "optimizer": {"_target_": "torch.optim.AdamW", "lr": -1.0, "betas": [0.9, 2.0]},
        "scheduler": {"_target_": "torch.optim.lr_scheduler.OneCycleLR", "pct_start": 2.0},
        "trainer": {"devices": 0, "strategy": "bogus", "precision": "17"},
        "data": {"batch_size": 64},
        "model": {"encoder": {"_target_": "x.MLPEncoder", "hidden": [2000000000]}},
    }
)


def raised(make: Callable[[], BaseException]) -> BaseException:
    """``make()``'s exception with a traceback, as a caught one has."""
    try:
        raise make()
    except BaseException as error:
        return error


def wrapped(error: BaseException, target: str, key: str) -> InstantiationException:
    """``error`` as Hydra's instantiate re-raises it."""
    try:
        raise InstantiationException(
            f"Error in call to target '{target}':\n{error!r}\nfull_key: {key}"
        ) from error
    except InstantiationException as outer:
        return outer


def test_our_errors_stay_as_they_are() -> None:
    ours = UsageError("bad")
    assert explain(ours) is ours


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("Invalid learning rate: -1.0", ["optimizer.lr=-1.0", "AdamW", "Fix: optimizer.lr="]),
        ("Invalid beta parameter at index 1: 2.0", ["optimizer.betas", "in [0, 1)"]),
    ],
)
def test_optimizer_arguments_name_their_key(message: str, expected: list[str]) -> None:
    friendly = explain(raised(lambda: ValueError(message)), CFG)
    assert isinstance(friendly, ConfigValueError)
    for fragment in expected:
        assert fragment in str(friendly), friendly


def test_several_optimizers_name_the_one_that_holds_the_value() -> None:
    cfg = OmegaConf.create(
        {
            "optimizer": None,
            "optimizers": {
                "generator": {"optimizer": {"_target_": "torch.optim.Adam", "lr": 0.001}},
                "critic": {"optimizer": {"_target_": "torch.optim.Adam", "lr": -2.0}},
            },
        }
    )
    friendly = explain(raised(lambda: ValueError("Invalid learning rate: -2.0")), cfg)
    assert "optimizers.critic.optimizer.lr=-2.0" in str(friendly)


def test_an_unrelated_value_error_is_not_an_optimizer_argument() -> None:
    friendly = explain(raised(lambda: ValueError("Invalid literal for int(): 'x'")), CFG)
    assert type(friendly) is JobError
    assert "ValueError: Invalid literal" in str(friendly)


@pytest.mark.parametrize(
    ("cause", "fragments"),
    [
        (
            MisconfigurationException(
                "`Trainer(devices=0)` value is not a valid input using cpu accelerator."
            ),
            ["trainer.devices=0", "Fix: trainer.devices=1"],
        ),
        (
            MisconfigurationException("No supported gpu backend found!"),
            ["trainer.accelerator", "Fix: trainer=cpu"],
        ),
        (
            ValueError("You selected an invalid strategy name: `strategy='bogus'`. Find a "
                       "complete list of options in our documentation at https://lightning.ai"),
            ["trainer.strategy='bogus'", "Fix: trainer.strategy=auto"],
        ),
    ],
)  # fmt: skip
def test_lightning_refusals_lose_hydra_wrapping(cause: Exception, fragments: list[str]) -> None:
    error = wrapped(raised(lambda: cause), "lightning.pytorch.trainer.trainer.Trainer", "trainer")
    friendly = explain(error, CFG)
    assert isinstance(friendly, AcceleratorError)
    text = str(friendly)
    for fragment in fragments:
        assert fragment in text, text
    for hydra in ("Error in call to target", "full_key", "Find a complete list"):
        assert hydra not in text
    assert len(text.splitlines()) <= 3


def test_a_value_error_of_another_key_is_not_the_trainer() -> None:
    # Control: a ValueError under model.* is not said to be the trainer's.
    error = wrapped(raised(lambda: ValueError("strategy unknown")), "x.Model", "model")
    friendly = explain(error, CFG)
    assert not isinstance(friendly, AcceleratorError)
    assert "in model" in str(friendly)


def test_cuda_out_of_memory_suggests_a_smaller_batch() -> None:
    message = "CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 15.8 GiB total capacity)"
    friendly = explain(raised(lambda: RuntimeError(message)), CFG)
    assert isinstance(friendly, OutOfMemoryError)
    assert "out of GPU memory" in str(friendly)
    assert "2.00 GiB" in str(friendly)
    assert "data.batch_size=64" in str(friendly)
    assert "Fix: a smaller batch, e.g. data.batch_size=32" in str(friendly)


def test_a_model_too_big_for_host_memory_names_the_model_key() -> None:
    message = (
        "[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate "
        "memory: you tried to allocate 512000000000 bytes. Error code 12"
    )
    cause = raised(lambda: RuntimeError(message))
    friendly = explain(wrapped(cause, "x.MLPEncoder", "model.encoder"), CFG)
    assert isinstance(friendly, OutOfMemoryError)
    assert "host (CPU) memory while building model.encoder" in str(friendly)
    assert "476.8 GiB" in str(friendly)


def test_a_runtime_error_is_not_out_of_memory() -> None:
    friendly = explain(raised(lambda: RuntimeError("mat1 and mat2 shapes cannot be multiplied")))
    assert type(friendly) is JobError


def test_anomaly_detection_finding_nan() -> None:
    message = "Function 'LogSoftmaxBackward0' returned nan values in its 0th output."
    friendly = explain(raised(lambda: RuntimeError(message)), CFG)
    assert isinstance(friendly, NonFiniteLossError)
    assert "NaN" in str(friendly)
    assert "LogSoftmaxBackward0" in str(friendly)
    assert "optimizer.lr=-1.0" in str(friendly)


def test_ddp_finding_unused_parameters_names_the_strategy_that_allows_them() -> None:
    # Lightning 2.6's wording, raised from DDP's reducer in the backward of a GAN's step.
    message = (
        "It looks like your LightningModule has parameters that were not used in producing the "
        "loss returned by training_step. If this is intentional, you must enable the detection "
        "of unused parameters in DDP, either by setting the string value "
        "`strategy='ddp_find_unused_parameters_true'` or by setting the flag in the strategy "
        "with `strategy=DDPStrategy(find_unused_parameters=True)`."
    )
    friendly = explain(raised(lambda: RuntimeError(message)), CFG)
    assert isinstance(friendly, ConfigValueError)
    assert "Fix: trainer.strategy=ddp_find_unused_parameters_true" in str(friendly)
    # The control: another reducer error is left alone.
    other = explain(raised(lambda: RuntimeError("Expected to mark a variable ready only once.")))
    assert type(other) is JobError


def test_a_missing_file_is_named_with_a_fix() -> None:
    error = raised(lambda: FileNotFoundError(errno.ENOENT, "No such file", "/runs/a/x.yaml"))
    friendly = explain(error)
    assert "'/runs/a/x.yaml': No such file" in str(friendly)
    assert "Fix: check the path" in str(friendly)


def test_an_os_error_without_a_file_is_not_a_file_error() -> None:
    friendly = explain(raised(lambda: OSError("something")))
    assert "OSError: something" in str(friendly)


def test_a_yaml_file_that_does_not_parse_is_named(tmp_path: Any) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("model:\n  a: [1, 2\nseed: 3\n")

    def load() -> BaseException:
        with path.open() as stream:
            yaml.safe_load(stream)
        raise AssertionError("it parsed")

    try:
        load()
    except yaml.YAMLError as error:
        friendly = explain(error)
    assert f"{str(path)!r} line" in str(friendly)
    assert "not valid YAML" in str(friendly)


def test_anything_else_is_one_line_with_where_it_was_raised() -> None:
    def users_code() -> None:
        raise KeyError("labels")

    try:
        users_code()
    except KeyError as error:
        friendly = explain(error, what="the run")
    text = str(friendly)
    assert isinstance(friendly, JobError)
    assert isinstance(friendly, LightningArgsError)
    assert text.startswith("the run failed: KeyError: 'labels' (raised in users_code, ")
    assert "test_explain.py" in text
    assert "HYDRA_FULL_ERROR=1" in text
    assert len(text.splitlines()) == 2


def test_a_long_foreign_message_is_cut() -> None:
    friendly = explain(raised(lambda: RuntimeError("x" * 5000)))
    assert len(str(friendly)) < 600
