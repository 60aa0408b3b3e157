class ConfigError(Exception):
    """A config the run cannot use. The message names the key, the bad value and what is
    allowed; train.py prints it without a traceback and exits with status 2."""


class DataUnavailableError(Exception):
    """The data the run needs is missing or corrupt (exit status 2, like a bad config)."""
