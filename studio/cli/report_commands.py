"""The tear sheet of a run: ``studio report RUN_DIR --to report.html|report.png [--split test]``."""

from __future__ import annotations

import argparse

from studio.cli.errors import CliError


def add_report_commands(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "report", help="a run's tear sheet: score groups, IC, IC by month, RankIC decay, turnover, long-short",
        description="Write the tear sheet of one split of RUN_DIR, made from its predictions.parquet and "
                    "daily.csv: the cumulative return of 5 score groups (G1 the highest scores) and G1-G5, IC "
                    "per date with its 20-date rolling mean, mean IC by month, RankIC decay over horizons 1..10 "
                    "(within the split), the turnover of the top and bottom groups, and the long-short return "
                    "gross and net of the run's cost, under a headline table. A .png is the figure; a .html "
                    "is one self-contained page with the figure and every number as tables "
                    "(docs/research.md). Exit 2 with one line when the run cannot be used.")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--to", required=True, metavar="FILE", help="report.html (a page) or report.png (the figure)")
    p.add_argument("--split", default="test", help="the split to show: train, valid or test (default test)")
    p.set_defaults(run=report_command)


def report_command(args: argparse.Namespace) -> int:
    from studio.core.text import printable
    from studio.train.report import ReportError, headline_cells, write_report

    try:
        sheet = write_report(args.run_dir, args.to, args.split)
    except ReportError as exc:
        raise CliError(str(exc)) from None
    first, last = sheet.dates[0].date(), sheet.dates[-1].date()
    print(f"wrote {printable(args.to)}: the {printable(sheet.split)} split of {printable(args.run_dir)}, "
          f"{len(sheet.dates)} dates ({first} .. {last})")
    print("  " + ", ".join(f"{label} {value}" for label, value in headline_cells(sheet)))
    for note in sheet.notes:
        print(f"  note: {printable(note)}")
    return 0
