"""The one exception the command line turns into a one-line message and an exit code, and the one line
for a full disk, wherever in a command it is met."""

from __future__ import annotations

import os

from studio.core.files import DiskFullError, no_room
from studio.core.text import printable


class CliError(Exception):
    """A one-line message for the user; ``code`` is the exit code (2: the input cannot be used)."""

    def __init__(self, message: str, code: int = 2) -> None:
        from studio.core.text import one_line

        super().__init__(one_line(message))  # one line whatever names from files it echoes
        self.code = code


def disk_full_line(exc: BaseException) -> str | None:
    """"disk full: PATH" when ``exc`` (or what caused it) is a write that found no room, else None.
    PATH is the file being written where anything says which."""
    if not no_room(exc):
        return None
    seen: set[int] = set()
    link: BaseException | None = exc
    filename = None
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        if isinstance(link, DiskFullError):
            return str(link)
        if isinstance(link, OSError) and link.filename and filename is None:
            filename = link.filename
        link = link.__cause__ or link.__context__
    return f"disk full: {printable(os.fspath(filename))}" if filename else "disk full (no room left to write)"
