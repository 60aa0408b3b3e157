"""What a run needs to be reproduced, recorded in results.json's meta and the W&B config: the
exact command line, the library versions, the hardware, and the code (the commit, and when the
tree has uncommitted changes, their diff in RUN_DIR/code.diff). Secrets are masked throughout."""

from __future__ import annotations

import os
import platform
import shlex
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from harness.rundir.files import write_text_atomic
from harness.rundir.secrets import redact

PROJECT_DIR = Path(__file__).resolve().parent.parent.parent
DIFF_FILE = "code.diff"
DIFF_MAX_BYTES = 1_000_000  # a diff this long is mostly generated files: cut, with a note
UNTRACKED_MAX, NEW_FILE_MAX_BYTES = 50, 200_000  # new files put into the diff (data files: not)
# distribution names (hydra's is hydra-core)
LIBRARIES = ("torch", "lightning", "hydra-core", "wandb", "torchmetrics", "numpy")


def command_line(argv: list[str] | None = None) -> dict[str, Any]:
    """The command as typed (`python train.py optim=adamw ...`), its argv, and where it ran."""
    argv = redact(list(sys.argv if argv is None else argv))
    return {"command": shlex.join(["python", *argv]), "argv": argv, "cwd": os.getcwd(),
            "python": sys.executable}  # fmt: skip


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            out[name.removesuffix("-core")] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name.removesuffix("-core")] = None
    return out


def _cpuinfo() -> tuple[str, set[str]]:
    """(the CPU's name, its feature flags) from /proc/cpuinfo; ("", set()) where there is none."""
    name, flags = "", set()
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return name, flags
    for line in info.splitlines():
        key, _, value = (part.strip() for part in line.partition(":"))
        if key in ("model name", "Model") and not name:  # x86, ARM
            name = value
        elif key in ("flags", "Features"):
            flags |= set(value.split())
    return name, flags


def cpu_model(info: tuple[str, set[str]] | None = None) -> str:
    return (info or _cpuinfo())[0] or platform.processor() or platform.machine()


def cpu_bfloat16(info: tuple[str, set[str]] | None = None) -> str:
    """ "native", "no native" or "unknown". torch's Muon orthogonalises in bfloat16, whose CPU
    kernels round differently by instruction set: muon repeats exactly only on a like CPU."""
    flags = (info or _cpuinfo())[1]
    if not flags:
        return "unknown"
    return "native" if flags & {"avx512_bf16", "amx_bf16", "bf16"} else "no native"


def hardware() -> dict[str, Any]:
    """CPU model, bfloat16 and kernels, cores (all, and those this process may use), GPUs by
    name, CUDA's version."""
    import torch

    info = _cpuinfo()  # read once
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    gpus = []
    if torch.cuda.is_available():
        gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return {
        "cpu": cpu_model(info),
        "cpu_bfloat16": cpu_bfloat16(info),
        "cpu_kernels": torch.backends.cpu.get_cpu_capability(),  # the ISA torch's kernels use
        "cpu_count": os.cpu_count(),
        "cpu_usable": usable,
        "gpu_count": len(gpus),
        "gpus": gpus,
        "cuda": torch.version.cuda,  # the CUDA torch was built with (None: a CPU build)
        "cudnn": torch.backends.cudnn.version() if torch.cuda.is_available() else None,
        "platform": platform.platform(),
        "host": platform.node(),
    }


def _git(*args: str, cwd: Path) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, text=True,
                             timeout=30)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout if out.returncode == 0 else None


def _new_file_diff(name: str, project_dir: Path) -> str:
    """A new file as a diff that creates it (git diff --no-index exits 1 when files differ)."""
    path = project_dir / name
    if not path.is_file() or path.stat().st_size > NEW_FILE_MAX_BYTES:
        return ""
    try:
        out = subprocess.run(["git", "-C", str(project_dir), "diff", "--no-index", "--no-color",
                              "--", "/dev/null", name], capture_output=True, text=True, timeout=30)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return out.stdout if out.returncode == 1 else ""


def git_state(project_dir: Path = PROJECT_DIR) -> dict[str, Any]:
    """The commit and whether tracked files differ from it, without the diff (None outside git)."""
    commit = _git("rev-parse", "HEAD", cwd=project_dir)
    status = (
        _git("status", "--porcelain", "--untracked-files=no", cwd=project_dir) if commit else None
    )
    return {"commit": commit.strip() if commit else None,
            "dirty": bool(status.strip()) if status is not None else None}  # fmt: skip


def code_state(run_dir: Path, project_dir: Path = PROJECT_DIR) -> dict[str, Any]:
    """The commit, whether the tree differs from it, and then the diff (tracked files against the
    commit, staged or not, and new files git does not ignore) saved as RUN_DIR/code.diff:
    `git apply code.diff` on the commit gives the code that ran. None values outside git."""
    commit = _git("rev-parse", "HEAD", cwd=project_dir)
    if commit is None:
        return {"commit": None, "dirty": None, "diff": None}
    diff = _git("diff", "HEAD", "--no-color", "--no-ext-diff", cwd=project_dir) or ""
    untracked = (_git("ls-files", "--others", "--exclude-standard", cwd=project_dir) or "").split()
    for name in untracked[:UNTRACKED_MAX]:
        diff += _new_file_diff(name, project_dir)
    state: dict[str, Any] = {"commit": commit.strip(), "dirty": bool(diff), "diff": None,
                             "untracked": untracked[:UNTRACKED_MAX]}  # fmt: skip
    if diff:
        data = redact(diff).encode()
        note = b""
        if len(data) > DIFF_MAX_BYTES:
            note = (f"\n# code.diff cut at {DIFF_MAX_BYTES} of {len(data)} bytes; the full diff: "
                    f"git diff {commit.strip()[:12]} in the checkout\n").encode()  # fmt: skip
            data = data[:DIFF_MAX_BYTES]
        run_dir.mkdir(parents=True, exist_ok=True)
        # every DDP rank writes the same text (a cut may split a character: replaced)
        write_text_atomic(run_dir / DIFF_FILE, (data + note).decode("utf-8", "replace"))
        state.update(diff=DIFF_FILE, diff_bytes=len(diff.encode()), diff_truncated=bool(note))
    return state


def provenance(run_dir: Path, argv: list[str] | None = None) -> dict[str, Any]:
    """Everything above, as meta keys: command, versions, hardware, git."""
    return {"command": command_line(argv), "versions": versions(), "hardware": hardware(),
            "git": code_state(Path(run_dir))}  # fmt: skip


def save_to_wandb(experiment: Any, run_dir: Path) -> None:
    """W&B's own code saving where it applies: code.diff among the run's files (uploaded with
    it, or staged in the offline run). Call on rank zero after the W&B run started."""
    path = Path(run_dir) / DIFF_FILE
    if path.is_file():
        experiment.save(str(path), base_path=str(run_dir), policy="now")
