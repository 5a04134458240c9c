"""The import settings under the names users type: ``--NAME VALUE`` on every command that reads bars
(``studio data inspect``, ``studio train``) and ``NAME=VALUE`` in ``studio train --import-option``.

Plain data (no numpy), so building the command line's parser stays cheap. The ImportConfig field each
one sets is ``field``; studio.data.importer.import_config_from_options reads them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ImportOption:
    """One import setting as users name it: ``--NAME VALUE`` on every command that reads bars, and
    ``NAME=VALUE`` in ``studio train --import-option``. ``field`` is the ImportConfig field."""

    name: str
    field: str
    kind: type
    metavar: str
    help: str
    choices: tuple[str, ...] = ()


#: every import setting, under the one name both commands use (docs/data.md lists them)
IMPORT_OPTIONS: tuple[ImportOption, ...] = (
    *(ImportOption(f"{col}-col", col, str, "NAME", f"the {col} column")
      for col in ("symbol", "datetime", "date", "time", "open", "high", "low", "close", "volume", "turnover")),
    ImportOption("returns-col", "returns", str, "NAME",
                 "a column of simple returns (0.01 = 1%) for files without a price: the close becomes an index, "
                 "the cumulative product of (1 + return) per symbol"),
    ImportOption("symbol-regex", "symbol_regex", str, "REGEX",
                 "regular expression on a file name giving its symbol (group 'symbol' or 1), for files without a "
                 "symbol column (default: the name up to the first '_' or the extension)"),
    ImportOption("pattern", "pattern", str, "GLOB", "which files of a folder to read (default: CSV and Parquet)"),
    ImportOption("session", "session", str, "HH:MM-HH:MM",
                 "regular session; bars outside it are dropped (default: inferred from the bar times)"),
    ImportOption("bar-stamp", "bar_stamp", str, "{auto,start,end}",
                 "bars are stamped when they start (US 09:30 .. 15:55) or end (A-shares 10:30 .. 15:00); "
                 "default auto", ("auto", "start", "end")),
    ImportOption("timezone", "timezone", str, "TZ",
                 "the exchange's time zone (IANA name, e.g. America/New_York) for stamps that carry a zone "
                 "(default: inferred from the sessions)"),
    ImportOption("force-bars-per-day", "bars_per_day", int, "N", "force the bars per day (default: detected)"),
    ImportOption("min-day-share", "min_day_share", float, "X",
                 "a symbol-day with fewer than this share of the bars is not traded (default 0.5)"),
    ImportOption("min-date-share", "min_date_share", float, "X",
                 "a date needs this share of the most symbols traded on any date (default 0.2; 0 keeps every "
                 "date any symbol traded)"),
    ImportOption("max-duplicate-share", "max_duplicate_share", float, "X",
                 "stop when more than this share of the rows repeat a symbol's timestamp (default 0.05; a "
                 "time-of-day column is probably not mapped)"),
)


def import_option_names() -> list[str]:
    return [o.name for o in IMPORT_OPTIONS]


