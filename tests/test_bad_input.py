"""Bad input stops a run before it starts: one clear line naming the bad value and what is
allowed, a non-zero exit status, no traceback and nothing half-written. (The command-line cases
of tests/test_config.py cover unknown options and keys, types and ranges through train.py; here
the same checks as a sweep runner calls them, and the input that only a run directory, a data
folder or a checkpoint can reveal.)"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from datamodules import DatasetError
from datamodules.mnist import MNISTDataModule
from datamodules.tensor_loader import TensorLoader
from harness.config.command import check_overrides
from harness.errors import ConfigError
from harness.run.recipe import train
from harness.run.resume import check_fits, resume_point
from tests.conftest import FAST, ROOT, compose


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "train.py", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)  # fmt: skip


def assert_clear_failure(out: subprocess.CompletedProcess, *expected: str) -> None:
    assert out.returncode == 2, out.stderr[-2000:]
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) <= 3 and lines[-1].startswith("error: "), out.stderr
    for text in expected:
        assert text in out.stderr


# --- the checks a sweep runner calls on each proposed run ----------------------------------


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["optim=adamx"], "unknown option optim=adamx; optim can be: adadelta"),
        (
            ["callbacks=[default,defualt]"],  # a list of options: Hydra names no options then
            "unknown option callbacks=defualt; callbacks can be: default, early_stopping",
        ),
        (["optim.learning_rate=0.1"], "unknown key optim.learning_rate"),
        (["optim.lr=fast"], "optim.lr must be a number (default 0.001), got 'fast'"),
        (["optim=sgd", "optim.lr=-1"], "optim.lr must be a positive number, got -1"),
        (["data.batch_size=0"], "data.batch_size must be a positive integer, got 0"),
        (["seed=-3"], "seed must be an integer from 0 to 4294967295, got -3"),
        (
            ["checkpoint_every_n_steps=0"],
            "checkpoint_every_n_steps must be an integer >= 1 or null",
        ),
        (["logger.wandb.init_timeout=0"], "logger.wandb.init_timeout must be a positive number"),
        (["optim.lr=[0.1"], "cannot parse optim.lr=[0.1: no viable alternative"),
        (["+notes=${oc.env:HARNESS_UNSET_VARIABLE}"], "HARNESS_UNSET_VARIABLE' not found"),
    ],
)
def test_sweep_overrides_are_checked_like_a_command_line(
    overrides: list[str], expected: str
) -> None:
    with pytest.raises(ConfigError) as error:
        check_overrides(["data=digits", "model=mlp", *overrides])
    assert expected in str(error.value)


def test_good_sweep_overrides_pass_and_give_the_resolved_config() -> None:
    cfg = check_overrides(["data=digits", "model=mlp", "optim=sgd", "optim.lr=0.05"])
    assert cfg.optim.lr == 0.05 and "hydra" not in cfg


def test_a_model_that_cannot_take_the_data_is_refused() -> None:
    with pytest.raises(ConfigError) as error:
        check_overrides(["data=digits", "model._target_=tests.fixtures.TokenModel"])
    assert "takes tokens but data=digits gives images" in str(error.value)
    assert "Models for task=classify on data=digits: cnn, mlp, resnet" in str(error.value)


# --- data -------------------------------------------------------------------------------------


@pytest.mark.slow
def test_missing_dataset_with_downloads_off_fails_clearly_and_leaves_no_run_dir(
    tmp_path: Path,
) -> None:
    run_dir = tmp_path / "run"
    out = run_cli("data=mnist", f"data.root={tmp_path / 'empty'}", "data.download=false",
                  "model=mlp", f"hydra.run.dir={run_dir}")  # fmt: skip
    assert_clear_failure(out, "MNIST not found in", "(data.download=false)", "data.root")
    assert not run_dir.exists()  # Hydra had made it; the failed run took it away again


@pytest.fixture
def mnist_copy(data_root: Path, tmp_path: Path) -> Path:
    shutil.copytree(data_root / "MNIST", tmp_path / "MNIST")
    return tmp_path / "MNIST" / "raw"


@pytest.mark.parametrize("cut", [1, 500])
def test_truncated_mnist_idx_file_is_named(mnist_copy: Path, cut: int) -> None:
    path = mnist_copy / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-cut])
    dm = MNISTDataModule(str(mnist_copy.parent.parent), download=False, val_size=20)
    with pytest.raises(
        DatasetError, match=r"t10k-images-idx3-ubyte is truncated or corrupt: its header"
    ):
        dm.setup()


# --- checkpoints ------------------------------------------------------------------------------


def _fake_checkpoint(
    path: Path, model: str, state_dict: dict, optim: str = "torch.optim.AdamW"
) -> Path:
    config = {"model": {"_target_": model}, "data": {"_target_": "datamodules.digits.DigitsDataModule"},
              "optim": {"_target_": optim}}  # fmt: skip
    torch.save({"state_dict": state_dict, "config": config, "global_step": 3}, path)
    return path


def test_checkpoint_from_another_model_names_both(tmp_path: Path) -> None:
    from models.cnn import SmallCNN

    cnn = SmallCNN(in_channels=1, image_size=8, num_classes=10)
    ckpt = _fake_checkpoint(tmp_path / "cnn.ckpt", "models.cnn.SmallCNN",
                            {f"net.{k}": v for k, v in cnn.state_dict().items()})  # fmt: skip
    with pytest.raises(ConfigError) as error:  # train.py prints it as one line, exit status 2
        train(compose([*FAST, "data=digits", "model=mlp", f"ckpt_path={ckpt}"]), tmp_path / "run")
    message = str(error.value)
    assert "does not fit this run" in message
    assert "It holds model models.cnn.SmallCNN" in message
    assert "this run builds model models.mlp.MLP" in message
    assert not (tmp_path / "run").exists()


def test_checkpoint_with_other_shapes_or_optimizer_or_truncated(tmp_path: Path) -> None:
    from models.mlp import MLP

    config = {"model": {"_target_": "models.mlp.MLP"}, "optim": {"_target_": "torch.optim.AdamW"}}
    own = {f"net.{k}": v for k, v in MLP(1, 8, 10, hidden=[16]).state_dict().items()}
    wider = {f"net.{k}": v for k, v in MLP(1, 8, 10, hidden=[32]).state_dict().items()}
    path = _fake_checkpoint(tmp_path / "a.ckpt", "models.mlp.MLP", wider)
    with pytest.raises(
        ConfigError, match=r"net.encoder.1.weight has shape \[32, 64\] there and \[16, 64\] here"
    ):
        check_fits(path, own, config, "a.ckpt")
    path = _fake_checkpoint(tmp_path / "b.ckpt", "models.mlp.MLP", own, optim="torch.optim.SGD")
    with pytest.raises(
        ConfigError,
        match=r"optimizer state is for torch\.optim\.SGD, this run uses torch\.optim\.AdamW",
    ):
        check_fits(path, own, config, "b.ckpt")
    check_fits(_fake_checkpoint(tmp_path / "c.ckpt", "models.mlp.MLP", own), own, config, "c.ckpt")
    (tmp_path / "d.ckpt").write_bytes((tmp_path / "c.ckpt").read_bytes()[:200])
    with pytest.raises(ConfigError, match=r"d.ckpt: .*d.ckpt is not a readable checkpoint"):
        check_fits(tmp_path / "d.ckpt", own, config, "d.ckpt")


def test_ckpt_path_that_does_not_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"ckpt_path=last: no checkpoint file at .*last.ckpt"):
        resume_point("last", tmp_path, {})


# --- run directories --------------------------------------------------------------------------


def test_unwritable_run_directory_fails_before_anything_runs(tmp_path: Path) -> None:
    from harness.run.resume import check_run_dir  # what train.py checks before it writes anything

    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(ConfigError, match=f"cannot write the run directory {blocker / 'run'}"):
        check_run_dir(blocker / "run", compose(["data=digits"]))


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through directory permissions")
def test_read_only_run_directory(tmp_path: Path) -> None:
    parent = tmp_path / "ro"
    parent.mkdir(mode=0o500)
    with pytest.raises(ConfigError, match="cannot write the run directory"):
        from harness.run.resume import check_run_dir

        check_run_dir(parent / "run", compose(["data=digits"]))


@pytest.mark.slow
def test_a_finished_run_is_never_overwritten(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    (run_dir / ".hydra").mkdir(parents=True)
    (run_dir / ".hydra" / "config.yaml").write_text("the finished run's config\n")
    (run_dir / "results.json").write_text(json.dumps({"status": "finished"}))
    out = run_cli("data=digits", f"hydra.run.dir={run_dir}")
    assert_clear_failure(out, f"{run_dir} already holds a finished run", "ckpt_path=last")
    assert (run_dir / ".hydra" / "config.yaml").read_text() == "the finished run's config\n"


def test_an_unfinished_run_resumes_only_with_its_own_config(tmp_path: Path) -> None:
    old = {"optim": {"_target_": "torch.optim.AdamW", "lr": 0.001}, "data": {"root": "/a"}}
    (tmp_path / "checkpoints").mkdir()
    torch.save({"global_step": 4, "config": old}, tmp_path / "checkpoints" / "last.ckpt")
    torch.save({"global_step": 9, "config": old}, tmp_path / "hpc_ckpt_1.ckpt")  # SLURM's, newer
    same_but_elsewhere = {**old, "data": {"root": "/b"}}  # where the data is does not count
    assert resume_point(None, tmp_path, same_but_elsewhere) == tmp_path / "hpc_ckpt_1.ckpt"
    other = {**old, "optim": {"_target_": "torch.optim.AdamW", "lr": 0.01}}
    with pytest.raises(
        ConfigError, match=r"unfinished run with another config \(optim.lr: 0.001 -> 0.01\)"
    ):
        resume_point(None, tmp_path, other)
    assert resume_point("last", tmp_path, other) == tmp_path / "checkpoints" / "last.ckpt"


# --- the loader position a checkpoint saves ---------------------------------------------------


@pytest.mark.slow
def test_saved_loader_position_is_the_next_batch_in_a_real_fit(tmp_path: Path) -> None:
    cfg = compose([*FAST, "data=digits", "model=mlp", "trainer.max_steps=22",  # > 1 epoch (20)
                   "data.batch_size=64", "trainer.limit_val_batches=1", "test=false",
                   "+callbacks.position={_target_:tests.probes.LoaderPosition}"])  # fmt: skip
    assert train(cfg, tmp_path)["status"] == "finished"


def test_loader_restored_at_an_epoch_end_starts_the_next_epoch_at_its_first_batch() -> None:
    data = (torch.arange(40),)
    full = TensorLoader(data, 8, shuffle=True, seed=1)
    full.sampler.set_epoch(3)
    expected = [b[0].tolist() for b in full]
    resumed = TensorLoader(data, 8, shuffle=True, seed=1)
    resumed.load_state_dict({"epoch": 2, "next_batch": 5})  # saved after epoch 2's last batch
    resumed.sampler.set_epoch(3)  # what Lightning does before the next epoch
    assert [b[0].tolist() for b in resumed] == expected


def test_another_config_may_not_rewrite_logged_history(tmp_path: Path) -> None:
    from harness.run.resume import check_history
    from harness.rundir.files import logged_rows

    old = {"optim": {"_target_": "torch.optim.AdamW", "lr": 0.001}}
    new = {"optim": {"_target_": "torch.optim.AdamW", "lr": 0.01}}
    torch.save({"global_step": 10, "config": old}, tmp_path / "last.ckpt")
    csv = "epoch,step,train/loss,val/acc\n" + "".join(f"0,{s},1.0,\n" for s in range(12))
    (tmp_path / "metrics.csv").write_text(csv + "0,12,,0.5\n")
    rows = logged_rows(tmp_path / "metrics.csv")
    check_history(tmp_path / "last.ckpt", tmp_path, old, rows)  # the same run replays: fine
    with pytest.raises(
        ConfigError, match=r"records training up to step 11, after this checkpoint \(step 10\)"
    ):
        check_history(tmp_path / "last.ckpt", tmp_path, new, rows)
    torch.save({"global_step": 12, "config": old}, tmp_path / "last.ckpt")
    check_history(tmp_path / "last.ckpt", tmp_path, new, rows)  # extending a run: fine
