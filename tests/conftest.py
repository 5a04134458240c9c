"""Shared fixtures. Qt tests render offscreen (no display needed)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")

# Small tensors everywhere: one thread avoids OpenMP hand-offs, which stall for milliseconds when
# another process holds the second core (CI machines have two).
import torch

torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parent.parent
GRAPHS = ROOT / "graphs"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def gallery_files() -> list[Path]:
    """Every graph file of the gallery, blocks included."""
    return sorted(GRAPHS.rglob("*.json"))


def gallery_models() -> list[Path]:
    import json

    return [p for p in gallery_files() if json.loads(p.read_text(encoding="utf-8")).get("kind") == "model"]


@pytest.fixture(scope="session")
def registry():
    from studio.nodes import default_registry

    return default_registry()
