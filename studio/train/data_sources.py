"""The data sources a graph trains on, one declaration each: the synthetic market, imported files and
Qlib data folders.

A ``DataSource`` says how ``--data`` picks it (by its name, or a file or folder), the flags that set it
(``--synthetic KEY=VALUE``; ``--import-option NAME=VALUE`` and one flag per entry of its options table,
IMPORT_OPTIONS), what the studio's data form shows for it, under which SourceSpec field (a key of
config.json's ``data.source``) its settings are recorded, and how its bars are read for a run and for
``studio data inspect``. ``studio train`` and ``studio data inspect`` (their flags), the GUI's data form,
SourceSpec (config.json, ``--resume``) and ``studio.train.sources.load_source`` all read DATA_SOURCES.

Plain data when imported (the command line's parser is built from it); what reads bars is imported
when it runs.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

from studio.data.import_options import IMPORT_OPTIONS, ImportOption


@dataclass(frozen=True)
class SettingsFlag:
    """The repeatable ``--FLAG KEY=VALUE`` of ``studio train`` that gives a source any of its settings."""

    flag: str
    help: str
    metavar: str = "KEY=VALUE"

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")


@dataclass(frozen=True)
class FormSetting:
    """A whole-number setting the studio's data form shows as a spin box."""

    key: str
    label: str
    default: int
    minimum: int
    maximum: int


@dataclass(frozen=True)
class SourceBars:
    """What a source read for a run: the panel, how messages name the source, and the synthetic
    market (it knows the oracle) or None."""

    panel: Any
    name: str
    market: Any = None


@dataclass(frozen=True)
class DataSource:
    """One kind of data source. ``name``: ``--data NAME`` picks it; None: it reads a file or folder
    (``--data PATH``), or with ``prefix`` ``--data PREFIX:PATH`` (``qlib:DIR``). ``settings_field``: the
    SourceSpec field holding its settings ("settings" for a kind declared after the first two). The
    callables get (path, settings, ...): ``read_settings`` turns the {name: value} given on the command
    line into the settings recorded with the run (a DataError says what is wrong); ``load`` reads the bars
    for a graph's input window; ``inspect`` reads them for ``studio data inspect`` and says how (cache or
    not); ``describe`` names the source in one line."""

    kind: str
    title: str
    settings_field: str
    settings_flag: SettingsFlag
    read_settings: Callable[[dict], dict]
    load: Callable[[str | None, dict, Any], SourceBars]
    inspect: Callable[[str | None, dict, bool], tuple[Any, str]]
    describe: Callable[[str | None, dict], str]
    name: str | None = None
    #: ``--data PREFIX...`` picks it and the rest is its path (a source that reads a path of its own kind)
    prefix: str | None = None
    #: settings with a flag of their own (``--NAME VALUE``, dest ``KIND_FIELD``) on every command that reads it
    options: tuple[ImportOption, ...] = ()
    #: the help group of an option's flag (default: "KIND: settings")
    option_group: Callable[[ImportOption], str] | None = None
    #: whether it keeps a cache that ``studio data inspect --no-cache`` passes by
    caches: bool = False
    #: what the studio's data form shows (a source with a form of its own in studio.gui.training ignores it)
    form: tuple[FormSetting, ...] = ()

    @property
    def reads_path(self) -> bool:
        return self.name is None

    def path_of(self, data: str) -> str | None:
        """The path in ``--data DATA`` (None for a source picked by its name); after a prefix ``~`` is the
        home folder, as the shell would have made it of a word of its own."""
        if not self.reads_path:
            return None
        if self.prefix and data.startswith(self.prefix):
            return os.path.expanduser(data[len(self.prefix):])
        return data

    def group_of(self, option: ImportOption) -> str:
        return self.option_group(option) if self.option_group else f"{self.kind}: settings"

    def option_dest(self, option: ImportOption) -> str:
        """The dest of the option's flag: the first source declaring an option of its name owns the flag
        (a Qlib folder takes the import's --session, --min-date-share, ...: one flag, read by either)."""
        owner = next((s for s in DATA_SOURCES.values() if any(o.name == option.name for o in s.options)), self)
        return f"{owner.kind}_{option.field}"


# ---- the synthetic market -------------------------------------------------------------------------------

def _synthetic_settings(given: dict) -> dict:
    """Checked against SyntheticConfig when the market is made; a list setting given on the command line
    as text (``features=open,close``) is its comma-separated names, not the text's characters."""
    from studio.data.synthetic import SyntheticConfig

    lists = {f.name for f in fields(SyntheticConfig) if isinstance(f.default, tuple | list)}
    return {key: (tuple(part.strip() for part in value.split(",") if part.strip())
                  if key in lists and isinstance(value, str) else value)
            for key, value in given.items()}


