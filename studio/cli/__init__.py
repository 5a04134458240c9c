"""The ``studio`` command line: every headless part of Model Studio.

Exit codes: 0 success; 1 the input was read but is not valid (the problems are listed); 2 the input
could not be used at all (missing or unreadable file, not a graph, bad option) with a one-line
error; a full disk is "disk full: PATH", also exit 2; 3 an internal error (one line; set STUDIO_DEBUG=1
for the traceback).

Commands that only need the graph (validate, summary, nodes, schema) import neither torch nor Qt.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence

from studio import __version__
from studio.cli.baseline_commands import add_baseline_commands
from studio.cli.data_commands import add_data_commands
from studio.cli.ensemble_commands import add_ensemble_commands
from studio.cli.errors import CliError, disk_full_line
from studio.cli.graph_commands import add_graph_commands, summary_command
from studio.cli.gui_command import add_gui_command, gui_available, gui_command
from studio.cli.output import safe_streams
from studio.cli.paths import default_graph_path
from studio.cli.predict_commands import add_predict_commands
from studio.cli.report_commands import add_report_commands
from studio.cli.sweep_commands import add_sweep_commands
from studio.cli.train_commands import add_train_commands
from studio.core.text import error_line

EXIT_OK, EXIT_INVALID, EXIT_UNUSABLE, EXIT_INTERNAL = 0, 1, 2, 3


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad option is a one-line error with exit 2 (argparse's own code for it)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise CliError(f"{self.prog}: {message} (see {self.prog} --help)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="studio",
        description="Model Studio: design, train and compare networks for cross-sectional return prediction.",
        epilog="Without a command: opens the studio on graphs/default.json (on a machine without a screen: "
               "describes it). Exit codes: 0 ok, 1 invalid graph, 2 unusable input, 3 internal error.",
    )
    parser.add_argument("--version", action="version", version=f"Model Studio {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    add_graph_commands(commands)
    add_train_commands(commands)
    add_sweep_commands(commands)
    add_gui_command(commands)
    add_data_commands(commands)
    add_report_commands(commands)
    add_predict_commands(commands)
    add_baseline_commands(commands)
    add_ensemble_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (``studio`` calls sys.exit with it)."""
    with safe_streams():
        return _main(list(sys.argv[1:] if argv is None else argv))


def _main(args_list: list[str]) -> int:
    try:
        parser = build_parser()
        args = parser.parse_args(args_list)
        if args.command is None:
            reason = gui_available()
            if reason is None:
                return gui_command(argparse.Namespace(file=str(default_graph_path()), screenshot=None))
            # a machine without a screen (or without PySide6): describe the default graph instead
            print(f"studio: the studio window cannot open here ({reason}); showing the default graph. "
                  "Train it headless with: studio train graphs/default.json", file=sys.stderr)
            return summary_command(argparse.Namespace(file=str(default_graph_path())))
        return args.run(args)
    except CliError as exc:
        print(f"studio: {exc}" if not str(exc).startswith("studio") else str(exc), file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print("studio: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:
        if os.environ.get("STUDIO_DEBUG"):
            traceback.print_exc()
        full = disk_full_line(exc)
        if full is not None:  # the machine's fault, not ours: one line naming the file, like bad input
            print(f"studio: {full}", file=sys.stderr)
            return EXIT_UNUSABLE
        first = error_line(exc) if str(exc).strip() else ""
        print(f"studio: internal error: {type(exc).__name__}: {first} (STUDIO_DEBUG=1 shows the traceback)",
              file=sys.stderr)
        return EXIT_INTERNAL
