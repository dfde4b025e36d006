"""Exceptions that carry a message meant for the user, not a traceback."""


class DlpipeError(Exception):
    """Base class of every error dlpipe raises on purpose.

    The message names the file, line or config key at fault and says how to fix it; the
    workflow scripts print it alone, without a traceback.
    """


class ConfigError(DlpipeError):
    """The configuration is invalid (unknown key, bad value, inconsistent settings)."""


class InputError(DlpipeError):
    """An input file is missing, unreadable or holds data dlpipe cannot use."""
