"""Plain-text tables for the terminal."""

from __future__ import annotations

from collections.abc import Sequence

from studio.core.text import printable


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]], align: str = "",
                 indent: int = 0) -> str:
    """Columns padded to their widest cell; ``align`` has one 'l' or 'r' per column (default 'l')."""
    # cells may hold names from files: escaped here, so the widths are those of what is shown
    cells = [[printable(h) for h in headers]] + [[printable(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    align = (align or "").ljust(len(headers), "l")
    pad = " " * indent

    def line(row: list[str]) -> str:
        parts = [c.rjust(w) if a == "r" else c.ljust(w) for c, w, a in zip(row, widths, align, strict=True)]
        return (pad + "  ".join(parts)).rstrip()

    rule = pad + "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule, *(line(r) for r in cells[1:])])
