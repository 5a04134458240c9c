"""Plain-text tables for the terminal."""

from __future__ import annotations

from collections.abc import Sequence

from studio.core.text import columns, printable


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]], align: str = "",
                 indent: int = 0) -> str:
    """Columns padded to their widest cell; ``align`` has one 'l' or 'r' per column (default 'l')."""
    # cells may hold names from files: escaped here, so the widths are those of what is shown
    cells = [[printable(h) for h in headers]] + [[printable(c) for c in row] for row in rows]
    widths = [max(columns(row[i]) for row in cells) for i in range(len(headers))]
    align = (align or "").ljust(len(headers), "l")
    pad = " " * indent

    def fit(cell: str, width: int, how: str) -> str:  # padded by the columns it takes (CJK names take two)
        gap = " " * (width - columns(cell))
        return gap + cell if how == "r" else cell + gap

    def line(row: list[str]) -> str:
        parts = [fit(c, w, a) for c, w, a in zip(row, widths, align, strict=True)]
        return (pad + "  ".join(parts)).rstrip()

    rule = pad + "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule, *(line(r) for r in cells[1:])])
