"""Your own optimizer: optim=custom with a class from a test module, checked as strictly as the
built-ins, given the same parameter groups, trained and resumed; a user's conf/optim/NAME.yaml
through Hydra's search path."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from harness.config.command import check_overrides
from harness.errors import ConfigError
from harness.run.recipe import train
from tests.conftest import FAST

MINE = ["optim=custom", "optim._target_=tests.optimizers.SignMomentum", "optim.lr=0.01"]
DIGITS = ["data=digits", "model=cnn", "scheduler=constant", *FAST]


def error_of(overrides: list[str]) -> str:
    with pytest.raises(ConfigError) as e:
        check_overrides(overrides)
    message = str(e.value)
    assert "\n" not in message
    return message


def test_custom_takes_its_own_keywords_and_refuses_others_naming_the_accepted_ones() -> None:
    cfg = check_overrides([*MINE, "+optim.beta=0.5", *DIGITS])
    assert cfg.optim.beta == 0.5
    message = error_of([*MINE, "+optim.betas=[0.9,0.99]", *DIGITS])
    assert message == (
        "optim.betas is not an argument of tests.optimizers.SignMomentum; "
        "it takes: lr, beta, weight_decay"
    )


def test_its_own_value_rules_are_one_line_too() -> None:
    assert "beta must be in [0, 1)" in error_of([*MINE, "+optim.beta=2.0", *DIGITS])


def test_a_builtin_option_with_another_target_says_to_use_custom() -> None:
    message = error_of(["optim=adamw", "optim._target_=tests.optimizers.SignMomentum", *DIGITS])
    assert message.startswith("optim.betas is not an argument of tests.optimizers.SignMomentum")
    assert "optim=custom" in message


@pytest.mark.parametrize(
    "target, says",
    [
        ("tests.optimizers.NoSuch", "does not import"),
        ("nosuchpackage.Opt", "does not import"),
        ("tests.optimizers.torch", "is not a torch.optim.Optimizer subclass"),
        ("collections.OrderedDict", "is not a torch.optim.Optimizer subclass"),
    ],
)
def test_a_target_that_is_no_optimizer_class_is_one_line(target: str, says: str) -> None:
    assert says in error_of(["optim=custom", f"optim._target_={target}", *DIGITS])


def test_custom_without_a_target_says_what_to_give() -> None:
    assert "needs optim._target_=" in error_of(["optim=custom", *DIGITS])


def _groups(run_dir: Path) -> list[dict]:
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    return ckpt["optimizer_states"][0]["param_groups"]


@pytest.mark.slow
def test_trains_with_the_builtins_parameter_groups_and_resumes(tmp_path: Path) -> None:
    run = [*MINE, "+optim.weight_decay=0.1", *DIGITS]
    results = train(check_overrides(run), tmp_path / "a")
    assert results["status"] == "finished"
    groups = _groups(tmp_path / "a")
    assert {g["weight_decay"] for g in groups} == {0.0, 0.1}  # biases and norms: no decay
    assert all("buf" in s for s in torch.load(tmp_path / "a" / "checkpoints" / "last.ckpt",
               weights_only=True)["optimizer_states"][0]["state"].values())  # fmt: skip

    resumed = train(
        check_overrides([*run, "ckpt_path=last", "trainer.max_steps=6"]), tmp_path / "a"
    )
    assert resumed["status"] == "finished" and resumed["resumed_from"]
    ckpt = torch.load(tmp_path / "a" / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["global_step"] == 6

    off = train(check_overrides([*run, "decay_norm_and_bias=true"]), tmp_path / "b")
    assert off["status"] == "finished"
    assert {g["weight_decay"] for g in _groups(tmp_path / "b")} == {0.1}


def test_a_users_own_optim_yaml_through_hydras_search_path(tmp_path: Path) -> None:
    (tmp_path / "optim").mkdir()
    (tmp_path / "optim" / "signum.yaml").write_text(
        "_target_: tests.optimizers.SignMomentum\n_partial_: true\nlr: 0.003\nbeta: 0.8\n"
    )
    found = [f"hydra.searchpath=[file://{tmp_path}]", "optim=signum", *DIGITS]
    cfg = check_overrides(found)
    assert (cfg.optim._target_, cfg.optim.beta) == ("tests.optimizers.SignMomentum", 0.8)
    assert "not an argument" in error_of([*found, "+optim.momentum=0.9"])
