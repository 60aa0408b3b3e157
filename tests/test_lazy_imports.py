"""Modules a run does not need stay unimported: the download helpers load torchvision only when
they download or verify a file. (Lightning itself imports torchvision and matplotlib through
torchmetrics whenever they are installed; see docs/BENCHMARKS.md.)"""

from __future__ import annotations

import subprocess
import sys

from benchmarks.common import ROOT


def imported_after(statement: str, modules: list[str]) -> list[str]:
    probe = f"import sys; {statement}; print(' '.join(m for m in {modules!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True,
                         check=True)  # fmt: skip
    return out.stdout.split()


def test_the_download_helpers_do_not_import_torchvision() -> None:
    assert imported_after("import datamodules.downloads", ["torchvision"]) == []
