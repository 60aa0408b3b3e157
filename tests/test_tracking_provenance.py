"""A run records how to reproduce it: the command line, library versions, hardware, and the
uncommitted changes as RUN_DIR/code.diff, with secrets masked; in results.json and W&B."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.rundir import provenance
from tests.conftest import FAST, ROOT
from tests.wandb_files import config

SECRET = "sk-provenance-0123456789abcdef"


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args],
                   check=True, capture_output=True)  # fmt: skip


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "a.py").write_text("x = 1\n")
    _git(repo, "add", "a.py")
    _git(repo, "commit", "-qm", "one")
    return repo


def test_clean_tree_writes_no_diff(repo: Path, tmp_path: Path) -> None:
    state = provenance.code_state(tmp_path / "run", repo)
    assert state["dirty"] is False and state["diff"] is None and len(state["commit"]) == 40
    assert not (tmp_path / "run" / "code.diff").exists()


def test_dirty_tree_diff_applies_and_is_redacted(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROVENANCE_TEST_TOKEN", SECRET)
    (repo / "a.py").write_text(f"x = 2\nkey = '{SECRET}'\n")
    (repo / "new.py").write_text("untracked\n")
    run_dir = tmp_path / "run"
    state = provenance.code_state(run_dir, repo)
    assert state["dirty"] is True and state["diff"] == "code.diff"
    assert state["untracked"] == ["new.py"]
    diff = (run_dir / "code.diff").read_text()
    assert SECRET not in diff and "***" in diff and "+x = 2" in diff
    # the diff turns the commit into the code that ran (secret masked)
    _git(repo, "stash", "-q")
    (repo / "new.py").unlink()
    _git(repo, "apply", str(run_dir / "code.diff"))
    assert (repo / "a.py").read_text() == "x = 2\nkey = '***'\n"
    assert (repo / "new.py").read_text() == "untracked\n"  # new files are in the diff too


def test_long_diff_is_cut_with_a_note(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(provenance, "DIFF_MAX_BYTES", 50)
    (repo / "a.py").write_text("y = 3\n" * 100)
    state = provenance.code_state(tmp_path / "run", repo)
    text = (tmp_path / "run" / "code.diff").read_text()
    assert state["diff_truncated"] and "code.diff cut at 50 of" in text


@pytest.mark.slow
def test_results_and_wandb_config_record_command_versions_hardware(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    fast = [o for o in FAST if not o.startswith("logger.wandb")]
    args = [*fast, "data=digits", "model=mlp", "trainer.max_steps=2", "logger.wandb.mode=offline",
            f"logger.wandb.tags=[{SECRET}]", f"hydra.run.dir={run_dir}"]  # fmt: skip
    env = {**__import__("os").environ, "PROVENANCE_TEST_TOKEN": SECRET}
    out = subprocess.run([sys.executable, "train.py", *args], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    results = json.loads((run_dir / "results.json").read_text())
    command = results["command"]
    assert command["argv"][0] == "train.py" and "model=mlp" in command["argv"]
    assert command["command"].startswith("python train.py ") and SECRET not in command["command"]
    assert set(results["versions"]) >= {"python", "torch", "lightning", "hydra", "wandb",
                                        "torchmetrics", "numpy"}  # fmt: skip
    assert all(results["versions"].values())
    hw = results["hardware"]
    assert hw["cpu"] and hw["cpu_count"] >= 1 and hw["gpu_count"] == len(hw["gpus"])
    assert results["git"]["commit"]
    (path,) = (run_dir / "wandb").glob("offline-run-*/run-*.wandb")
    meta = config(path)["meta"]
    assert meta["versions"] == results["versions"] and meta["command"] == command
    assert SECRET not in json.dumps(meta)


@pytest.mark.slow  # starts a process
def test_code_diff_is_among_the_offline_wandb_runs_files(tmp_path: Path) -> None:
    """In a process of its own: W&B's service in a test worker that ran other W&B tests before
    can be slow to answer (a 90 s init timeout was seen in a full suite)."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "code.diff").write_text("+x = 2\n")
    script = (
        "import sys, wandb\n"
        "from pathlib import Path\n"
        "from harness.rundir import provenance\n"
        "run = wandb.init(dir=sys.argv[1], project='provenance-test')\n"
        "provenance.save_to_wandb(run, Path(sys.argv[1]))\n"
        "run.finish()\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    subprocess.run([sys.executable, "-c", script, str(run_dir)], cwd=ROOT, check=True, timeout=300,
                   env={**env, "WANDB_MODE": "offline", "WANDB_SILENT": "true"})  # fmt: skip
    (files,) = run_dir.glob("wandb/offline-run-*/files")
    assert (files / "code.diff").read_text() == "+x = 2\n"  # uploaded with the run by wandb sync


def test_the_cpu_and_its_bfloat16_are_recorded_where_they_can_be(monkeypatch, tmp_path) -> None:
    # muon (bfloat16) repeats exactly only on a like CPU: a run must say which kind it ran on
    from harness.rundir import provenance

    arm = tmp_path / "cpuinfo"
    arm.write_text("processor\t: 0\nFeatures\t: fp asimd bf16\nCPU part\t: 0xd4f\n")
    real = Path.read_text
    monkeypatch.setattr(Path, "read_text", lambda p, *a, **k: real(arm if str(p) == "/proc/cpuinfo" else p, *a, **k))  # fmt: skip
    assert provenance.cpu_bfloat16() == "native"
    x86 = "model name\t: AMD EPYC 9B14\nflags\t\t: fpu sse avx2 avx512f\n"
    arm.write_text(x86)
    assert (provenance.cpu_model(), provenance.cpu_bfloat16()) == ("AMD EPYC 9B14", "no native")

    def missing(p, *a, **k):
        if str(p) == "/proc/cpuinfo":
            raise OSError("no /proc here")
        return real(p, *a, **k)

    monkeypatch.setattr(Path, "read_text", missing)
    assert provenance.cpu_bfloat16() == "unknown" and provenance.cpu_model()
    assert provenance.hardware()["cpu_kernels"]  # torch's: DEFAULT, AVX2, AVX512 ...
