"""Commands on market data: ``studio data inspect SOURCE``."""

from __future__ import annotations

import argparse
import json
import sys

from studio.cli.errors import CliError


def add_source_flags(p: argparse.ArgumentParser) -> None:
    """``--data`` and each data source's repeatable ``--FLAG KEY=VALUE`` (studio.train.data_sources)."""
    from studio.train.data_sources import DATA_SOURCES, data_words

    p.add_argument("--data", default=next(iter(DATA_SOURCES.values())).name, metavar="|".join(data_words()),
                   help="the synthetic market (default), a file or folder of bars to import, or qlib:DIR (a Qlib "
                        "data folder: --freq, --market)")
    for source in DATA_SOURCES.values():
        flag = source.settings_flag
        p.add_argument(flag.flag, dest=flag.dest, action="append", default=[], metavar=flag.metavar, help=flag.help)


def add_option_flags(p: argparse.ArgumentParser, *, cache_flag: bool = True) -> None:
    """Every data source's options table as flags (the import settings: IMPORT_OPTIONS): the same names
    on every command that reads bars, and the same names as ``studio train --import-option NAME=VALUE``."""
    from studio.train.data_sources import DATA_SOURCES

    groups: dict[str, argparse._ArgumentGroup] = {}
    added: set[str] = set()
    for source in DATA_SOURCES.values():
        for option in source.options:
            if option.name in added:  # an option two sources share is one flag (DataSource.option_dest)
                continue
            added.add(option.name)
            title = source.group_of(option)
            if title not in groups:
                groups[title] = p.add_argument_group(title)
            groups[title].add_argument(f"--{option.name}", dest=source.option_dest(option),
                                       metavar=option.metavar, type=option.kind, choices=option.choices or None,
                                       default=None, help=option.help.replace("%", "%%"))  # plain text, not a template
        if cache_flag and source.caches:
            group = groups[source.group_of(source.options[-1])] if source.options else p
            group.add_argument("--no-cache", action="store_true",
                               help="import afresh, neither reading nor writing the cache")


def option_values(args: argparse.Namespace, source) -> dict:
    """{option name: value} of ``source``'s option flags given on the command line."""
    return {o.name: getattr(args, source.option_dest(o)) for o in source.options
            if getattr(args, source.option_dest(o), None) is not None}


def read_settings(source, given: dict) -> dict:
    """The settings ``source`` records from the {name: value} given (a bad one is a CliError)."""
    from studio.data.errors import DataError

    try:
        return source.read_settings(given)
    except DataError as exc:
        raise CliError(str(exc)) from None


def inspected_panel(args: argparse.Namespace) -> tuple[object, str]:
    """The BarPanel of ``data inspect SOURCE`` (the synthetic market or a file / folder of bars), and
    how it was loaded (generated, from the cache or not)."""
    from studio.data.errors import DataError
    from studio.train.data_sources import source_for_data

    source = source_for_data(args.source)
    settings = read_settings(source, option_values(args, source))
    try:
        return source.inspect(source.path_of(args.source), settings,
                              not getattr(args, "no_cache", False))
    except DataError as exc:
        raise CliError(str(exc)) from None


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
    p.add_argument("source", metavar="SOURCE", help="'synthetic', a CSV / Parquet file or folder, or qlib:DIR "
                                                    "(a Qlib data folder; --freq, --market)")
    add_option_flags(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=inspect_command)


def _no_data_command(args: argparse.Namespace) -> int:
    raise CliError("studio data: name a command: inspect (see studio data --help)")


def inspect_command(args: argparse.Namespace) -> int:
    panel, how = inspected_panel(args)
    info = panel.describe()
    if args.json:
        info["symbol_list"] = list(panel.symbols)
        info["loaded"] = how
        sys.stdout.write(json.dumps(info, indent=2, ensure_ascii=False) + "\n")
        return 0
    from studio.core.text import one_line, shown
    from studio.data.panel import FLOW_FEATURES

    # symbols come from file names and columns: a newline in one must not break the list
    first = ", ".join(shown(s) for s in panel.symbols[:8]) + (", ..." if panel.n_symbols > 8 else "")
    print(f"source: {one_line(info['source'])}")
    print(f"loaded: {how}")
    print(f"symbols: {info['symbols']} ({first})")
    print(f"dates: {info['dates']} ({info['first_date']} .. {info['last_date']})")
    print(f"bars per day: {info['bars_per_day']}")
    median = info["stocks_per_day_median"]
    median_text = f"{median:g}"
    print(f"stocks per day: min {info['stocks_per_day_min']}, median {median_text}, "
          f"max {info['stocks_per_day_max']}")
    absent = [f for f in FLOW_FEATURES if f not in info["features"]]
    # close-only data: say which of the fields graphs usually read are not here (the notes say why)
    print(f"features: {', '.join(info['features'])}" + (f" (not in the data: {', '.join(absent)})" if absent else ""))
    if info["notes"]:
        print("notes:")
        for line in info["notes"]:
            print(f"  - {one_line(line)}")
    if info["counts"]:
        print("counts:")
        width = max(len(k) for k in info["counts"])
        for key, value in info["counts"].items():
            print(f"  {key.ljust(width)}  {value:>9,}")
    return 0
