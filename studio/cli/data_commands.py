"""Commands on market data: ``studio data inspect SOURCE``."""

from __future__ import annotations

import argparse
import json
import sys

from studio.cli.errors import CliError

_MAPPING = ("symbol", "datetime", "date", "time", "open", "high", "low", "close", "volume", "turnover")


def add_import_options(p: argparse.ArgumentParser) -> None:
    """Column mapping and policy options of an import (shared by every command that reads bars)."""
    g = p.add_argument_group("columns (default: found by their usual names)")
    for name in _MAPPING:
        g.add_argument(f"--{name}-col", dest=f"{name}_col", metavar="NAME", help=f"the {name} column")
    g = p.add_argument_group("files and policies")
    g.add_argument("--symbol-regex", metavar="REGEX",
                   help="regular expression on a file name giving its symbol (group 'symbol' or 1), for "
                        "files without a symbol column (default: the name up to the first '_' or the "
                        "extension)")
    g.add_argument("--pattern", metavar="GLOB",
                   help="which files of a folder to read (default: CSV and Parquet)")
    g.add_argument("--session", metavar="HH:MM-HH:MM",
                   help="regular session; bars outside it are dropped (default: inferred from the bar times)")
    g.add_argument("--bar-stamp", choices=("auto", "start", "end"), default="auto",
                   help="bars are stamped when they start (US 09:30 .. 15:55) or end (A-shares 10:30 .. "
                        "15:00)")
    g.add_argument("--timezone", metavar="TZ", help="time zone for files with time-zone-aware stamps")
    g.add_argument("--bars-per-day", type=int, metavar="N", help="force the bars per day (default: detected)")
    g.add_argument("--min-day-share", type=float, metavar="X", default=0.5,
                   help="a symbol-day with fewer than this share of the bars is not traded (default 0.5)")
    g.add_argument("--min-date-share", type=float, metavar="X", default=0.2,
                   help="a date needs this share of the most symbols traded on any date (default 0.2; 0 "
                        "keeps every date any symbol traded)")
    g.add_argument("--no-cache", action="store_true",
                   help="import afresh, neither reading nor writing the cache")


def import_config(args: argparse.Namespace):
    """The ImportConfig of the parsed options (a bad option is a CliError)."""
    from studio.data.importer import DEFAULT_SYMBOL_REGEX, DataError, ImportConfig

    try:
        return ImportConfig(**{name: getattr(args, f"{name}_col") for name in _MAPPING},
                            symbol_regex=args.symbol_regex or DEFAULT_SYMBOL_REGEX, pattern=args.pattern,
                            session=args.session, bar_stamp=args.bar_stamp, timezone=args.timezone,
                            bars_per_day=args.bars_per_day, min_day_share=args.min_day_share,
                            min_date_share=args.min_date_share)
    except DataError as exc:
        raise CliError(str(exc)) from None


def load_source(source: str, args: argparse.Namespace) -> tuple[object, str]:
    """The BarPanel of ``synthetic`` or of a file / folder of bars, and where it came from (cache or not)."""
    if source == "synthetic":
        # The embedded synthetic market (studio.data.synthetic); mapping options do not apply to it.
        try:
            from studio.data.synthetic import SyntheticConfig, generate
        except ImportError:
            raise CliError("the synthetic market is not available in this build (studio.data.synthetic is "
                           "missing)") from None
        return generate(SyntheticConfig()).panel, "generated"
    from studio.data.importer import DataError, import_bars

    config = import_config(args)
    try:
        result = import_bars(source, config, cache=not args.no_cache)
    except DataError as exc:
        raise CliError(str(exc)) from None
    if result.cache_file is None:
        how = "imported (cache off)"
    elif result.from_cache:
        how = f"read from the cache ({result.cache_file})"
    elif result.cached:
        how = f"imported; cached in {result.cache_file}"
    else:
        how = f"imported (the cache folder {result.cache_file.parent} is not writable)"
    return result.panel, how


def add_data_commands(commands: argparse._SubParsersAction) -> None:
    data = commands.add_parser("data", help="market data: inspect imported bars or the synthetic market",
                               description="Market data commands.")
    sub = data.add_subparsers(dest="data_command", metavar="COMMAND", parser_class=type(data))
    data.set_defaults(run=_no_data_command)

    p = sub.add_parser("inspect",
                       help="import bars (or generate the synthetic market) and describe the panel",
                       description="Import CSV or Parquet bars (a file or a folder; one file per symbol or "
                                   "long files with a symbol column), or generate the synthetic market "
                                   "(SOURCE 'synthetic'; a file of that name: ./synthetic), and print the "
                                   "symbols, dates, bars per day, stocks per day, features, the policies "
                                   "applied and how often each applied. Exit 2 when the source cannot be "
                                   "used.")
    p.add_argument("source", metavar="SOURCE", help="'synthetic', or a CSV / Parquet file or folder")
    add_import_options(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=inspect_command)


def _no_data_command(args: argparse.Namespace) -> int:
    raise CliError("studio data: name a command: inspect (see studio data --help)")


def inspect_command(args: argparse.Namespace) -> int:
    panel, how = load_source(args.source, args)
    info = panel.describe()
    if args.json:
        info["symbol_list"] = list(panel.symbols)
        info["loaded"] = how
        sys.stdout.write(json.dumps(info, indent=2, ensure_ascii=False) + "\n")
        return 0
    first = ", ".join(panel.symbols[:8]) + (", ..." if panel.n_symbols > 8 else "")
    print(f"source: {info['source']}")
    print(f"loaded: {how}")
    print(f"symbols: {info['symbols']} ({first})")
    print(f"dates: {info['dates']} ({info['first_date']} .. {info['last_date']})")
    print(f"bars per day: {info['bars_per_day']}")
    median = info["stocks_per_day_median"]
    median_text = f"{median:g}"
    print(f"stocks per day: min {info['stocks_per_day_min']}, median {median_text}, "
          f"max {info['stocks_per_day_max']}")
    print(f"features: {', '.join(info['features'])}")
    if info["notes"]:
        print("notes:")
        for line in info["notes"]:
            print(f"  - {line}")
    if info["counts"]:
        print("counts:")
        width = max(len(k) for k in info["counts"])
        for key, value in info["counts"].items():
            print(f"  {key.ljust(width)}  {value:>9,}")
    return 0
