"""Parquet cache of imported bar panels.

An imported panel is stored as one Parquet file: a column per feature (float32, the panel's values
flattened to ``S * D * P`` rows) and the rest of the panel (symbols, dates, traded flags, notes,
counts) as JSON in the file's metadata. The file name is a hash of everything the panel depends on:
the source files' resolved paths, sizes and modification times, the import settings and the
importer's version, so changing any of them builds a new entry.

The cache lives in ``$STUDIO_CACHE_DIR/imports`` (default ``~/.cache/model-studio/imports``). A cache
file that cannot be read or does not describe a valid panel is ignored (and rebuilt by the importer);
a cache that cannot be written only costs the next load its speed. A cache file is opened as itself only
(studio.core.owned_dir): a symbolic link or a special file planted under its name is ignored, never
followed, and the rebuilt entry is renamed over the link itself.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from studio.data.panel import BarPanel

_META_KEY = b"model_studio.panel"
PANEL_FORMAT = 1


def cache_root() -> Path:
    """``$STUDIO_CACHE_DIR``, else ``$XDG_CACHE_HOME/model-studio``, else ``~/.cache/model-studio``."""
    env = os.environ.get("STUDIO_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "model-studio"


def imports_dir() -> Path:
    return cache_root() / "imports"


def file_fingerprint(path: Path) -> list:
    """Resolved path, size and modification time (ns): what makes a cached import stale."""
    st = path.stat()
    return [str(path.resolve()), st.st_size, st.st_mtime_ns]


def cache_key(fingerprints: list[list], settings: dict, version: int) -> str:
    text = json.dumps({"version": version, "format": PANEL_FORMAT, "files": fingerprints, "settings": settings},
                      sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def cache_path(key: str) -> Path:
    return imports_dir() / f"{key}.parquet"


def panel_description(panel: BarPanel) -> dict:
    """Everything of ``panel`` but its values, as JSON: symbols, dates, features, bars per day, the
    traded bits (packed, base64), source, notes and counts. panel_from_description reads it back."""
    return {
        "format": PANEL_FORMAT,
        "symbols": list(panel.symbols),
        "dates": [str(d) for d in panel.dates.astype("datetime64[D]")],
        "features": list(panel.features),
        "bars_per_day": int(panel.bars_per_day),
        "traded": base64.b64encode(np.packbits(panel.traded.astype(bool).ravel()).tobytes()).decode("ascii"),
        "source": panel.source,
        "notes": list(panel.notes),
        "counts": {k: int(v) for k, v in panel.counts.items()},
    }


def panel_from_description(meta: dict, values: np.ndarray) -> BarPanel:
    """The panel a panel_description describes, with ``values`` (S, D * P, F); a description that is
    not whole raises KeyError, ValueError or TypeError."""
    symbols, features = list(meta["symbols"]), list(meta["features"])
    dates = np.array(meta["dates"], dtype="datetime64[D]")
    s, d = len(symbols), len(dates)
    bits = np.frombuffer(base64.b64decode(meta["traded"]), dtype=np.uint8)
    traded = np.unpackbits(bits, count=s * d).astype(bool).reshape(s, d)
    return BarPanel(symbols, dates, features, int(meta["bars_per_day"]), values, traded,
                    source=str(meta.get("source", "")), notes=[str(n) for n in meta["notes"]],
                    counts={str(k): int(v) for k, v in meta["counts"].items()})


def write_panel(path: Path, panel: BarPanel) -> bool:
    """Write ``panel`` to ``path`` (atomically: a temporary file renamed into place). False on failure."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    meta = panel_description(panel)
    flat = np.ascontiguousarray(panel.values, dtype=np.float32).reshape(-1, len(panel.features))
    columns = [pa.array(flat[:, i]) for i in range(len(panel.features))]
    schema = pa.schema([pa.field(name, pa.float32()) for name in panel.features],
                       metadata={_META_KEY: json.dumps(meta).encode("utf-8")})
    table = pa.Table.from_arrays(columns, schema=schema)
    tmp_name = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=path.stem, suffix=".tmp", dir=path.parent)
        os.close(fd)
        pq.write_table(table, tmp_name, compression="none", use_dictionary=False, write_statistics=False)
        os.replace(tmp_name, path)
        return True
    except OSError:
        if tmp_name is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)
        return False


def read_panel(path: Path) -> BarPanel | None:
    """The panel cached at ``path``; None when there is none or it is unreadable or inconsistent."""
    from studio.core.owned_dir import owned_file

    try:
        fh = owned_file(path, what="cache")
    except OSError:  # absent, or a link or a special file planted there (ForeignEntry): never followed
        return None
    try:
        import pyarrow.parquet as pq

        with fh:
            table = pq.read_table(fh, use_threads=True)
        meta = json.loads(table.schema.metadata[_META_KEY].decode("utf-8"))
        if meta.get("format") != PANEL_FORMAT:
            return None
        s, d, p = len(meta["symbols"]), len(meta["dates"]), int(meta["bars_per_day"])
        features = list(meta["features"])
        if table.column_names != features or table.num_rows != s * d * p:
            return None
        values = np.empty((s * d * p, len(features)), dtype=np.float32)
        for i, name in enumerate(features):
            values[:, i] = table.column(name).to_numpy()
        return panel_from_description(meta, values.reshape(s, d * p, len(features)))
    except Exception:  # a corrupt or foreign file: ignored, the importer rebuilds it
        return None
