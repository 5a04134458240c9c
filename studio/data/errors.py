"""The one error of the data layer: every module of studio.data raises it, so it sits below them all
(re-exported by studio.data.panel and studio.data.importer, where callers have always found it)."""

from __future__ import annotations

from studio.core.text import one_line


class DataError(Exception):
    """Data that cannot be used as asked; the message is one line and names the file or field."""

    def __init__(self, message: object = "") -> None:
        # file names, symbols and features come from files: a newline in one must not break the line,
        # nor a 100,000-character name fill the screen
        super().__init__(one_line(message))
