"""Standard streams that outlive their reader: ``frnn sweep ... | head -1`` must not kill a run.

Python ignores SIGPIPE, so a write to a pipe whose reader has exited raises
BrokenPipeError. Without care that error would end a training run or a sweep at its next
line of output -- after minutes of work, with an empty folder -- although nothing is wrong
with the run. :func:`survive_closed_pipes` wraps ``sys.stdout`` and ``sys.stderr`` so that
the first broken write sends that stream to ``os.devnull`` (by ``dup2`` on its file
descriptor, so the interpreter's own flush at exit is quiet too), says so once on the
other stream when it can (only once a run folder exists), and lets the command finish; its
files are complete as usual.
"""

from __future__ import annotations

import io
import os
import sys
from typing import TextIO


#: Set by :func:`mark_run_active` once a command has a run folder: only then does a closed
#: stdout earn the note that the run goes on.
run_active = False


def mark_run_active() -> None:
    """Record that this process now writes a run folder (see :data:`run_active`)."""
    global run_active
    run_active = True


class SurvivingStream(io.TextIOBase):
    """A text stream that turns a closed pipe into a sink instead of an exception.

    Parameters
    ----------
    stream : TextIO
        The stream to wrap (``sys.stdout`` or ``sys.stderr``).
    name : str
        "stdout" or "stderr", for the note.
    """

    def __init__(self, stream: TextIO, name: str) -> None:
        self._stream = stream
        self._name = name
        self.broken = False

    def _lost(self) -> None:
        self.broken = True
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())
            os.close(devnull)
        except (OSError, ValueError):
            pass
        other = sys.__stderr__ if self._name == "stdout" else None
        if other is not None and run_active:  # nothing to reassure about after --help | head
            try:
                other.write(f"note: {self._name} was closed by its reader; the run goes on and writes its folder as usual\n")
                other.flush()
            except (OSError, ValueError):
                pass

    def write(self, text: str) -> int:
        if not self.broken:
            try:
                return self._stream.write(text)
            except BrokenPipeError:
                self._lost()
        return len(text)

    def flush(self) -> None:
        if not self.broken:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._lost()

    def isatty(self) -> bool:
        return not self.broken and self._stream.isatty()

    def fileno(self) -> int:
        return self._stream.fileno()

    def writable(self) -> bool:
        return True

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self._stream.encoding

    @property
    def errors(self) -> str | None:  # type: ignore[override]
        return self._stream.errors


def survive_closed_pipes() -> None:
    """Replace ``sys.stdout`` and ``sys.stderr`` by :class:`SurvivingStream` wrappers (idempotent)."""
    if not isinstance(sys.stdout, SurvivingStream) and sys.stdout is not None:
        sys.stdout = SurvivingStream(sys.stdout, "stdout")
    if not isinstance(sys.stderr, SurvivingStream) and sys.stderr is not None:
        sys.stderr = SurvivingStream(sys.stderr, "stderr")
