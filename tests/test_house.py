"""The house rules a reader relies on: a module over ~250 lines says why in its first comment."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("harness", "datamodules", "diagnostics", "lightning_modules", "models", "optim")
LIMIT = 250  # lines
REASON = "Over 250 lines"


def test_every_module_over_250_lines_says_why_in_its_docstring() -> None:
    silent = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            text = path.read_text()
            if text.count("\n") > LIMIT and REASON not in (
                ast.get_docstring(ast.parse(text)) or ""
            ):
                silent.append(f"{path.relative_to(ROOT)} ({text.count(chr(10))} lines)")
    assert not silent, f"over {LIMIT} lines without '{REASON}: why' in the docstring: {silent}"
