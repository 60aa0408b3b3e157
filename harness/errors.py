class ConfigError(Exception):
    """A config the run cannot use. The message names the key, the bad value and what is
    allowed; train.py prints it without a traceback and exits with status 2."""


class DataUnavailableError(Exception):
    """The data the run needs is missing or corrupt (exit status 2, like a bad config)."""


class Diverged(Exception):
    """The training loss became NaN or infinite: the run stops, marked "diverged" (exit status 3),
    and keeps its last checkpoint, which was saved before the loss went bad."""

    def __init__(self, step: int, what: str) -> None:
        super().__init__(f"diverged at step {step}: {what}")
        self.step = step
