"""The errors a run ends with, each mapped to an exit status (harness.rundir.files): ConfigError
and datamodules.DatasetError (missing or corrupt data) exit with 2, Diverged with 3."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


class ConfigError(Exception):
    """A config the run cannot use. The message names the key, the bad value and what is
    allowed; train.py prints it without a traceback and exits with status 2."""


class Diverged(Exception):
    """The training loss became NaN or infinite: the run stops, marked "diverged" (exit status 3),
    and keeps its last checkpoint, which was saved before the loss went bad."""

    def __init__(self, step: int, what: str) -> None:
        super().__init__(f"diverged at step {step}: {what}")
        self.step = step


def chain(error: BaseException) -> Iterator[BaseException]:
    """`error`, then the one it was raised from or while handling, and so on."""
    seen: BaseException | None = error
    while seen is not None:
        yield seen
        seen = seen.__cause__ or seen.__context__


def from_ctrl_c(error: BaseException) -> bool:
    """Whether `error` is Ctrl-C's KeyboardInterrupt, or was raised while one was handled: a
    library may turn one into its own error (OmegaConf, interrupted mid-composition, an
    AttributeError, which the checks then report as a ConfigError)."""
    return any(isinstance(e, KeyboardInterrupt) for e in chain(error))


@contextlib.contextmanager
def constructor_errors(where: str) -> Iterator[None]:
    """Turn a constructor's ValueError/TypeError (also as Hydra's InstantiationException) into a
    ConfigError that says where it came from: a constructor knows its own rules best."""
    try:
        yield
    except ConfigError:
        raise
    except Exception as e:
        from hydra.errors import InstantiationException

        if isinstance(e, InstantiationException):
            raise ConfigError(f"{where}: {e.__cause__ or e}") from None
        if isinstance(e, (ValueError, TypeError)):
            raise ConfigError(f"{where}: {e}") from None
        raise
