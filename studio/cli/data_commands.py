"""Commands on market data: ``studio data inspect SOURCE``."""

from __future__ import annotations

import argparse
import json
import sys

from studio.cli.errors import CliError


def add_import_options(p: argparse.ArgumentParser, *, cache_flag: bool = True) -> None:
    """The import settings (studio.data.importer.IMPORT_OPTIONS) as flags: the same names on every
    command that reads bars, and the same names as ``studio train --import-option NAME=VALUE``."""
    from studio.data.import_options import IMPORT_OPTIONS

    columns = p.add_argument_group("import: columns (default: found by their usual names)")
    policies = p.add_argument_group("import: files and policies")
    for option in IMPORT_OPTIONS:
        group = columns if option.name.endswith("-col") else policies
        group.add_argument(f"--{option.name}", dest=f"import_{option.field}", metavar=option.metavar,
                           type=option.kind, choices=option.choices or None, default=None, help=option.help)
    if cache_flag:
        policies.add_argument("--no-cache", action="store_true",
                              help="import afresh, neither reading nor writing the cache")


def import_settings(args: argparse.Namespace) -> dict:
    """{option name: value} of the import flags given on the command line."""
    from studio.data.import_options import IMPORT_OPTIONS

    return {o.name: getattr(args, f"import_{o.field}") for o in IMPORT_OPTIONS
            if getattr(args, f"import_{o.field}", None) is not None}


def import_config(args: argparse.Namespace, extra: dict | None = None):
    """The ImportConfig of the parsed options (a bad option is a CliError); ``extra``: more
    {option name: value} pairs (``--import-option``), which the flags override."""
    from studio.data.importer import DataError, import_config_from_options

    try:
        return import_config_from_options({**(extra or {}), **import_settings(args)})
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
    from studio.data.importer import DataError
    from studio.data.load import import_bars

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
    from studio.core.text import one_line, shown

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
    print(f"features: {', '.join(info['features'])}")
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
