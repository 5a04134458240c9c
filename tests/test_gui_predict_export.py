"""Predict… and Export model… in the Runs dock, used as a researcher uses them: select a run in the table,
click, fill in the dialog, press its button. The window's scores are studio.train.predict's, its .py export
scores raw bars as the run scored its test dates, a run that lacks what they need has them greyed with the
reason, and Close during a slow prediction leaves no thread running."""

from __future__ import annotations

import importlib.util
import json
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PySide6.QtCore import Qt

from studio.cli import main
from studio.train import predict as predict_core
from tests.conftest import ROOT
from tests.test_export_preprocess import BATCH_SHAPE_TOLERANCE, _compare, _panel_and_test_dates, _raw_bars

GRAPH = ROOT / "graphs" / "default.json"


@pytest.fixture(scope="module")
def runs_folder(tmp_path_factory) -> Path:
    """A runs folder with one short synthetic run."""
    folder = tmp_path_factory.mktemp("runs")
    assert main(["train", str(GRAPH), "--synthetic", "stocks=30", "--synthetic", "days=60", "--epochs", "1",
                 "--threads", "1", "--out", str(folder), "--quiet"]) == 0
    return folder


def _run(folder: Path) -> Path:
    (run,) = [p for p in folder.iterdir() if (p / "config.json").exists()]
    return run


def _runs_dock(qtbot, folder: Path):
    from studio.gui.runs import RunsWidget

    runs = RunsWidget(folder)
    qtbot.addWidget(runs)
    runs.resize(1400, 500)
    runs.show()
    runs.refresh()
    return runs


