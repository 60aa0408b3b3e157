"""What the benchmarks share: the machine's description, data files of the real sizes in the real
on-disk formats, running the harness in-process, and timing side by side."""

from __future__ import annotations

import contextlib
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# Written once, then reused: MNIST 60,000 + 10,000 and CIFAR-10 50,000 + 10,000 images of
# learnable random data (tests/fixtures.py), no download.
DATA_DIR = Path(os.environ.get("BENCH_DATA_DIR", "/tmp/harness-bench-data"))


def device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_average() -> tuple[float, float, float]:
    return os.getloadavg()


def machine() -> dict[str, Any]:
    import torch

    info = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": device(),
        "load_average": load_average(),
        "uptime": subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    return info


def bench_data() -> Path:
    """DATA_DIR holding MNIST/raw and cifar-10-batches-py at their real sizes (made on first use)."""
    from tests.fixtures import write_cifar10, write_mnist

    if not (DATA_DIR / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").is_file():
        write_mnist(DATA_DIR, "MNIST", n_train=60000, n_test=10000)
    if not (DATA_DIR / "cifar-10-batches-py" / "test_batch").is_file():
        write_cifar10(DATA_DIR, per_batch=10000)
    return DATA_DIR


# The data options of the benchmarks, pointed at bench_data() (checksums off: the files are not
# the published ones).
def data_overrides(data: str) -> list[str]:
    extra = ["data.verify=false"] if data == "cifar10" else []
    return [f"data={data}", f"data.root={bench_data()}", "data.download=false", *extra]


def compose(overrides: list[str]):
    from tests.conftest import compose as compose_config

    return compose_config(overrides)


def run_harness(overrides: list[str], run_dir: Path) -> dict[str, Any]:
    from harness.run.recipe import train

    return train(compose(overrides), run_dir)


def sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


FIRST_STEP = "first training step at "


def interleaved(candidates: dict[str, Callable[[], float]], repeats: int) -> dict[str, list[float]]:
    """Run each candidate once per round, in turn, `repeats` rounds: a slow spell on a shared
    machine then hits every candidate alike rather than one of them."""
    results: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(repeats):
        for name, fn in candidates.items():
            results[name].append(fn())
    return results


def summary(values: list[float]) -> str:
    if len(values) < 2:
        return f"{values[0]:.4g}"
    return f"{statistics.median(values):.4g} (min {min(values):.4g}, max {max(values):.4g})"


def paired_ratio(numerators: list[float], denominators: list[float]) -> float:
    """Median over rounds of numerator / denominator measured in the same round."""
    return statistics.median(a / b for a, b in zip(numerators, denominators, strict=True))


def paired_difference(a: list[float], b: list[float]) -> float:
    """Median over rounds of a - b measured in the same round."""
    return statistics.median(x - y for x, y in zip(a, b, strict=True))


def wall(command: list[str], env: dict[str, str] | None = None) -> float:
    """Seconds a command takes, start to exit."""
    started = time.perf_counter()
    subprocess.run(command, cwd=ROOT, env={**os.environ, **(env or {})}, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    return time.perf_counter() - started


PYTHON = sys.executable


class GPUUtilisation:
    """Samples nvidia-smi's GPU utilisation (percent of time a kernel ran), every 200 ms, while in
    the block; `mean_between(t0, t1)` averages the samples read between two perf_counter() times.
    No GPU or no nvidia-smi: no samples, and the mean is None."""

    def __enter__(self) -> GPUUtilisation:
        self.samples: list[tuple[float, float]] = []  # (perf_counter, percent)
        self.proc = None
        if device() == "cuda":
            try:
                self.proc = subprocess.Popen(
                    ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits",
                     "-lms", "200"], stdout=subprocess.PIPE, text=True)  # fmt: skip
            except OSError:
                return self
            self.reader = threading.Thread(target=self._read, daemon=True)
            self.reader.start()
        return self

    def _read(self) -> None:
        for line in self.proc.stdout:
            with contextlib.suppress(ValueError):
                self.samples.append((time.perf_counter(), float(line.split(",")[0])))

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.reader.join(timeout=5)

    def mean_between(self, start: float, end: float) -> float | None:
        inside = [pct for t, pct in self.samples if start <= t <= end]
        return statistics.mean(inside) if inside else None
