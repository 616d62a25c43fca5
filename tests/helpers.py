"""Assertions shared by the CLI tests.

``typer.testing.CliRunner`` catches every exception a command raises, stores it in
``result.exception`` (with ``result.exc_info``) and prints nothing, so "no Traceback in the
output" can never fail. These helpers look at the exception itself.
"""

from __future__ import annotations

import traceback


def msg(r) -> str:
    """Exit code, stdout, stderr and -- if the command raised -- the exception with its traceback."""
    text = f"exit {r.exit_code}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        text += "\nexception:\n" + "".join(traceback.format_exception(*r.exc_info))
    return text


def expect_exit(r, code: int) -> None:
    """Assert the command ended with ``code`` through frnn's own exit path, not an uncaught exception."""
    clean = r.exception is None or (isinstance(r.exception, SystemExit) and r.exception.code == code)
    assert r.exit_code == code and clean, msg(r)
