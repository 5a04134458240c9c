"""What the importer and the chunked import both know of a bar file: its value fields and its format."""

from __future__ import annotations

from pathlib import Path

#: the numbers a bar carries, in the panel's feature order
VALUE_FIELDS = ("open", "high", "low", "close", "volume", "turnover")


def is_parquet(path: Path) -> bool:
    """A Parquet file by its name (anything else is read as CSV)."""
    return path.name.lower().endswith((".parquet", ".pq"))
