"""Issue 26: a data source is one declaration (studio.train.data_sources.DATA_SOURCES) that the command
line's flags, the studio's data form, the run's config (SourceSpec in config.json, read by --resume) and
load_source read. The built-in sources show what they showed before; a source declared here, in the test
alone, reaches every reader without an edit anywhere else."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from studio.cli import build_parser, main
from studio.core.document import InputSpec
from studio.data.import_options import IMPORT_OPTIONS, ImportOption
from studio.train.config import ConfigError, SourceSpec
from studio.train.data_sources import DATA_SOURCES, DataSource, FormSetting, SettingsFlag, SourceBars
from studio.train.sources import load_source
from tests.test_gui_training import studio_window

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = str(ROOT / "graphs" / "default.json")


def _memory_settings(given: dict) -> dict:
    """--memory-days N and --memory days=N are the same setting, recorded as "days"."""
    out = {}
    for key, value in given.items():
        name = str(key).removeprefix("memory-")
        if name not in ("stocks", "days"):
            from studio.data.errors import DataError

            raise DataError(f"memory: unknown setting {key!r}")
        out[name] = int(value)
    return out


def _memory_bars(path, settings: dict, window) -> SourceBars:
    from studio.data.synthetic import SyntheticConfig, generate

    config = SyntheticConfig(stocks=settings.get("stocks", 30), days=settings.get("days", 80),
                             bars_per_day=window.bars_per_day, features=tuple(window.features))
    return SourceBars(generate(config).panel, "the memory source")  # no oracle: as imported bars


def _inspect_memory(path, settings: dict, cache: bool):
    return _memory_bars(path, settings, InputSpec(["close", "volume", "turnover"], 10, 24)).panel, "made in memory"


#: a tiny source of bars made in memory, declared here only
MEMORY = DataSource(
    "memory", "Bars in memory", "settings", SettingsFlag("--memory", "a setting of the bars in memory"),
    _memory_settings, _memory_bars, _inspect_memory, lambda path, settings: f"memory {settings}",
    name="memory", options=(ImportOption("memory-days", "days", int, "N", "days of bars in memory"),),
    form=(FormSetting("stocks", "memory stocks", 30, 20, 100), FormSetting("days", "memory days", 80, 60, 400)))


@pytest.fixture
def memory_source(monkeypatch):
    monkeypatch.setitem(DATA_SOURCES, "memory", MEMORY)
    return MEMORY


def test_the_built_in_sources_make_the_flags_and_records_they_made_before():
    parser = build_parser()
    train = parser.parse_args(["train", DEFAULT])
    assert (train.data, train.synthetic, train.import_option) == ("synthetic", [], [])
    actions = {a.dest: a for a in parser._subparsers._group_actions[0].choices["train"]._actions}
    assert actions["data"].metavar == "synthetic|qlib:DIR|PATH"
    assert actions["synthetic"].option_strings == ["--synthetic"] and actions["synthetic"].metavar == "KEY=VALUE"
    assert actions["import_option"].option_strings == ["--import-option"]
    for option in IMPORT_OPTIONS:  # every import setting is a flag of train and of data inspect
        assert actions[f"import_{option.field}"].option_strings == [f"--{option.name}"]
    assert "no_cache" not in actions
    inspect = parser.parse_args(["data", "inspect", "x", "--time-col", "ToD", "--no-cache"])
    assert (inspect.import_time, inspect.no_cache) == ("ToD", True)
    # config.json's data.source of an old run reads and writes back as it was
    for old in ({"kind": "synthetic", "path": None, "synthetic": {"stocks": 30}, "importer": {}},
                {"kind": "import", "path": "/bars", "synthetic": {}, "importer": {"time": "ToD"}}):
        spec = SourceSpec.from_json(old)
        assert json.dumps(spec.to_json()) == json.dumps(old)
    assert SourceSpec.from_json({"kind": "synthetic"}).describe() == "synthetic market"
    assert SourceSpec("import", path="/bars").describe() == "/bars"
    with pytest.raises(ConfigError, match=r"^data: expects synthetic or import or qlib, gets 'csv'$"):
        SourceSpec("csv")
    with pytest.raises(ConfigError, match=r"^data: an import needs a path$"):
        SourceSpec("import")


def test_every_declared_source_keeps_its_settings_in_a_field_of_the_spec():
    fields = set(SourceSpec.__dataclass_fields__)
    for kind, source in DATA_SOURCES.items():
        assert source.kind == kind and source.settings_field in fields - {"kind", "path"}
        assert source.reads_path == (source.name is None)


def test_a_source_declared_in_a_test_reaches_the_flags_the_config_and_load_source(memory_source, tmp_path, capsys):
    from studio.cli.train_commands import _source

    parser = build_parser()
    args = parser.parse_args(["train", DEFAULT, "--data", "memory", "--memory", "stocks=24", "--memory-days", "70"])
    spec = _source(args)
    assert (spec.kind, spec.path, spec.settings, spec.synthetic, spec.importer) == (
        "memory", None, {"stocks": 24, "days": 70}, {}, {})
    assert spec.describe() == "memory {'stocks': 24, 'days': 70}"
    assert SourceSpec.from_json(json.loads(json.dumps(spec.to_json()))) == spec
    loaded = load_source(spec, InputSpec(["close", "volume", "turnover"], 10, 24))
    assert (loaded.panel.n_symbols, loaded.panel.bars_per_day, loaded.market) == (24, 24, None)
    # a run on it records it in config.json, which --resume reads back
    code = main(["train", DEFAULT, "--data", "memory", "--memory", "stocks=20", "--memory-days", "70",
                 "--epochs", "1", "--threads", "1", "--out", str(tmp_path / "runs"), "-q"])
    out = capsys.readouterr().out
    assert code == 0, out
    (run_dir,) = (tmp_path / "runs").iterdir()
    recorded = json.loads((run_dir / "config.json").read_text())["data"]["source"]
    assert recorded == {"kind": "memory", "path": None, "synthetic": {}, "importer": {},
                        "settings": {"stocks": 20, "days": 70}}
    assert SourceSpec.from_json(recorded).source_settings == {"stocks": 20, "days": 70}
    # studio data inspect takes it by its name
    assert main(["data", "inspect", "memory"]) == 0
    shown = capsys.readouterr().out
    assert "loaded: made in memory" in shown and "bars per day: 24" in shown
    # the command line's error names it among the words --data takes
    assert main(["train", DEFAULT, "--data", str(tmp_path / "nothing")]) == 2
    assert "no such file or folder (--data takes synthetic or memory or qlib:DIR or a path)" in capsys.readouterr().err


@pytest.fixture
def memory_window(memory_source, qtbot, tmp_path, monkeypatch):
    """The studio's window, made while the memory source is declared."""
    yield from studio_window(qtbot, tmp_path, monkeypatch)


