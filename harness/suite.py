"""The test-problem suites: named, versioned lists of problems (conf/experiment/*.yaml: data,
model, step budget, validation schedule and score; no optimizer settings), each identified by a
short hash of its definition, which every run records in results.json ("problem") and the report
compares before it sets runs beside baselines (harness/report/baselines.py).

A problem's definition is the resolved config less what a user's run may change without changing
the problem: the optimizer and its schedule, the seed, paths, logging, callbacks and speed
settings. Changing a suite problem's definition changes its hash: tests/test_suite.py then fails
until the suite gets a new version (cpu_v2) and new baselines.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

# Keys of data.* that say where the files are or how they are fed, not what they are.
DATA_NOT_DEFINING = ("root", "download", "verify", "cache_dir", "num_workers", "loader", "seed")
# trainer.* keys that define the budget, the validation schedule and the numerics.
TRAINER_DEFINING = (
    "max_epochs", "max_steps", "accumulate_grad_batches", "gradient_clip_val", "precision",
    "val_check_interval", "check_val_every_n_epoch", "limit_train_batches", "limit_val_batches",
    "limit_test_batches", "overfit_batches", "devices", "num_nodes",
)  # fmt: skip
TOP_DEFINING = ("test", "pretrained", "finetune")
HASH_CHARS = 10


@dataclass(frozen=True)
class Suite:
    name: str  # versioned: a problem's definition never changes within a version
    problems: dict[str, str]  # experiment option -> its definition hash
    what: str


SUITES = {
    s.name: s
    for s in (
        Suite(
            "cpu_v1",
            {
                "cpu_digits": "a78dd6d10e",
                "cpu_fashion_mnist": "2cbd50d2d2",
                "cpu_fashion_mnist_cnn": "e8757b95d0",
                "cpu_shakespeare_char": "58e61ed1a7",
                "cpu_sst2": "d746a96f98",
            },
            "five problems for a laptop CPU, 1-5 minutes a run on one core",
        ),
        Suite(
            "gpu_v1",
            {"gpu_cifar10_resnet18": "326480fad5", "gpu_shakespeare_char_gpt": "555f81b833"},
            "two problems for one GPU, minutes to an hour a run",
        ),
    )
}


def problem_definition(cfg: Any) -> dict[str, Any]:
    """The config keys that define the problem a run trains on, as plain values."""
    from omegaconf import OmegaConf

    plain = OmegaConf.to_container(cfg, resolve=True)
    trainer = plain.get("trainer") or {}
    return {
        "data": {k: v for k, v in (plain.get("data") or {}).items() if k not in DATA_NOT_DEFINING},
        "model": plain.get("model"),
        "task": plain.get("task"),
        "trainer": {k: trainer.get(k) for k in TRAINER_DEFINING},
        **{k: plain.get(k) for k in TOP_DEFINING},
    }


def problem_hash(cfg: Any) -> str:
    text = json.dumps(problem_definition(cfg), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:HASH_CHARS]


def suite_of(name: str | None, digest: str) -> str | None:
    """The suite whose problem `name` has this very definition, if any."""
    return next((s.name for s in SUITES.values() if s.problems.get(name or "") == digest), None)


def problem_record(cfg: Any, experiment: str | None) -> dict[str, Any]:
    """results.json's "problem": the experiment option, its definition hash, and the suite it is
    a problem of (None when the definition differs from the suite's, e.g. a smaller budget)."""
    digest = problem_hash(cfg)
    return {"name": experiment, "hash": digest, "suite": suite_of(experiment, digest)}
