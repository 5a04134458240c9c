"""The command line's standard streams, made safe for text from files.

Ids, names, descriptions and paths come from files nobody here wrote. Every write to stdout and stderr
during a command goes through :class:`SafeStream`, which escapes non-printable characters (ESC
sequences that retitle the window or clear the screen, C1 controls, NUL, carriage returns, lone
surrogates that a UTF-8 terminal cannot even encode) and keeps newlines and tabs. The command line's
own cursor control (the progress line's carriage return) goes through :func:`control`.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import TextIO

from studio.core.text import printable


class SafeStream:
    """A text stream whose ``write`` escapes non-printable characters; everything else is the
    wrapped stream's."""

    def __init__(self, stream: TextIO) -> None:
        self.raw = stream

    def write(self, text: str) -> int:
        self.raw.write(printable(text, keep="\n\t"))
        return len(text)

    def writelines(self, lines) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str):
        return getattr(self.raw, name)


def control(text: str, stream: TextIO | None = None) -> None:
    """Write the command line's own control characters (not text from a file) unescaped."""
    stream = stream if stream is not None else sys.stderr
    getattr(stream, "raw", stream).write(text)


@contextlib.contextmanager
def safe_streams() -> Iterator[None]:
    """sys.stdout and sys.stderr escape non-printable characters inside the block."""
    saved = sys.stdout, sys.stderr
    sys.stdout = SafeStream(saved[0]) if not isinstance(saved[0], SafeStream) else saved[0]
    sys.stderr = SafeStream(saved[1]) if not isinstance(saved[1], SafeStream) else saved[1]
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved
