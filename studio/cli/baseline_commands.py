"""Classic bar factors judged on a run's own dates: ``studio baselines RUN... [--data PATH]``."""

from __future__ import annotations

import argparse
import math
import sys

from studio.cli.errors import CliError


def add_baseline_commands(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "baselines", help="judge classic bar factors on a run's own test dates and stocks (writes baselines.json)",
        description="For each run: compute the classic bar factors (reversal, momentum, intraday volatility, "
                    "volume surprise, turnover, last hour's return, overnight gap, intraday range; "
                    "docs/metrics.md, Baselines) from the run's data at the same decision time as its inputs, "
                    "judge each on the run's test dates and stocks (IC, t, the training dates' IC beside it, "
                    "its correlation with the model's score), and the incremental IC: the IC of the model's "
                    "score regressed date by date on them. Writes RUN/baselines.json (a finished run writes it "
                    "itself; this is for older runs) and prints a table. Exit 2 with one line per run that "
                    "cannot be judged.")
    p.add_argument("run_dirs", nargs="+", metavar="RUN")
    p.add_argument("--data", metavar="PATH",
                   help="the bars, read with the run's import settings (default: the run's own data, at the "
                        "absolute path it recorded, else as it was typed)")
    p.set_defaults(run=baselines_command)


def _figure(x, digits: int = 4, signed: bool = True) -> str:
    if not isinstance(x, int | float) or not math.isfinite(x):
        return "-"
    return f"{x:+.{digits}f}" if signed else f"{x:.{digits}f}"


def baselines_command(args: argparse.Namespace) -> int:
    from studio.core.text import printable
    from studio.train.baselines import BaselineError, evaluate
    from studio.train.records import RunWriter

    failed = []  # each said on its line as it is met; the others are judged all the same
    for run_dir in args.run_dirs:
        try:
            result = evaluate(run_dir, args.data)
            RunWriter(run_dir).write_json("baselines.json", result)
        except BaselineError as exc:
            failed.append(str(exc))
            print(f"studio baselines: {printable(str(exc))}", file=sys.stderr)
            continue
        print(f"{printable(run_dir)}: wrote baselines.json")
        _print_result(result)
    if failed:
        raise CliError(f"{len(failed)} of {len(args.run_dirs)} runs not judged (said above)")
    return 0


def _print_result(result: dict) -> None:
    from studio.cli.table import format_table
    from studio.core.text import printable

    model = result["model"]
    rows = [["model", _figure(model["test"]["ic"]), _figure(model["test"]["ic_t"], 2),
             _figure(model["train"]["ic"]), _figure(model["train"]["ic_t"], 2), "", str(model["test"]["dates"])]]
    for b in result["baselines"]:
        rows.append([b["name"], _figure(b["test"]["ic"]), _figure(b["test"]["ic_t"], 2), _figure(b["train"]["ic"]),
                     _figure(b["train"]["ic_t"], 2), _figure(b["corr"], 3), str(b["test"]["dates"])])
    print(format_table(["baseline", "test IC", "t", "train IC", "t", "corr with model", "dates"], rows,
                       align="lrrrrrr", indent=2))
    inc = result["incremental"]
    print(f"  incremental IC {_figure(inc['ic'])} (t {_figure(inc['ic_t'], 2)}, {inc['dates']} dates) over "
          f"{len(inc['on'])} baselines" + (f"; {inc['singular_dates']} dates left out: the baselines collinear"
                                          if inc["singular_dates"] else ""))
    for left in result["left_out"]:
        print(f"  left out: {printable(left['name'])} ({printable(left['reason'])})")
    for verdict in result["verdicts"]:
        print(f"  - {printable(verdict)}")