def _click_row(qtbot, runs, name: str) -> None:
    (row,) = [r for r in range(runs.table.rowCount()) if runs.table.item(r, 0).text().startswith(name)]
    rect = runs.table.visualItemRect(runs.table.item(row, 0))
    qtbot.mouseClick(runs.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def _test_span(run: Path) -> tuple[str, str]:
    dates = pd.read_parquet(run / "predictions.parquet").query("split == 'test'")["date"]
    return str(dates.min().date()), str(dates.max().date())


def _open_predict(qtbot, runs, run: Path):
    _click_row(qtbot, runs, run.name)
    assert runs.predict_button.isEnabled(), runs.predict_button.toolTip()
    qtbot.mouseClick(runs.predict_button, Qt.MouseButton.LeftButton)
    dialog = runs.predict_dialog
    qtbot.waitUntil(lambda: dialog.dates is not None, timeout=30000)  # the data's dates, read off the GUI thread
    return dialog


def _choose_range(dialog, first: str, last: str) -> None:
    dialog.date_kind.setCurrentText("a range")
    dialog.first.setCurrentText(first)
    dialog.last.setCurrentText(last)


def _shown_frame(dialog) -> pd.DataFrame:
    model = dialog.table.model()
    return pd.DataFrame([[model.text(r, c) for c in range(model.columnCount())] for r in range(model.rowCount())],
                        columns=model.columns)


def test_a_run_predicted_in_the_window_shows_and_writes_what_studio_predict_gives(qtbot, runs_folder, tmp_path):
    run = _run(runs_folder)
    runs = _runs_dock(qtbot, runs_folder)
    dialog = _open_predict(qtbot, runs, run)
    assert "synthetic" in dialog.source.text()  # the run's recorded source, one line
    first, last = _test_span(run)
    _choose_range(dialog, first, last)
    qtbot.mouseClick(dialog.predict_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.result is not None or "Cannot" in dialog.status.text(), timeout=30000)
    assert dialog.result is not None, dialog.status.text()
    want = predict_core.predict(run, dates=f"{first}..{last}")
    shown = _shown_frame(dialog)
    assert list(shown.columns) == list(want.frame.columns) == ["date", "symbol", "score", "rank", "label", "ic"]
    assert len(shown) == len(want.frame) > 100
    assert (shown["date"] == want.frame["date"].dt.strftime("%Y-%m-%d")).all()
    assert (shown["symbol"] == want.frame["symbol"]).all()
    assert (shown["rank"] == want.frame["rank"].astype(str)).all()
    assert np.allclose(shown["score"].astype(float), want.frame["score"], atol=5e-7, rtol=0)  # shown to 6 decimals
    assert dialog.result.frame.equals(want.frame)  # what the table holds: the core's frame itself
    # the notes in full, as the command prints them
    assert dialog.notes.toPlainText().splitlines()[1:] == [f"note: {n}" for n in want.notes]
    # the same prediction written to a file: the file is the core's frame, bit for bit
    out = tmp_path / "scores.parquet"
    dialog.output.setText(str(out))
    qtbot.mouseClick(dialog.predict_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "wrote" in dialog.status.text() or "Cannot" in dialog.status.text(), timeout=30000)
    assert f"wrote {out}" in dialog.status.text()
    written = pd.read_parquet(out)
    written["date"] = written["date"].astype(want.frame["date"].dtype)  # parquet keeps dates in ms
    pd.testing.assert_frame_equal(written, want.frame, check_exact=True)
    # a wrong kind of file and a date outside the data: one line in the dialog, no traceback
    dialog.output.setText(str(tmp_path / "scores.txt"))
    qtbot.mouseClick(dialog.predict_button, Qt.MouseButton.LeftButton)
    assert dialog.status.text().endswith("the output must end in .csv, .parquet or .pkl (or be empty)")
    dialog.output.setText("")
    dialog.date_kind.setCurrentText("one date")
    dialog.first.setEditable(True)
    dialog.first.setCurrentText("1999-01-04")
    qtbot.mouseClick(dialog.predict_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.predict_button.isEnabled(), timeout=30000)
    assert dialog.status.text().startswith("Cannot predict: --dates 1999-01-04: outside the data")
    assert "\n" not in dialog.status.text() and "Traceback" not in dialog.status.text()
    dialog.close()


def test_the_py_export_made_in_the_window_scores_a_test_date_as_predictions_parquet(qtbot, runs_folder, tmp_path):
    run = _run(runs_folder)
    runs = _runs_dock(qtbot, runs_folder)
    _click_row(qtbot, runs, run.name)
    assert runs.export_model_button.isEnabled(), runs.export_model_button.toolTip()
    qtbot.mouseClick(runs.export_model_button, Qt.MouseButton.LeftButton)
    dialog = runs.export_model_dialog
    assert dialog.with_run.isChecked()  # the run's preprocessing goes with the model unless asked otherwise
    dialog.output.setText(str(tmp_path / "out" / "winner.py"))
    qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.export_button.isEnabled(), timeout=60000)
    out = tmp_path / "out" / "winner.py"
    assert f"Wrote {out}" in dialog.status.text(), dialog.status.text()
    assert "score(bars) take raw bars" in dialog.status.text()
    assert dialog.copy_button.isEnabled()
    qtbot.mouseClick(dialog.copy_button, Qt.MouseButton.LeftButton)
    from PySide6.QtWidgets import QApplication

    assert QApplication.clipboard().text() == str(out)
    spec_file = importlib.util.spec_from_file_location("winner_export", out)
    exported = importlib.util.module_from_spec(spec_file)
    spec_file.loader.exec_module(exported)
    spec, panel, test, dates, index = _panel_and_test_dates(run)
    history = spec["days"] + spec["volume_days"]
    model = exported.load_model()
    scores = exported.score(_raw_bars(panel, spec, index[-1], history), panel.traded[:, index[-1]], model=model)
    _compare(scores, panel.symbols, test[test["date"] == dates[-1]], BATCH_SHAPE_TOLERANCE)
    # the plain export (no preprocessing) as .pt2: written, and said to take normalised windows
    dialog.with_run.setChecked(False)
    dialog.format.setCurrentIndex(1)
    assert dialog.output.text().endswith("winner.pt2")
    qtbot.mouseClick(dialog.export_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.export_button.isEnabled(), timeout=60000)
    assert (tmp_path / "out" / "winner.pt2").is_file(), dialog.status.text()
    assert "takes (x, mask)" in dialog.status.text()
    dialog.close()


def test_runs_that_lack_what_predict_and_export_need_have_them_greyed_with_the_reason(qtbot, runs_folder, tmp_path):
    folder = tmp_path / "runs"
    old = Path(shutil.copytree(_run(runs_folder), folder / "20200101-000000-old"))
    (old / "preprocess.json").unlink()  # a run from before runs stored their preprocessing
    walk = folder / "20200101-000001-walk"
    for fold in ("fold-1", "fold-2", "fold-10"):
        shutil.copytree(_run(runs_folder), walk / "folds" / fold)
    config = json.loads((old / "config.json").read_text())
    config.update(kind="walk_forward", walk_forward={"folds": 3})
    (walk / "config.json").write_text(json.dumps(config))
    shutil.copytree(_run(runs_folder), folder / "20200101-000002-fine")
    runs = _runs_dock(qtbot, folder)
    # nothing selected: greyed, saying what to select
    assert not runs.predict_button.isEnabled() and not runs.export_model_button.isEnabled()
    assert runs.predict_button.toolTip().startswith("Select one run")
    _click_row(qtbot, runs, "20200101-000000-old")
    for button in (runs.predict_button, runs.export_model_button):
        assert not button.isEnabled()
        assert "made before runs stored their preprocessing (no preprocess.json)" in button.toolTip()
    qtbot.mouseClick(runs.predict_button, Qt.MouseButton.LeftButton)
    assert not hasattr(runs, "predict_dialog")  # a greyed button does nothing
    _click_row(qtbot, runs, "20200101-000001-walk")
    assert not runs.predict_button.isEnabled()
    assert "walk-forward" in runs.predict_button.toolTip()
    assert str(walk / "folds" / "fold-10") in runs.predict_button.toolTip()  # its last fold, as the CLI names it
    _click_row(qtbot, runs, "20200101-000002-fine")
    assert runs.predict_button.isEnabled() and runs.export_model_button.isEnabled()
    assert "studio predict in the window" in runs.predict_button.toolTip()


