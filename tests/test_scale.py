"""Scale and speed switches: DDP over 2 CPU processes matches one process on the same global
batch; bf16-mixed runs on a CPU (16-mixed on a GPU); torch.compile and channels_last keep
checkpoints loadable; logging reads no tensor on steps it does not log; the SLURM launcher
config composes into parameters submitit accepts."""

from __future__ import annotations

import csv
import itertools
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import lightning as L
import pytest
import torch

from harness.run.recipe import train
from harness.rundir.files import read_results
from tests.conftest import FAST, ROOT, compose

# A model with neither dropout nor BatchNorm: then 2 processes x 8 samples and 1 x 16 compute
# the same averaged gradient, and only float summation order differs.
SMALL = ["data=digits", "model=mlp", "model.hidden=[32]", "model.dropout=0", "trainer.max_steps=6"]
FULL_EVAL = ["trainer.limit_val_batches=null", "trainer.limit_test_batches=null"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def train_py(args: list[str], **env: str) -> subprocess.CompletedProcess:
    """python train.py in its own process: Lightning's DDP launcher re-runs this command line for
    each extra rank (it cannot from pytest), and each run gets its own port."""
    return subprocess.run(
        [sys.executable, "train.py", *args],
        cwd=ROOT,
        env={**os.environ, "WANDB_MODE": "disabled", "MASTER_PORT": str(free_port()), **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


def state(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]


@pytest.mark.slow
def test_ddp_on_two_cpu_processes_matches_one_process(tmp_path: Path) -> None:
    single, ddp = tmp_path / "single", tmp_path / "ddp"
    train(compose([*FAST, *SMALL, *FULL_EVAL, "data.batch_size=16"]), single)
    out = train_py([*FAST, *SMALL, *FULL_EVAL, "data.batch_size=8", "trainer=ddp",
                    "trainer.accelerator=cpu", "trainer.devices=2", f"hydra.run.dir={ddp}"])  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]

    one, two = read_results(single), read_results(ddp)
    assert (one["world_size"], one["global_batch_size"]) == (1, 16)
    assert (two["world_size"], two["global_batch_size"]) == (2, 16)
    assert one["last_checkpoint"] == two["last_checkpoint"] == "checkpoints/last.ckpt"
    # Validation and test metrics are reduced over both ranks' shards of the split.
    for key in ("val/loss", "val/acc", "test/loss", "test/acc", "test/auroc", "train/grad_norm"):
        assert two[key] == pytest.approx(one[key], rel=1e-4, abs=1e-5), key
    a, b = state(single), state(ddp)
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(b[name], a[name], rtol=1e-4, atol=1e-5)
    # Rank zero alone writes the CSV log: one row per logged step.
    with open(ddp / "metrics.csv") as f:
        steps = [r["step"] for r in csv.DictReader(f) if r.get("train/loss")]
    assert steps == sorted(set(steps)) and len(steps) == 6


def train_losses(run_dir: Path) -> list[float]:
    with open(run_dir / "metrics.csv") as f:
        return [float(r["train/loss"]) for r in csv.DictReader(f) if r.get("train/loss")]


@pytest.mark.slow
def test_bf16_mixed_on_cpu_with_channels_last(tmp_path: Path) -> None:
    args = [*FAST, "data=digits", "model=cnn", "model.dropout=[0,0]", "trainer.max_steps=8",
            "trainer.overfit_batches=1", "optim=adam", "optim.lr=3e-3", "scheduler=constant"]  # fmt: skip
    train(compose(args), tmp_path / "fp32")
    results = train(
        compose([*args, "trainer.precision=bf16-mixed", "channels_last=true"]), tmp_path / "bf16"
    )
    assert results["status"] == "finished"
    fp32, bf16 = train_losses(tmp_path / "fp32"), train_losses(tmp_path / "bf16")
    assert bf16[-1] < bf16[0]
    # Autocast really ran in bfloat16: close to the float32 losses, but not equal to them.
    assert bf16 != fp32
    assert bf16 == pytest.approx(fp32, rel=0.05)
    weights = state(tmp_path / "bf16")
    conv = weights["net.encoder.0.weight"]  # master weights stay float32, in NHWC layout
    assert conv.dtype == torch.float32 and conv.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="16-mixed needs a CUDA GPU")
def test_16_mixed_on_gpu(tmp_path: Path) -> None:
    args = [*FAST, "data=digits", "model=cnn", "trainer.accelerator=gpu", "trainer.max_steps=8",
            "trainer.overfit_batches=1", "optim=adam", "optim.lr=3e-3", "scheduler=constant"]  # fmt: skip
    results = train(compose([*args, "trainer.precision=16-mixed", "channels_last=true"]), tmp_path)
    losses = train_losses(tmp_path)
    assert results["status"] == "finished" and losses[-1] < losses[0]


@pytest.mark.slow
def test_compile_trains_and_keeps_checkpoint_names(tmp_path: Path) -> None:
    import torch._dynamo

    torch._dynamo.reset()
    results = train(compose([*FAST, *SMALL, "compile=true", "trainer.max_steps=3"]), tmp_path)
    assert results["status"] == "finished"
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] >= 1  # it did compile
    keys = state(tmp_path).keys()
    assert not [k for k in keys if "_orig_mod" in k]  # loads into an uncompiled network


