"""Scores of new bars from a finished run: ``studio predict RUN_DIR [--data PATH] [--dates ...] [--to FILE]``."""

from __future__ import annotations

import argparse

from studio.cli.errors import CliError

#: dates the summary shows without --to (the first and the last ones when there are more)
SHOWN_DATES = 8


def add_predict_commands(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "predict", help="score the stocks of some dates with a finished run (new bars in, scores out)",
        description="Score every stock of the chosen dates with RUN_DIR's frozen graph and best weights. The "
                    "inputs are made from raw bars as training made them: the run's import settings, window, "
                    "features and stored normalisation (preprocess.json, fitted on its training dates and "
                    "never refitted). Writes date, symbol, score and rank within the date (1: the highest), "
                    "with the label and the date's IC where the label is known; dates with too few stocks, "
                    "the run's symbols the data lacks and stocks with bars missing in their window are "
                    "counted. Exit 2 with one line when the run, the data or the dates cannot be used "
                    "(docs/desk.md).")
    p.add_argument("run_dir", metavar="RUN_DIR",
                   help="a finished run's folder, as studio train printed it (runs/DATE-GRAPH; of a walk-forward "
                        "run, one of its folds/fold-K)")
    p.add_argument("--data", metavar="PATH",
                   help="the bars to score: a file or folder like the run's own (qlib:DIR, or DIR, for a run on a "
                        "Qlib folder), read with the run's import settings and bars per day; give enough days "
                        "before the first date for the window and its history (docs/desk.md). Default: the run's "
                        "own data, at the absolute path it recorded, else as it was typed")
    p.add_argument("--dates", default="last", metavar="WHICH",
                   help="last (the default: the data's last trading date), YYYY-MM-DD, or A..B (every trading "
                        "date from A to B, both included)")
    p.add_argument("--to", metavar="FILE",
                   help="scores.csv, scores.parquet, or pred.pkl (Qlib's SignalRecord format: index datetime, "
                        "instrument; column score); without it a short summary is printed")
    p.set_defaults(run=predict_command)


def predict_command(args: argparse.Namespace) -> int:
    from studio.core.text import printable
    from studio.train.predict import PredictError, predict, write_scores

    try:
        result = predict(args.run_dir, args.data, args.dates)
        if args.to:
            write_scores(result.frame, args.to)
    except PredictError as exc:
        raise CliError(str(exc)) from None
    frame = result.frame
    days = frame["date"].drop_duplicates()
    span = f"{days.iloc[0].date()}" + (f" .. {days.iloc[-1].date()}" if len(days) > 1 else "")
    print(f"{printable(args.run_dir)}: {len(frame)} scores of {len(days)} date(s), {span}, from "
          f"{printable(result.source)}")
    if args.to:
        print(f"wrote {printable(args.to)}")
    else:
        _summary(frame, days)
    for note in result.notes:
        print(f"  note: {printable(note)}")
    return 0


def _summary(frame, days) -> None:
    from studio.cli.table import format_table
    from studio.core.text import printable

    shown = list(days) if len(days) <= SHOWN_DATES else [*days[:SHOWN_DATES // 2], *days[-SHOWN_DATES // 2:]]
    rows = []
    for day in shown:
        part = frame[frame["date"] == day]
        ic = part["ic"].iloc[0] if "ic" in part else float("nan")
        rows.append([str(day.date()), str(len(part)), "-" if ic != ic else f"{ic:+.4f}",
                     ", ".join(printable(s) for s in part["symbol"].head(3)),
                     ", ".join(printable(s) for s in part["symbol"].tail(3))])
    print(format_table(["date", "stocks", "IC", "top 3", "bottom 3"], rows))
    if len(days) > SHOWN_DATES:
        print(f"  ({len(days) - SHOWN_DATES} dates between not shown; --to FILE writes them all)")
