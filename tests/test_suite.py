"""The suites' problems: each definition's hash as recorded (a change needs a new suite version),
blind to what a user's run may change, sensitive to what defines the problem."""

from __future__ import annotations

import pytest

from harness.config.command import check_overrides
from harness.suite import SUITES, problem_hash, problem_record

PROBLEMS = [(s.name, p, h) for s in SUITES.values() for p, h in s.problems.items()]


@pytest.mark.parametrize(("suite", "problem", "digest"), PROBLEMS, ids=[p for _, p, _ in PROBLEMS])
def test_each_problem_has_its_recorded_definition(suite: str, problem: str, digest: str) -> None:
    cfg = check_overrides([f"experiment={problem}"])
    assert problem_hash(cfg) == digest, f"{problem} changed: give {suite} a new version"
    assert problem_record(cfg, problem) == {"name": problem, "hash": digest, "suite": suite}


@pytest.mark.slow
def test_the_hash_ignores_the_optimizer_seed_schedule_and_paths_but_not_the_budget() -> None:
    base = ["experiment=cpu_sst2"]
    digest = problem_hash(check_overrides(base))
    same = ["optim=custom", "optim._target_=torch.optim.Adamax", "seed=7", "scheduler=cosine",
            "data.root=/elsewhere", "callbacks=sweep", "logger=csv", "decay_norm_and_bias=true"]  # fmt: skip
    assert problem_hash(check_overrides([*base, *same])) == digest
    for other in ("trainer.max_steps=100", "data.batch_size=32", "model.dropout=0.1",
                  "trainer.limit_val_batches=5", "test=false"):  # fmt: skip
        assert problem_hash(check_overrides([*base, other])) != digest, other
    assert (
        problem_record(check_overrides([*base, "trainer.max_steps=5"]), "cpu_sst2")["suite"] is None
    )


def test_the_users_suite_sweep_has_the_baselines_problems_grid_and_seeds() -> None:
    import yaml

    from tests.conftest import ROOT

    def params(name: str) -> dict:
        return yaml.safe_load((ROOT / "sweeps" / f"{name}.yaml").read_text())["parameters"]

    mine, theirs = params("suite_cpu"), params("suite_cpu_baselines")
    assert mine["optim"] == {"value": "custom"}
    assert {k: v for k, v in mine.items() if k != "optim"} == {
        k: v for k, v in theirs.items() if k != "optim"
    }
    assert mine["experiment"]["values"] == list(SUITES["cpu_v1"].problems)
    lrs = mine["optim.lr"]["values"]
    assert (lrs[0], lrs[-1], len(lrs)) == (1e-5, 100.0, 15)  # half-decade steps
    assert theirs["optim"]["values"] == ["sgd", "momentum", "nesterov", "adam", "adamw", "muon"]
