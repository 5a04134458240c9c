"""Where the studio finds its gallery of graphs."""

from __future__ import annotations

from pathlib import Path

import studio


def gallery_dir() -> Path:
    """graphs/ of the checkout (or of the current folder when the package was installed elsewhere)."""
    beside_package = Path(studio.__file__).resolve().parent.parent / "graphs"
    return beside_package if beside_package.is_dir() else Path.cwd() / "graphs"


def default_graph_path() -> Path:
    return gallery_dir() / "default.json"
