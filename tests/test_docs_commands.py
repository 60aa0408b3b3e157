"""Every command in README.md, docs/*.md and `train.py --help` still runs as written.

What is checked, without training and without data (the config checks need none):
- `python train.py ...`: the overrides pass the checks train.py runs before anything starts
  (composition, types, value ranges, model fits data, a dry build), all in one call of the sweep
  runner's checker, which composes each set of group choices once. `-m` multiruns: every run. A `$ python train.py ...` line followed by `error: MESSAGE` must fail with that
  message (`...` in it stands for any text).
- `python sweep.py ...`: the arguments parse; `run` also loads the sweep file and applies its
  overrides. `python sample.py ...`: the arguments parse. `python -m MODULE`: the module exists.
  `python FILE.py`, `wandb sweep FILE`: the file exists.

Placeholders: `seed=S` / `$S` (a shell loop's seed) become 0. Other placeholders (DIR, RUN_DIR,
PATH, DATE/TIME, ENTITY/PROJECT/SWEEP_ID) are only ever paths, which the checks do not open, with
one exception: `pretrained=FILE` must be a file, written by the doc's previous command; an empty
stand-in is made in a scratch working directory. A code block whose preceding line is
`<!-- docs-test: skip (why) -->` is not run (commands that fail on files, not on the config).
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ["README.md", *sorted(p.name for p in (ROOT / "docs").glob("*.md"))]
HELP_FILE = ROOT / "conf" / "hydra" / "help" / "harness.yaml"
SKIP_MARKER = "<!-- docs-test: skip"
ENV_ASSIGNMENT = re.compile(r"^[A-Z_][A-Z0-9_]*=")
SEED_PLACEHOLDER = re.compile(r"\$S\b|(?<=seed=)S\b")
PRINTING_FLAGS = {"--help", "-h", "--cfg", "-c", "--info", "-i"}  # train.py prints and exits


@dataclass(frozen=True)
class Command:
    where: str  # FILE:LINE
    argv: tuple[str, ...]  # after `python` (or the program name), placeholders substituted
    error: str | None = None  # the documented `error: ...` line, for commands meant to fail


def _commands_in_block(lines: list[tuple[int, str]], where: str) -> list[Command]:
    joined: list[tuple[int, str]] = []  # backslash continuations joined
    for n, line in lines:
        if joined and joined[-1][1].endswith("\\"):
            joined[-1] = (joined[-1][0], joined[-1][1][:-1] + " " + line.strip())
        else:
            joined.append((n, line.strip()))
    found = []
    for i, (n, line) in enumerate(joined):
        text = line.removeprefix("$ ")
        following = joined[i + 1][1] if i + 1 < len(joined) else ""
        error = following.removeprefix("error: ") if following.startswith("error: ") else None
        argv = _argv(text)
        if argv:
            found.append(Command(f"{where}:{n}", argv, error))
    return found


def _argv(line: str) -> tuple[str, ...] | None:
    """The command's words without leading VAR=value and with placeholders substituted, or None
    when it is not a command this test checks."""
    line = re.sub(r"^\s*(for .*?; do|do)\s+", "", line)
    try:
        words = shlex.split(line, comments=True)
    except ValueError:
        return None
    while words and ENV_ASSIGNMENT.match(words[0]):
        words = words[1:]
    words = [SEED_PLACEHOLDER.sub("0", w) for w in words]
    if len(words) >= 2 and words[0] == "python" and words[1] != "-c":
        return tuple(words[1:])
    if words[:2] == ["wandb", "sweep"]:
        return tuple(words)
    return None


def doc_commands(name: str) -> list[Command]:
    text = (ROOT / ("" if name == "README.md" else "docs") / name).read_text()
    commands, block, skip, previous = [], None, False, ""
    for n, line in enumerate(text.splitlines(), start=1):
        if line.lstrip().startswith("```"):
            if block is None:
                block, skip = [], previous.startswith(SKIP_MARKER)
            else:
                if not skip:
                    commands += _commands_in_block(block, name)
                block = None
        elif block is not None:
            block.append((n, line))
        if line.strip():
            previous = line.strip()
    return commands


def help_commands() -> list[Command]:
    lines = [(n, line) for n, line in enumerate(HELP_FILE.read_text().splitlines(), start=1)]
    keep = [(n, line) for n, line in lines if line.strip().startswith("python ")]
    return _commands_in_block(keep, HELP_FILE.name)


ALL = [c for name in SOURCES for c in doc_commands(name)] + help_commands()


def check_overrides(overrides: list[str]):
    from harness.config.command import check_overrides as check

    return check(overrides)


def multirun_combinations(overrides: list[str]) -> list[list[str]]:
    """Each run a `-m` multirun makes: the product of every sweep override's values."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(overrides)
    choices = [
        [f"{o.get_key_element()}={v}" for v in o.sweep_string_iterator()]
        if o.is_sweep_override()
        else [o.input_line]
        for o in parsed
    ]
    return [list(c) for c in itertools.product(*choices)]


class Parsed(Exception):
    """Raised from inside argparse with the parsed arguments, so the program stops there."""

    def __init__(self, result) -> None:
        self.result = result