def _synthetic_bars(path: str | None, settings: dict, window) -> SourceBars:
    """The market made with the graph's bars per day and features (mapped files when it is large)."""
    from studio.data import store
    from studio.data.errors import DataError
    from studio.data.synthetic import SyntheticConfig, generate, generate_on_disk

    known = {f.name for f in fields(SyntheticConfig)}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise DataError(f"synthetic: unknown setting {unknown[0]!r} (known: {', '.join(sorted(known))})")
    options = dict(settings)
    options.setdefault("bars_per_day", window.bars_per_day)
    wanted = list(dict.fromkeys([*options.get("features", ()), *window.features]))
    options["features"] = tuple(wanted) or ("close", "volume", "turnover")
    try:
        config = SyntheticConfig(**options)
        size = config.stocks * config.days * config.bars_per_day * len(config.features) * 4
        market = (generate_on_disk if size > store.on_disk_above() else generate)(config)
    except (TypeError, ValueError) as exc:
        raise DataError(f"synthetic: {exc}") from None
    return SourceBars(market.panel, "the synthetic market", market)


def _inspect_synthetic(path: str | None, settings: dict, cache: bool) -> tuple[Any, str]:
    from studio.data.errors import DataError

    try:
        from studio.data.synthetic import SyntheticConfig, generate
    except ImportError:
        raise DataError("the synthetic market is not available in this build (studio.data.synthetic is "
                        "missing)") from None
    return generate(SyntheticConfig(**settings)).panel, "generated"


def _describe_synthetic(path: str | None, settings: dict) -> str:
    extra = ", ".join(f"{k}={v}" for k, v in sorted(settings.items()))
    return "synthetic market" + (f" ({extra})" if extra else "")


# ---- imported files ---------------------------------------------------------------------------------------

def _import_settings(given: dict) -> dict:
    """ImportConfig fields of the import options given, the defaults left out (what --resume reads back)."""
    from studio.data.importer import ImportConfig, import_config_from_options

    config, defaults = import_config_from_options(given), ImportConfig()
    return {f.name: getattr(config, f.name) for f in fields(config)
            if getattr(config, f.name) != getattr(defaults, f.name)}


def _imported_bars(path: str | None, settings: dict, window) -> SourceBars:
    from studio.data.errors import DataError
    from studio.data.importer import import_config_from_options
    from studio.data.load import load_bars

    try:
        config = import_config_from_options({}, base=settings)
    except DataError as exc:
        raise DataError(f"{path}: {exc}") from None
    return SourceBars(load_bars(path, config), str(path))


def _inspect_imported(path: str | None, settings: dict, cache: bool) -> tuple[Any, str]:
    from studio.data.importer import import_config_from_options
    from studio.data.load import import_bars

    result = import_bars(path, import_config_from_options({}, base=settings), cache=cache)
    if result.cache_file is None:
        how = "imported (cache off)"
    elif result.from_cache:
        how = f"read from the cache ({result.cache_file})"
    elif result.cached:
        how = f"imported; cached in {result.cache_file}"
    else:
        how = f"imported (the cache folder {result.cache_file.parent} is not writable)"
    return result.panel, how


def _import_group(option: ImportOption) -> str:
    if option.name.endswith("-col"):
        return "import: columns (default: found by their usual names)"
    return "import: files and policies"


SYNTHETIC = DataSource(
    "synthetic", "Synthetic market", "synthetic",
    SettingsFlag("--synthetic", "synthetic market setting, e.g. stocks=300 days=500 seed=1 (repeatable)"),
    _synthetic_settings, _synthetic_bars, _inspect_synthetic, _describe_synthetic, name="synthetic",
    form=(FormSetting("stocks", "stocks", 240, 20, 5000), FormSetting("days", "days", 400, 60, 5000),
          FormSetting("seed", "market seed", 0, 0, 10**6)))

IMPORTED = DataSource(
    "import", "Imported bars…", "importer",
    SettingsFlag("--import-option", "an import setting for --data PATH by the name of its flag below, e.g. "
                                    "session=09:30-16:00 or time-col=ToD (repeatable; the flags override it)",
                 metavar="NAME=VALUE"),
    _import_settings, _imported_bars, _inspect_imported, lambda path, settings: str(path),
    options=IMPORT_OPTIONS, option_group=_import_group, caches=True)

# ---- Qlib data folders ------------------------------------------------------------------------------

