"""Ensembles of runs: ``studio ensemble RUN... | SEED_GROUP --to DIR [--combine rank|zscore]``."""

from __future__ import annotations

import argparse
from pathlib import Path

from studio.cli.errors import CliError


def add_ensemble_commands(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "ensemble", help="average the scores of several runs (seeds) into a run directory of its own",
        description="Combine finished runs on the same data, split and dates: each run's scores of a date are "
                    "ranked across the date's stocks (Qlib's CSRankNorm; --combine zscore: z-scored) and "
                    "averaged, on the test split and on train and valid where every run has them. DIR becomes "
                    "a run directory judged like any run (predictions.parquet, daily.csv, metrics.json, "
                    "pnl.png, report.html, baselines.json) that compare, report and the studio read. Give the "
                    "runs, or one seed group id (studio compare's group column) to take every run of that "
                    "group in --runs-dir. Exit 2 with one line when the runs cannot be combined "
                    "(docs/research.md).")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR|SEED_GROUP")
    p.add_argument("--to", required=True, metavar="DIR", help="the ensemble's run directory (new, or empty)")
    p.add_argument("--combine", choices=("rank", "zscore"), default="rank",
                   help="how each run's scores of a date are normalised before the average (default rank)")
    p.add_argument("--runs-dir", default="runs", metavar="DIR",
                   help="where a SEED_GROUP's runs are looked for (default runs, where studio train writes)")
    p.set_defaults(run=ensemble_command)


def ensemble_command(args: argparse.Namespace) -> int:
    from studio.core.text import printable
    from studio.train.ensemble import EnsembleError, group_members, make_ensemble

    runs: list = list(args.runs)
    try:
        if len(runs) == 1 and not Path(runs[0]).exists():
            runs = group_members(args.runs_dir, runs[0])
        metrics = make_ensemble(runs, args.to, args.combine)
    except EnsembleError as exc:
        raise CliError(str(exc)) from None
    test = metrics["splits"]["test"]
    members = "; ".join(f"{printable(m['run'])} {_ic(m.get('test'))}" for m in metrics["members"])
    print(f"wrote {printable(str(args.to))}: {metrics['message']}, test IC {test['ic']:+.4f} "
          f"(t {test['ic_t']:+.2f}, {test['dates']} dates)")
    print(f"  members' test IC: {members}")
    for note in metrics["notes"]:
        print(f"  note: {printable(note)}")
    return 0


def _ic(figures: dict | None) -> str:
    ic = (figures or {}).get("ic")
    return f"{ic:+.4f}" if isinstance(ic, float) else "-"