def test_close_during_a_slow_prediction_stops_it_and_leaves_no_thread_running(qtbot, runs_folder, monkeypatch):
    from studio.gui import background_task

    run = _run(runs_folder)
    slow_input = predict_core._input

    def one_date_a_second(*args, **kwargs):
        time.sleep(1.0)
        return slow_input(*args, **kwargs)

    monkeypatch.setattr(predict_core, "_input", one_date_a_second)
    runs = _runs_dock(qtbot, runs_folder)
    dialog = _open_predict(qtbot, runs, run)
    first, last = _test_span(run)
    _choose_range(dialog, first, last)
    qtbot.mouseClick(dialog.predict_button, Qt.MouseButton.LeftButton)
    task = dialog.task
    qtbot.waitUntil(task.isRunning, timeout=5000)
    time.sleep(0.2)  # inside the slow step
    started = time.monotonic()
    qtbot.mouseClick(dialog.close_button, Qt.MouseButton.LeftButton)
    assert time.monotonic() - started < 0.5  # Close does not wait for the prediction
    assert not dialog.isVisible()
    qtbot.waitUntil(lambda: not task.isRunning(), timeout=5000)  # it stops at the next date, not at the last
    qtbot.waitUntil(lambda: not background_task._running, timeout=5000)
    assert dialog.result is None and dialog.table.model() is None  # its answer was dropped


def test_other_data_chosen_in_the_dialog_lists_its_dates_and_predicts_as_predict_data_does(
        qtbot, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    from studio.core.graph_file import load_graph
    from studio.train.config import SourceSpec, TrainConfig
    from studio.train.engine import Trainer
    from tests.test_predict import small_graph, write_market

    monkeypatch.setenv("STUDIO_CACHE_DIR", str(tmp_path / "cache"))
    write_market(tmp_path / "bars", days=40)
    trainer = Trainer(load_graph(small_graph(tmp_path)), SourceSpec(kind="import", path=str(tmp_path / "bars")),
                      TrainConfig(epochs=1, threads=1, patience=0), out_dir=tmp_path / "runs")
    done = list(trainer.run())[-1]
    assert done["status"] == "finished", done["message"]
    run = Path(done["run_dir"])
    newer = write_market(tmp_path / "newer", days=45)  # five more days of bars, elsewhere
    runs = _runs_dock(qtbot, tmp_path / "runs")
    dialog = _open_predict(qtbot, runs, run)
    assert len(dialog.dates) == 40
    # Other data… > Folder…, as the training panel's import dialog picks a folder
    assert dialog.other_button.menu() is dialog.other_menu
    assert [a.text() for a in dialog.other_menu.actions()] == ["File…", "Folder…"]
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *_args, **_kw: str(newer))
    dialog.other_menu.actions()[1].trigger()
    assert dialog.source.text() == str(newer) and dialog.own_button.isVisible()
    qtbot.waitUntil(lambda: dialog.dates is not None, timeout=30000)
    assert len(dialog.dates) == 45 and dialog.first.count() == 45  # the new data's dates, listed
    qtbot.mouseClick(dialog.predict_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.result is not None or "Cannot" in dialog.status.text(), timeout=30000)
    assert dialog.result is not None, dialog.status.text()
    want = predict_core.predict(run, data=str(newer))
    assert dialog.result.frame.equals(want.frame) and dialog.result.notes == want.notes
    assert str(dialog.result.frame["date"].iloc[0].date()) == str(dialog.dates[-1])
    # a folder with no bars: its dates cannot be read, said in one line under the dates
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *_args, **_kw: str(empty))
    dialog.other_menu.actions()[1].trigger()
    qtbot.waitUntil(lambda: "Cannot" in dialog.dates_note.text(), timeout=30000)
    said = dialog.dates_note.text()
    assert said.startswith("Cannot read the data's dates: ") and "\n" not in said
    assert not dialog.first.isEnabled()
    # back to the run's own data
    qtbot.mouseClick(dialog.own_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.dates is not None, timeout=30000)
    assert len(dialog.dates) == 40 and not dialog.own_button.isVisible()
    dialog.close()
