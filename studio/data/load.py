"""Bars from CSV / Parquet files into a BarPanel: the entry point above the two imports.

An unchanged import is read from the cache (:mod:`studio.data.cache`); files that fit in memory go
through :func:`studio.data.import_stages.import_in_memory`, larger ones through buckets on disk
(:mod:`studio.data.import_chunked`). It sits above both, so neither imports the other's caller.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from studio.data import cache as _cache
from studio.data import import_chunked, store
from studio.data.errors import DataError
from studio.data.import_stages import import_in_memory
from studio.data.importer import IMPORTER_VERSION, ImportConfig, code_digest, describe_source, find_files
from studio.data.panel import BarPanel


@dataclass
class ImportResult:
    panel: BarPanel
    files: list[Path]
    #: the panel was read from the cache
    from_cache: bool
    #: the cache entry (None with the cache off)
    cache_file: Path | None
    #: a fresh import was written to the cache (False: the cache folder is not writable)
    cached: bool = False


def import_bars(paths: str | os.PathLike | Sequence[str | os.PathLike], config: ImportConfig | None = None,
                *, cache: bool = True) -> ImportResult:
    """Import bars (from the cache when the files and settings are unchanged); see the importer's module
    doc. Files whose rows would not fit in memory go through :mod:`studio.data.import_chunked` into a
    memory-mapped panel."""
    config = config or ImportConfig()
    files = find_files(paths, config)
    items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    source = describe_source(items, files)
    cache_file = None
    if cache:
        try:
            prints = [_cache.file_fingerprint(f) for f in files]
        except OSError as exc:
            raise DataError(f"{getattr(exc, 'filename', None) or 'a file'}: cannot read "
                            f"({exc.strerror or exc})") from None
        settings = {**config.settings(), "code": code_digest()}
        cache_file = _cache.cache_path(_cache.cache_key(prints, settings, IMPORTER_VERSION))
        # an import kept in memory is one Parquet file; one larger than memory a folder with its
        # panel mapped (either holds the same panel)
        on_disk_entry = cache_file.with_suffix("")
        panel = import_chunked.read_cached(on_disk_entry) or _cache.read_panel(cache_file)
        if panel is not None:
            panel.source = source
            return ImportResult(panel, files, True, on_disk_entry if store.mapping(panel.values) is not None
                                else cache_file, True)
    if import_chunked.wants_disk(files):
        entry = cache_file.with_suffix("") if cache_file is not None else None
        panel = import_chunked.import_to_cache(files, config, source, entry)
        written = entry is not None and (entry / "panel.json").is_file()
        return ImportResult(panel, files, False, entry, written)
    panel = import_in_memory(files, config, source)
    written = cache_file is not None and _cache.write_panel(cache_file, panel)
    return ImportResult(panel, files, False, cache_file, written)


def load_bars(paths: str | os.PathLike | Sequence[str | os.PathLike], config: ImportConfig | None = None,
              *, cache: bool = True) -> BarPanel:
    """Import bars from CSV / Parquet files (a file, a folder or a list of them) into a BarPanel."""
    return import_bars(paths, config, cache=cache).panel
