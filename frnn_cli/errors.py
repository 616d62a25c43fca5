"""Exceptions shared by the library and the command line.

The CLI maps :class:`BadInput` to exit code 2 with its message on one line, and
:class:`ExperimentFailed` to exit code 1. Library code raises them; it never exits.
"""


class BadInput(ValueError):
    """Bad user input (a config key, a flag value, a file): exit code 2 in the CLI.

    The message is a single line naming what was wrong and what was expected.
    """


class ExperimentFailed(RuntimeError):
    """The experiment ran but failed (gradient check failed, a job failed): exit code 1."""


class Note(UserWarning):
    """Something the user should know that is not an error (e.g. an empty config file).

    Library code issues it with ``warnings.warn(text, Note)``; the CLI prints it as one line
    ``note: text`` on stderr and goes on.
    """
