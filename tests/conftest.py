from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.fixtures import write_cifar10, write_mnist, write_text_datasets

# Started in the background by a shell without job control (`(pytest &)`, some CI runners), the
# tests would have SIGINT ignored, and so would every train.py they start: the Ctrl-C tests would
# test nothing. They run as from a terminal.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("WANDB_MODE", "disabled")  # tests never talk to W&B unless they ask
os.environ.setdefault("WANDB_SILENT", "true")


@pytest.fixture(scope="session")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder holding fixture CIFAR-10, MNIST and Fashion-MNIST in torchvision's layouts, and
    every text dataset in its published format."""
    root = tmp_path_factory.mktemp("data")
    write_cifar10(root)
    write_mnist(root, "MNIST")
    write_mnist(root, "FashionMNIST", seed=1)
    write_text_datasets(root)
    return root


def compose(overrides: list[str]):
    """The config train.py would run with these overrides (without the hydra node, unresolved)."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    from harness.config.compose import compose as compose_config

    cfg = compose_config(overrides)
    HydraConfig.instance().set_config(cfg)  # so ${hydra:...} and choices resolve as in a real run
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg


# Fast settings for runs on fixture data: a few steps, no W&B, no progress bars.
FAST = [
    "logger.wandb=null",
    "callbacks=sweep",  # the cheap diagnostics, no pictures (tests/test_diagnostics.py has them)
    "trainer.max_epochs=-1",  # max_steps bounds every test run
    "trainer.max_steps=4",
    "trainer.limit_val_batches=2",
    "trainer.limit_test_batches=2",
    "trainer.log_every_n_steps=1",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
]


# Text data options and the overrides that fit them to the fixture files.
TEXT_DATA = {
    "shakespeare_char": ["data.block_size=16"],
    "ptb": ["data.block_size=8"],
    "wikitext2": ["data.block_size=8"],
    "sst2": [],
    "imdb": ["data.val_size=6"],
    "ag_news": ["data.val_size=8"],
}


def fixture_overrides(data: str, data_root: Path) -> list[str]:
    """Point a data option at the fixture files (tiny splits, downloads and checksums off; text
    data without the token cache, which tests of the cache turn on themselves)."""
    if data == "digits":
        return ["data=digits"]
    if data in TEXT_DATA:
        return [f"data={data}", f"data.root={data_root}", "data.download=false", "data.verify=false",
                "data.cache_dir=null", "data.batch_size=4", *TEXT_DATA[data]]  # fmt: skip
    extra = ["data.verify=false"] if data == "cifar10" else []
    return [
        f"data={data}",
        f"data.root={data_root}",
        "data.download=false",
        "data.val_size=20",
        "data.batch_size=8",
        *extra,
    ]