def parse_only(method: str, main, argv: list[str]):
    """What `main(argv)` parsed (argparse's `method`), stopping before it does anything."""
    original = getattr(argparse.ArgumentParser, method)
    depth = 0  # subcommands parse inside the main parser's call: stop when that one returns

    def stop(self, *args, **kwargs):
        nonlocal depth
        depth += 1
        try:
            result = original(self, *args, **kwargs)
        finally:
            depth -= 1
        if depth:
            return result
        raise Parsed(result)

    with pytest.MonkeyPatch.context() as patch, pytest.raises(Parsed) as caught:
        patch.setattr(argparse.ArgumentParser, method, stop)
        main(argv)
    return caught.value.result


def train_runs(command: Command) -> list[list[str]]:
    """The override lists of the runs a train.py command makes, after writing stand-ins for the
    files earlier commands of its doc write (into the current directory)."""
    flags = [a for a in command.argv[1:] if a.startswith("-")]
    overrides = [a for a in command.argv[1:] if not a.startswith("-") and a != "job"]  # --cfg job
    assert set(flags) <= PRINTING_FLAGS | {"-m", "--multirun"}, f"{command.where}: flags {flags}"
    for o in overrides:
        key, _, value = o.partition("=")
        if key == "pretrained" and value != "null":
            Path(value).parent.mkdir(parents=True, exist_ok=True)
            Path(value).touch()
    return multirun_combinations(overrides) if {"-m", "--multirun"} & set(flags) else [overrides]


def check_train_commands(commands: list[Command]) -> None:
    """Fail naming the first command (FILE:LINE) one of whose runs train.py would refuse."""
    from harness.errors import ConfigError
    from harness.sweep.validate import check_runs

    current = None

    def runs():
        nonlocal current
        for command in commands:
            current = command
            yield from train_runs(command)

    try:
        check_runs(runs())
    except ConfigError as e:
        pytest.fail(f"{current.where}: python {' '.join(current.argv)}: {e}")


def check_documented_error(command: Command) -> None:
    from harness.errors import ConfigError

    with pytest.raises(ConfigError) as caught:
        check_overrides([a for a in command.argv[1:] if not a.startswith("-")])
    pattern = ".*".join(re.escape(part.strip()) for part in command.error.split("..."))
    assert re.fullmatch(pattern, str(caught.value), re.S), str(caught.value)


def check_sweep(argv: list[str]) -> None:
    import sweep
    from harness.sweep.spec import apply_extra, load_spec

    args, rest = parse_only("parse_known_args", sweep.main, argv)
    assert not rest or (args.command == "run" and all("=" in r for r in rest)), rest
    if args.command == "run":
        apply_extra(load_spec(ROOT / args.sweep), [*args.overrides, *rest])


def check_command(command: Command) -> None:
    """Raise (or fail) if a command other than a train.py run no longer runs as written."""
    program, *argv = command.argv
    if program == "train.py":
        assert command.error, "train.py runs are checked together: check_train_commands"
        check_documented_error(command)
    elif program == "sweep.py":
        check_sweep(argv)
    elif program == "sample.py":
        import sample

        parse_only("parse_args", sample.main, argv)
    elif program == "-m":
        assert importlib.util.find_spec(argv[0]) is not None, f"no module {argv[0]}"
    elif program == "wandb":
        assert (ROOT / argv[1]).is_file() or "NAME" in argv[1], f"no sweep file {argv[1]}"
    else:
        assert (ROOT / program).is_file(), f"no file {program}"
    assert command.error is None or program == "train.py", "only train.py errors are checked"


def test_the_docs_hold_the_commands_they_should() -> None:
    """The extraction finds the commands (a broken extractor would pass every doc)."""
    programs = [c.argv[0] for c in ALL]
    assert programs.count("train.py") >= 40
    assert {"sweep.py", "sample.py", "-m", "wandb"} <= set(programs)
    assert sum(c.error is not None for c in ALL) >= 8
    assert any(c.where.startswith("harness.yaml") for c in ALL)


TRAIN_RUNS = [c for c in ALL if c.argv[0] == "train.py" and c.error is None]
OTHERS = [c for c in ALL if c not in TRAIN_RUNS]


@pytest.mark.slow
def test_documented_train_commands_pass_the_checks(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # stand-in files go here, never into the checkout
    check_train_commands(TRAIN_RUNS)


@pytest.mark.parametrize("command", OTHERS, ids=[c.where for c in OTHERS])
def test_documented_command_runs(command: Command) -> None:
    check_command(command)


@pytest.mark.parametrize(
    "line",
    [
        "python train.py optim.lrr=1",  # no such key
        "python train.py -m optim=sgd,adamx",  # one run of a multirun
        "python train.py --cfg job data=nope",  # the overrides of a printing command
    ],
)
def test_a_broken_train_command_fails(line: str, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(pytest.fail.Exception, match="test:1"):
        check_train_commands([Command("test:1", _argv(line))])


@pytest.mark.parametrize(
    "line",
    [
        "python sweep.py run sweeps/no_such_sweep.yaml --out runs/x",
        "python sweep.py run sweeps/optim_lr_digits.yaml --out runs/x optim.lr=7",  # not a swept value
        "python sweep.py report",  # no source
        "python sample.py CKPT --tokens many",
        "python -m harness.no_such_module",
        "wandb sweep sweeps/no_such_sweep.yaml",
    ],
)
def test_a_broken_command_fails(line: str) -> None:
    from harness.errors import ConfigError

    with pytest.raises((ConfigError, AssertionError, SystemExit)):
        check_command(Command("test", _argv(line)))


def test_a_wrong_documented_error_fails() -> None:
    command = Command("test", _argv("python train.py optim=adamx"), error="unknown key optim")
    with pytest.raises(AssertionError):
        check_command(command)
