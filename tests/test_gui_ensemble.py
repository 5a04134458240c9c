"""The studio's Runs table reads an ensemble (studio ensemble) as it reads any run: a row with its test
figures, and its cumulative long-short drawn from its daily.csv when it is selected."""

from __future__ import annotations

import json

import pyqtgraph as pg
import pytest

from studio.cli import main
from tests.test_ensemble import GRAPHS, TRAIN


@pytest.fixture(scope="module")
def runs_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gui-ensemble") / "runs"
    for seed in (0, 1, 2):
        assert main(["train", str(GRAPHS / "default.json"), "--seed", str(seed), "--out", str(folder), *TRAIN]) == 0
    assert main(["ensemble", *map(str, sorted(folder.iterdir())), "--to", str(folder / "ens-3-seeds")]) == 0
    return folder


def test_the_runs_table_lists_an_ensemble_with_its_figures_and_draws_it(qtbot, runs_folder):
    from studio.gui.runs import RunsWidget

    runs = RunsWidget(runs_folder)
    qtbot.addWidget(runs)
    runs.resize(1400, 700)
    runs.refresh()
    assert runs.table.rowCount() == 4
    names = [runs.table.item(r, 0).text() for r in range(4)]
    row = names.index("ens-3-seeds (ensemble of 3, rank)")  # marked as studio compare marks it
    test = json.loads((runs_folder / "ens-3-seeds" / "metrics.json").read_text())["splits"]["test"]
    headers = [runs.table.horizontalHeaderItem(c).text() for c in range(runs.table.columnCount())]
    assert runs.table.item(row, headers.index("status")).text() == "finished"
    assert runs.table.item(row, headers.index("IC")).text() == f"{test['ic']:.4f}"
    runs.table.selectRow(row)
    drawn = [item for item in runs.plot.items if isinstance(item, pg.PlotDataItem)]
    assert len(drawn) == 1
    x, y = drawn[0].getData()
    assert len(x) == test["dates"]
    assert y[-1] == pytest.approx(sum(r["long_short"] for r in _test_rows(runs_folder / "ens-3-seeds")), rel=1e-9)


def _test_rows(run):
    import pandas as pd

    return pd.read_csv(run / "daily.csv").query("split == 'test'").to_dict("records")
