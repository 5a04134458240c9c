"""``studio gui``: open the desktop studio (the only command that loads Qt)."""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from pathlib import Path

from studio.cli.errors import CliError
from studio.cli.paths import default_graph_path, gallery_dir


def add_gui_command(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("gui", help="open the studio window (on FILE, or the default graph)",
                            description="Open the desktop studio. --screenshot renders the main window after "
                                        "loading into a PNG and exits (works without a display).")
    p.add_argument("file", nargs="?", metavar="FILE", help="a graph file (default: graphs/default.json)")
    p.add_argument("--screenshot", metavar="OUT.png", help="save a picture of the window and exit")
    p.set_defaults(run=gui_command)


def gui_available() -> str | None:
    """Why the window cannot open here, or None."""
    try:
        found = importlib.util.find_spec("PySide6") is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        return "PySide6 is not installed"
    platform = os.environ.get("QT_QPA_PLATFORM", "")
    if sys.platform.startswith("linux") and not platform and not (
            os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return "no display"
    return None


def gui_command(args: argparse.Namespace) -> int:
    file = args.file or str(default_graph_path())
    if not Path(file).is_file():
        raise CliError(f"{file}: no such file")
    if args.screenshot:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen" if gui_available() == "no display" else "")
        if not os.environ["QT_QPA_PLATFORM"]:
            del os.environ["QT_QPA_PLATFORM"]
    else:
        reason = gui_available()
        if reason:
            raise CliError(f"the studio window cannot open: {reason} (try --screenshot, or the headless commands)")
    from studio.gui.app import run  # Qt loads here, and only here

    return run(file, args.screenshot, gallery_dir())
