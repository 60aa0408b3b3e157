"""argparse for this project's commands, with a bad argument said in one line (argparse's own is
the whole usage, then the error): what was wrong, and where the usage is."""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn


class ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        print(f"error: {message} ({self.prog} --help)", file=sys.stderr)
        sys.exit(2)
