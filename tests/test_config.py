"""Every option of every config group composes, resolves and passes the checks; the CLI's
help and config printing stay fast (no torch import)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from omegaconf import OmegaConf

from harness.config.checks import check_config
from tests.conftest import ROOT, compose

GROUPS = sorted(
    p.name for p in (ROOT / "conf").iterdir() if p.is_dir() and p.name not in ("hydra",)
)
OPTIONS = [(g, p.stem) for g in GROUPS for p in sorted((ROOT / "conf" / g).glob("*.yaml"))]


def test_the_documented_options_exist() -> None:
    have = set(OPTIONS)
    required = {
        "task": ["classify", "lm", "mlm"],
        "data": [
            "cifar10",
            "mnist",
            "fashion_mnist",
            "digits",
            "shakespeare_char",
            "ptb",
            "wikitext2",
            "sst2",
            "imdb",
            "ag_news",
        ],
        "model": ["resnet", "cnn", "mlp", "gpt", "gru", "lstm", "textcnn", "transformer"],
        "experiment": ["nanogpt_shakespeare_char", "sst2_textcnn"],
        "optim": ["sgd", "momentum", "nesterov", "adam", "adamw", "adagrad", "adadelta", "rmsprop"],
        "scheduler": ["constant", "cosine", "warmup_cosine", "step", "onecycle", "plateau"],
        "trainer": ["default"],
        "logger": ["default", "csv"],
    }
    missing = [f"{g}={o}" for g, opts in required.items() for o in opts if (g, o) not in have]
    assert not missing


# Options that need others to make a run that fits (an image model with image data, a text task
# with a text corpus...). Building a datamodule downloads nothing, so any data option will do.
PARTNERS = {
    **{("model", m): ["data=digits"] for m in ("resnet", "cnn", "mlp")},
    ("model", "gpt"): ["data=ptb"],
    **{("model", m): ["data=sst2"] for m in ("gru", "lstm", "textcnn", "transformer")},
    **{
        ("data", d): ["model=gru"]
        for d in ("shakespeare_char", "ptb", "wikitext2", "sst2", "imdb", "ag_news")
    },
    ("data", "text_files"): ["model=gru", "data.train=train.csv", "data.test=test.csv"],
    ("data", "text_corpus"): ["model=gru", "data.train=book.txt"],
    ("data", "image_folder"): ["model=cnn", "data.root=images"],
    ("task", "lm"): ["data=ptb", "model=gpt"],
    ("task", "mlm"): ["data=ptb", "model=transformer"],
    ("optim", "custom"): ["optim._target_=torch.optim.Adamax"],  # the user names the class
}


@pytest.mark.parametrize(("group", "option"), OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_option_composes_and_passes_checks(group: str, option: str) -> None:
    cfg = compose([f"{group}={option}", *PARTNERS.get((group, option), [])])
    OmegaConf.resolve(cfg)  # every interpolation resolves
    check_config(cfg)


@pytest.mark.slow
def test_optimizers_are_partials_of_real_torch_classes() -> None:
    import torch

    from optim.optimizer import build_optimizer_factory

    for path in sorted((ROOT / "conf" / "optim").glob("*.yaml")):
        cfg = compose([f"optim={path.stem}", *PARTNERS.get(("optim", path.stem), [])])
        factory = build_optimizer_factory(cfg)
        optimizer = factory([{"params": [torch.nn.Parameter(torch.zeros(3, 3))], "matrix": True},
                             {"params": [torch.nn.Parameter(torch.zeros(3))]}])  # fmt: skip
        # muon combines two torch classes (optim/muon.py); the rest are torch's own.
        inner = [optimizer.muon, optimizer.adamw] if path.stem == "muon" else [optimizer]
        assert all(type(o) is getattr(torch.optim, type(o).__name__, None) for o in inner), (
            path.stem
        )
        assert {g["lr"] for g in optimizer.param_groups} == {cfg.optim.lr}


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "train.py", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def imports_torch(*args: str) -> bool:
    """Whether running train.py with these arguments imports torch."""
    code = (
        "import runpy, sys\n"
        f"sys.argv = ['train.py', *{list(args)!r}]\n"
        "try:\n    runpy.run_path('train.py', run_name='__main__')\nexcept SystemExit:\n    pass\n"
        "print('TORCH', 'torch' in sys.modules, file=sys.stderr)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    return "TORCH True" in out.stderr


@pytest.mark.slow
def test_help_lists_groups_without_importing_torch() -> None:
    out = run_cli("--help")
    assert out.returncode == 0
    for group in ("data:", "model:", "optim:", "scheduler:"):
        assert group in out.stdout
    assert "adamw" in out.stdout and "resnet" in out.stdout and "digits" in out.stdout
    assert not imports_torch("--help")
    assert not imports_torch("--cfg", "job")


@pytest.mark.slow
def test_cfg_job_prints_the_composed_config() -> None:
    out = run_cli("model=cnn", "optim=sgd", "optim.lr=0.05", "--cfg", "job")
    assert out.returncode == 0, out.stderr
    cfg = OmegaConf.create(out.stdout)
    assert cfg.optim._target_ == "torch.optim.SGD" and cfg.optim.lr == 0.05
    assert cfg.model._target_ == "models.cnn.SmallCNN"


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("optim=adamx", "optim can be: adadelta, adagrad, adam, adamw"),
        ("optim.lrr=1", "Did you mean optim.lr?"),
        ("optim.lr=-1", "optim.lr must be a positive number, got -1"),
        ("optim.lr=abc", "optim.lr must be a number"),
        ("data.batch_size=0", "data.batch_size must be a positive integer, got 0"),
        ("trainer.max_epochs=1.5", "trainer.max_epochs must be an integer"),
        ("scheduler.warmup_fraction=2", "scheduler.warmup_fraction must be in [0, 1)"),
        ("trainer.precision=17", "Allowed precision values"),
        ("model=textcnn", "model=textcnn takes tokens but data=digits gives images"),
        ("trainer.max_epochs=-1", "a learning-rate schedule needs a finite run"),
    ],
)
@pytest.mark.slow
def test_bad_override_is_one_clear_line_and_leaves_no_run_dir(
    override: str, expected: str, tmp_path
) -> None:
    run_dir = tmp_path / "run"
    out = run_cli("data=digits", override, f"hydra.run.dir={run_dir}")
    assert out.returncode == 2
    assert expected in out.stderr
    assert "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) <= 3, out.stderr
    assert not run_dir.exists()


def test_a_schedule_over_an_unbounded_run_is_refused_by_the_checks() -> None:
    from harness.config.command import check_command
    from harness.errors import ConfigError

    with pytest.raises(
        ConfigError, match=r"needs a finite run: set trainer\.max_epochs or trainer\.max_steps"
    ):
        check_command(["data=digits", "trainer.max_epochs=-1"])
    check_command(["data=digits", "trainer.max_epochs=-1", "trainer.max_steps=5"])  # steps bound it
    with pytest.raises(
        ConfigError,
        match=r"every run needs a scheduler \(~scheduler removed it\); scheduler can be: constant",
    ):
        check_command(["data=digits", "~scheduler"])


def test_hydra_job_env_set_is_seen_by_the_config_it_resolves(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """hydra.job.env_set is in the environment when ${oc.env:...} resolve (as under Hydra's own
    job runner), and gone after the check."""
    from harness.config.command import check_overrides

    monkeypatch.delenv("DATA_DIR", raising=False)
    cfg = check_overrides(["data=cifar10", "+hydra.job.env_set.DATA_DIR=/scratch/data"])
    assert cfg.data.root == "/scratch/data"
    assert "DATA_DIR" not in os.environ