def test_the_studio_lists_a_declared_source_and_trains_on_its_form(memory_window):
    window = memory_window
    panel = window.training
    window.open_file(ROOT / "graphs" / "default.json")
    assert [panel.source.itemText(i) for i in range(panel.source.count())] == [
        "Synthetic market", "Imported bars…", "Qlib data folder…", "Bars in memory"]
    assert panel.source_spec() == SourceSpec("synthetic", synthetic={"stocks": 30, "days": 90, "seed": 0})
    panel.source.setCurrentIndex(3)  # the user picks it from the list
    panel.source.activated.emit(3)
    form = panel.forms["memory"]
    assert form.spins["days"].isEnabled() and not panel.stocks.isEnabled()
    form.spins["stocks"].setValue(25)
    assert panel.source_spec() == SourceSpec.of("memory", None, {"stocks": 25, "days": 80})
    assert panel.check_fit() is None  # made at the graph's window, like the synthetic market
    panel.source.setCurrentIndex(0)
    panel.source.activated.emit(0)
    assert panel.stocks.isEnabled() and not form.spins["days"].isEnabled()


def test_a_list_setting_of_the_synthetic_market_given_as_text_is_its_comma_separated_names():
    from studio.train.data_sources import DATA_SOURCES

    read = DATA_SOURCES["synthetic"].read_settings
    assert read({"features": "open, close,volume", "stocks": 30}) == {
        "features": ("open", "close", "volume"), "stocks": 30}
    # a JSON list given on the command line stays what it was
    assert read({"features": ["close"]}) == {"features": ["close"]}