# Calls that read a tensor's value on the host: on a GPU each one waits for the queued work.
HOST_READS = [(torch.Tensor, n) for n in ("item", "tolist", "numpy", "__bool__", "__float__", "__int__", "nonzero")] + [(torch, "unique"), (torch, "nonzero")]  # fmt: skip
READS: list[str] = []
STARTS: list[tuple[int, int]] = []  # (global step, reads so far) at each training batch start


def counting(original: Callable, name: str) -> Callable:
    def counted(*args: object, **kwargs: object) -> object:
        if "torch/optim/" not in sys._getframe(1).f_code.co_filename:
            READS.append(name)
        return original(*args, **kwargs)

    return counted


class StepMarks(L.Callback):
    def on_train_batch_start(self, trainer: L.Trainer, *args: object) -> None:
        STARTS.append((trainer.global_step, len(READS)))


@pytest.mark.slow
def test_logging_reads_no_tensor_on_steps_it_does_not_log(tmp_path: Path, monkeypatch) -> None:
    """On a CPU nothing syncs, so count the calls that would: a step that logs nothing must make
    none (torch.optim's own step counters live on the host by design and are left out)."""
    for owner, name in HOST_READS:
        monkeypatch.setattr(owner, name, counting(getattr(owner, name), name))
    READS.clear(), STARTS.clear()
    train(compose([*FAST, "data=digits", "model=cnn", "trainer.max_steps=13", "trainer.log_every_n_steps=4",
                   "trainer.enable_progress_bar=true", "+callbacks.marks._target_=tests.test_scale.StepMarks"]),
          tmp_path)  # fmt: skip
    reads = {
        step: b - a for (step, a), (_, b) in itertools.pairwise(STARTS)
    }  # from one start to the next
    assert len(reads) == 12
    # Lightning logs (and the progress bar reads train/loss) after steps 4, 8, 12.
    assert {step for step, n in reads.items() if n} == {3, 7, 11}, reads


def test_slurm_launcher_config_makes_a_valid_sbatch_script(tmp_path: Path, monkeypatch) -> None:
    """hydra/launcher=slurm composes, and submitit (which validates every parameter name) turns
    it into the sbatch script a multirun would submit, as the launcher plugin does."""
    import submitit
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.hydra_config import HydraConfig
    from hydra.utils import instantiate
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
    from omegaconf import OmegaConf

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3", job_name="train"):
        cfg = hydra_compose("config", ["hydra/launcher=slurm", "hydra.launcher.partition=gpu",
                                       "hydra.launcher.gpus_per_node=4", "hydra.launcher.tasks_per_node=4",
                                       "trainer=ddp", "trainer.devices=4"], return_hydra_config=True)  # fmt: skip
    HydraConfig.instance().set_config(cfg)
    launcher = instantiate(cfg.hydra.launcher)
    assert type(launcher).__name__ == "SlurmLauncher"

    (tmp_path / "srun").write_text("#!/bin/sh\n")  # submitit looks for srun before anything else
    (tmp_path / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    executor = submitit.AutoExecutor(folder=tmp_path / "jobs", cluster="slurm")
    generic = set(OmegaConf.structured(BaseQueueConf).keys())
    executor.update_parameters(**{k if k in generic else f"slurm_{k}": v
                                  for k, v in launcher.params.items()
                                  if k not in ("submitit_folder", "max_num_timeout")})  # fmt: skip
    script = executor._executor._make_submission_file_text("python -u job.py", "0")
    for line in ("--partition=gpu", "--gpus-per-node=4", "--ntasks-per-node=4", "--time=240"):
        assert f"#SBATCH {line}\n" in script, line


class SyncsAreErrors(L.Callback):
    """CUDA's sync debug mode set to "error" from the start of step 2 to the start of step 8."""

    def on_train_batch_start(self, trainer: L.Trainer, *args: object) -> None:
        if trainer.global_step in (2, 8):
            torch.cuda.set_sync_debug_mode("error" if trainer.global_step == 2 else "default")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="device syncs exist only on a GPU")
def test_no_device_sync_on_steps_that_log_nothing_on_gpu(tmp_path: Path) -> None:
    """Any host-device synchronisation (.item(), a blocking copy, a data-dependent shape) in
    steps 2 to 7, which log nothing, raises."""
    results = train(compose([*FAST, "data=digits", "model=cnn", "trainer.accelerator=gpu",
                             "trainer.max_steps=12", "trainer.log_every_n_steps=10",
                             "trainer.enable_progress_bar=true", "logger.csv=true",
                             "+callbacks.syncs._target_=tests.test_scale.SyncsAreErrors"]), tmp_path)  # fmt: skip
    assert results["status"] == "finished"
