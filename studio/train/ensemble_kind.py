"""What an ensemble run directory is, from its config.json alone (studio.train.ensemble makes them). Plain
data and text only, so that the lowest layers of studio.train (run diffs) can say it."""

from __future__ import annotations

import os
from pathlib import Path

from studio.core.text import printable

KIND = "ensemble"


def is_ensemble(config: dict) -> bool:
    return isinstance(config, dict) and config.get("kind") == KIND


def describe(run_dir: str | os.PathLike[str], config: dict) -> str:
    """One line saying what an ensemble run is: its size, combine method and members."""
    ensemble = config.get("ensemble") or {}
    names = [str(m.get("run")) for m in ensemble.get("members") or []]
    return (f"{printable(str(run_dir))} is an ensemble of {len(names)} runs ({ensemble.get('combine', '?')} "
            f"average of their scores): {printable(', '.join(names))}")


def member_paths(config: dict) -> list[Path]:
    """The members' run directories an ensemble's config.json records."""
    return [Path(m["path"]) for m in (config.get("ensemble") or {}).get("members") or []]