#: the import policies a Qlib folder's bars go through that a user may set (the same flags as for files)
_QLIB_POLICIES = ("session", "bar-stamp", "force-bars-per-day", "min-day-share", "min-date-share")
QLIB_OPTIONS: tuple[ImportOption, ...] = (
    ImportOption("freq", "freq", str, "FREQ",
                 "qlib:DIR: the frequency, a calendar of the folder (calendars/FREQ.txt: day, 1min, 5min, ...; "
                 "default day)"),
    ImportOption("market", "market", str, "NAME|FILE",
                 "qlib:DIR: the instruments, instruments/NAME.txt (csi300, all, ...) or a .txt file of the same "
                 "layout (default all)"),
    ImportOption("qlib-prices", "prices", str, "{adjusted,raw}",
                 "qlib:DIR: prices as Qlib stores them (adjusted, the default) or raw (close / factor, volume x "
                 "factor)", ("adjusted", "raw")),
    *(o for o in IMPORT_OPTIONS if o.name in _QLIB_POLICIES),
)


def _qlib_settings(given: dict) -> dict:
    """freq, market and prices (always recorded), then the import policies given, as ImportConfig fields
    (``--qlib prices=raw`` and ``--qlib-prices raw`` are one setting)."""
    from studio.data.errors import DataError
    from studio.data.qlib_folder import check_settings

    own_names = {name: o.field for o in QLIB_OPTIONS[:3] for name in (o.name, o.field)}
    own, policies = {}, {}
    for key, value in given.items():
        name = str(key).strip().replace("_", "-")
        if name in own_names:
            own[own_names[name]] = value
        elif name in _QLIB_POLICIES:
            policies[name] = value
        else:
            known = ", ".join(o.name for o in QLIB_OPTIONS)
            raise DataError(f"qlib: unknown setting {key!r} (known: {known})")
    return check_settings(own) | _import_settings(policies)


def _qlib_split(settings: dict) -> tuple[dict, object]:
    from studio.data.importer import import_config_from_options

    own = {k: settings[k] for k in ("freq", "market", "prices") if k in settings}
    return own, import_config_from_options({}, base={k: v for k, v in settings.items() if k not in own})


def _qlib_bars(path: str | None, settings: dict, window) -> SourceBars:
    from studio.data.qlib_folder import qlib_panel

    own, config = _qlib_split(settings)
    panel = qlib_panel(path, own, config)
    return SourceBars(panel, panel.source)


def _inspect_qlib(path: str | None, settings: dict, cache: bool) -> tuple[Any, str]:
    from studio.data.qlib_folder import qlib_panel

    own, config = _qlib_split(settings)
    return qlib_panel(path, own, config), "read from the Qlib folder (memory-mapped .bin files)"


def _describe_qlib(path: str | None, settings: dict) -> str:
    return (f"qlib:{path} ({settings.get('freq', 'day')}, market {settings.get('market', 'all')}, "
            f"{settings.get('prices', 'adjusted')} prices)")


QLIB = DataSource(
    "qlib", "Qlib data folder…", "settings",
    SettingsFlag("--qlib", "a setting of --data qlib:DIR by the name of its flag, e.g. freq=5min market=csi300 "
                           "(repeatable; the flags override it)", metavar="NAME=VALUE"),
    _qlib_settings, _qlib_bars, _inspect_qlib, _describe_qlib, prefix="qlib:", options=QLIB_OPTIONS,
    option_group=lambda option: "qlib:DIR: a Qlib data folder (the import's "
                                + ", ".join(f"--{name}" for name in _QLIB_POLICIES) + " apply too)")

#: every data source by kind, in the order the studio's data form lists them (the first is the default)
DATA_SOURCES: dict[str, DataSource] = {source.kind: source for source in (SYNTHETIC, IMPORTED, QLIB)}


def source_for_data(data: str) -> DataSource:
    """The source ``--data DATA`` (or ``data inspect DATA``) means: the one of that name, the one whose
    prefix it starts with (``qlib:DIR``), else the first that reads any file or folder."""
    for source in DATA_SOURCES.values():
        if source.name is not None and source.name == data:
            return source
    for source in DATA_SOURCES.values():
        if source.prefix and data.startswith(source.prefix):
            return source
    return next(source for source in DATA_SOURCES.values() if source.reads_path and not source.prefix)


def data_words() -> list[str]:
    """What ``--data`` takes: each source's name, each prefix's PREFIX:DIR, then PATH when a source reads
    any file or folder."""
    sources = DATA_SOURCES.values()
    return ([s.name for s in sources if s.name is not None] + [f"{s.prefix}DIR" for s in sources if s.prefix]
            + (["PATH"] if any(s.reads_path and not s.prefix for s in sources) else []))
