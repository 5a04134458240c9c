"""The runs table across seeds: one row per group of runs that differ only in their seed (mean +- std),
and the chart's band (mean +- std of the cumulative long-short) checked against the runs' daily.csv."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyqtgraph as pg
import pytest
from PySide6.QtCore import Qt

from studio.train.sweep import Sweep, load_spec
from tests.test_gui_training import window  # noqa: F401  (the fixture: a real window)
from tests.test_sweep import write_spec


@pytest.fixture(scope="module")
def runs_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("seeds")
    sweep = Sweep.create(load_spec(write_spec(folder, seeds=3, grid={"gru_1.hidden_size": [8, 16]})), folder / "out")
    sweep.run(workers=2)
    assert all(t.status == "finished" for t in sweep.trials)
    return sweep.path / "runs"


def test_the_runs_table_groups_seeds_and_draws_their_band(qtbot, runs_folder):
    from studio.gui.runs import RunsWidget

    runs = RunsWidget(runs_folder)
    qtbot.addWidget(runs)
    runs.resize(1400, 700)
    runs.refresh()
    assert runs.table.rowCount() == 6
    # nothing selected: a hint, and no axis counting the milliseconds of 1970
    assert not runs.plot.getAxis("bottom").style["showValues"]
    assert any(isinstance(i, pg.TextItem) and "select runs" in i.toPlainText() for i in runs.plot.items)
    runs.by_seed.setChecked(True)  # as a person clicks it: the table is grouped
    assert runs.table.rowCount() == 2
    headers = [runs.table.horizontalHeaderItem(c).text() for c in range(runs.table.columnCount())]
    assert headers[:3] == ["graph", "seeds", "IC"]
    def hidden(run):
        return json.loads((run / "graph.json").read_text())["nodes"]["gru_1"]["params"]["hidden_size"]

    frame = pd.DataFrame([{**json.loads((p / "metrics.json").read_text())["splits"]["test"], "hidden": hidden(p),
                           "path": p} for p in runs_folder.iterdir()])
    for r in range(2):
        paths = set(json.loads(runs.table.item(r, 0).data(Qt.ItemDataRole.UserRole + 1)))
        mine = frame[frame.path.astype(str).isin(paths)]
        assert len(mine) == 3 and mine.hidden.nunique() == 1
        assert runs.table.item(r, 1).text() == "3"
        assert runs.table.item(r, 2).text() == f"{mine.ic.mean():.4f} ± {mine.ic.std():.4f}"
        assert "#" in runs.table.item(r, 0).text()  # one graph name, two parameter settings
    runs.table.selectRow(0)
    assert len(runs.bands) == 1
    assert runs.plot.getAxis("bottom").style["showValues"]
    assert not any(isinstance(i, pg.TextItem) for i in runs.plot.items)
    band = runs.bands[0]
    paths = json.loads(runs.table.item(0, 0).data(Qt.ItemDataRole.UserRole + 1))
    cumulative = []
    for path in paths:
        daily = pd.read_csv(f"{path}/daily.csv")
        cumulative.append(daily[daily.split == "test"].long_short.fillna(0.0).cumsum().to_numpy())
    stack = np.vstack(cumulative)
    assert band["seeds"] == 3
    np.testing.assert_allclose(band["mean"], stack.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(band["std"], stack.std(axis=0, ddof=1), rtol=1e-12)
    lines = len(runs.plot.listDataItems())
    runs.seed_lines.setChecked(True)
    assert len(runs.plot.listDataItems()) == lines + 3  # a thin line per seed
    runs.by_seed.setChecked(False)
    assert runs.table.rowCount() == 6 and runs.table.horizontalHeaderItem(0).text() == "run"


def test_the_chart_shows_the_validation_ic_band_per_epoch(qtbot, runs_folder):
    from studio.gui.runs import RunsWidget

    runs = RunsWidget(runs_folder)
    qtbot.addWidget(runs)
    runs.refresh()
    runs.by_seed.setChecked(True)
    runs.table.selectRow(0)
    runs.chart_kind.setCurrentIndex(1)
    assert runs.plot.getAxis("bottom").labelText == "epoch" and len(runs.bands) == 1
    paths = json.loads(runs.table.item(0, 0).data(Qt.ItemDataRole.UserRole + 1))
    ics = np.array([[json.loads(line)["valid"]["ic"] for line in (Path(p) / "metrics.jsonl").read_text().splitlines()]
                    for p in paths])
    band = runs.bands[0]
    np.testing.assert_array_equal(band["dates"], np.arange(1, ics.shape[1] + 1))
    np.testing.assert_allclose(band["mean"], ics.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(band["std"], ics.std(axis=0, ddof=1), rtol=1e-12)
    runs.chart_kind.setCurrentIndex(0)
    assert runs.plot.getAxis("bottom").labelText == "date"


def test_two_selected_runs_compare_and_their_changed_nodes_light_up(qtbot, runs_folder, window):  # noqa: F811
    from PySide6.QtCore import QItemSelectionModel

    from studio.gui.runs import RunsWidget

    runs = RunsWidget(runs_folder)
    qtbot.addWidget(runs)
    runs.refresh()

    def setting(row):
        path = Path(runs.table.item(row, 0).data(Qt.ItemDataRole.UserRole + 1))
        config = json.loads((path / "config.json").read_text())
        graph = json.loads((path / "graph.json").read_text())
        return config["seed"], graph["nodes"]["gru_1"]["params"]["hidden_size"]

    rows = {setting(r): r for r in range(runs.table.rowCount())}
    assert runs.compare_selected() is None  # nothing selected: nothing to compare
    model = runs.table.selectionModel()
    for key in ((0, 8), (0, 16)):  # Ctrl+click two runs of one seed
        model.select(runs.table.model().index(rows[key], 0),
                     QItemSelectionModel.SelectionFlag.Select | QItemSelectionModel.SelectionFlag.Rows)
    dialog = runs.compare_selected()
    qtbot.addWidget(dialog)
    text = dialog.text.toPlainText()
    assert ("gru_1.hidden_size: 8 -> 16" in text) != ("gru_1.hidden_size: 16 -> 8" in text)
    assert "settings: the same" in text and "figures (test split):" in text
    assert dialog.highlight_button.isEnabled()
    with qtbot.waitSignal(runs.highlightNodes) as signal:
        qtbot.mouseClick(dialog.highlight_button, Qt.MouseButton.LeftButton)
    graph_file, ids = signal.args
    assert ids == ["gru_1"] and Path(graph_file).name == "graph.json"

    window.runs.highlightNodes.emit(graph_file, ids)  # as the dialog's button does in the studio
    tab = window.current_tab()
    assert tab is not None and Path(tab.document.path) == Path(graph_file)
    assert tab.scene.selected_nodes() == ["gru_1"]
