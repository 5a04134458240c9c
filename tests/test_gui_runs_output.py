"""Issue 24, as the user met it: the runs table's highlighted rows and the chart, the tear sheet shown in
the studio, the exported chart, plot titles per run, the Tab search and palette, the gallery menu's order,
the unsaved-changes box for gallery files, a run's graph tab and the wording of a stopped run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, QPointF, Qt, QTimer
from PySide6.QtGui import QColor, QImage
from PySide6.QtWidgets import QApplication, QMessageBox

from tests.conftest import GRAPHS
from tests.test_gui_training import records_of, window  # noqa: F401  (the fixture: a real window)
from tests.test_report import random_frame, write_run

#: Qt's own QMessageBox.question, before the suite's guard replaces it (a test that answers the real box)
REAL_QUESTION = QMessageBox.question


def fake_run(folder: Path, name: str, sharpe: float, daily: list[tuple[str, float]]) -> Path:
    """A run directory with test figures and a daily.csv of (date, long-short) on test dates."""
    run = folder / name
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"graph": {"name": "g"}, "status": "finished"}))
    (run / "metrics.json").write_text(json.dumps({"splits": {"test": {"ic": 0.01, "sharpe": sharpe, "dates": 40}}}))
    lines = ["date,split,ic,rank_ic,long,short,long_short,turnover"]
    lines += [f"{date},test,0.1,0.1,0.01,0.0,{value},0.2" for date, value in daily]
    (run / "daily.csv").write_text("\n".join(lines) + "\n")
    return run


def two_days(value: float) -> list[tuple[str, float]]:
    return [("2024-01-02", value), ("2024-01-03", value)]


# ---- 7: the highlighted rows are the runs the chart draws ------------------------------------------------

def test_the_chart_draws_the_highlighted_runs_after_a_sort_and_after_a_run_lands(qtbot, tmp_path):
    from studio.gui.runs import COLUMNS, RunsWidget

    folder = tmp_path / "runs"
    for name, sharpe in (("20240101-000001-a", 1.0), ("20240101-000002-b", 3.0), ("20240101-000003-c", 2.0)):
        fake_run(folder, name, sharpe, two_days(sharpe / 100))
    runs = RunsWidget(folder)
    qtbot.addWidget(runs)
    runs.resize(1400, 500)
    runs.show()
    runs.refresh()

    def highlighted() -> list[str]:
        return sorted({runs.table.item(i.row(), 0).text() for i in runs.table.selectedIndexes()})

    def drawn() -> list[str]:
        return sorted(label.text for _sample, label in runs.legend.items)

    def click_row(name: str, modifier=Qt.KeyboardModifier.NoModifier) -> None:
        (row,) = [r for r in range(runs.table.rowCount()) if runs.table.item(r, 0).text() == name]
        rect = runs.table.visualItemRect(runs.table.item(row, 0))
        qtbot.mouseClick(runs.table.viewport(), Qt.MouseButton.LeftButton, modifier, rect.center())

    click_row("20240101-000002-b")
    chosen = ["20240101-000002-b"]
    assert highlighted() == drawn() == chosen
    # the user sorts by run name with a click on its header: the row moves, the highlight goes with it
    header = runs.table.horizontalHeader()
    qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton,
                     pos=QPoint(header.sectionViewportPosition(0) + 10, header.height() // 2))
    assert highlighted() == drawn() == chosen
    # a queued run lands (the queue refreshes the table) while sorted by Sharpe: the rows shift
    runs.table.sortItems([k for k, _ in COLUMNS].index("sharpe"), Qt.SortOrder.AscendingOrder)
    fake_run(folder, "20240101-000000-new", 0.5, two_days(0.005))
    runs.refresh()
    assert runs.table.rowCount() == 4
    assert highlighted() == drawn() == chosen
    # sorted by run, a second run Ctrl+clicked, then an older run lands above them
    runs.table.sortItems(0, Qt.SortOrder.AscendingOrder)
    click_row("20240101-000000-new", Qt.KeyboardModifier.ControlModifier)
    chosen = ["20240101-000000-new", "20240101-000002-b"]
    assert highlighted() == drawn() == chosen
    fake_run(folder, "20231231-000000-older", 0.1, two_days(0.001))
    runs.refresh()
    assert runs.table.rowCount() == 5
    assert highlighted() == drawn() == chosen
    # the colours follow the run ids, not the rows: the same run keeps its colour whichever way it sorts
    colours = {label.text: sample.item.opts["pen"].color().name() for sample, label in runs.legend.items}
    runs.table.sortItems(0, Qt.SortOrder.DescendingOrder)
    runs.overlay()
    assert {label.text: sample.item.opts["pen"].color().name() for sample, label in runs.legend.items} == colours


def test_the_runs_dock_fits_beside_the_training_panel_at_1280x800(window, qtbot):  # noqa: F811
    runs = window.runs
    for i in range(3):
        fake_run(Path(runs.folder), f"20261207-19454{i}-default", 1.0, two_days(0.01 * i))
    window.resize(1203, 752)  # the window on a 1280 x 800 screen
    window.settle_docks()
    window.docks["runs"].raise_()
    runs.refresh()
    runs.table.selectAll()
    qtbot.wait(50)
    # its controls (nine of them in one row) made it wider than the room under the canvas: the dock then
    # spread over the training panel beside it
    assert runs.minimumSizeHint().width() <= 600
    assert runs.width() <= window.docks["runs"].width()
    # and the legend's two columns of run names made the chart wider than its view: its right side was cut
    assert len(runs.legend.items) == 3
    assert runs.chart.ci.size().width() <= runs.chart.viewport().width()


# ---- 10: the tear sheet shows in the studio --------------------------------------------------------------

@pytest.mark.parametrize("suffix", ["html", "png"])
def test_report_shows_the_sheet_in_the_studio_and_says_where_it_was_written(qtbot, tmp_path, monkeypatch,
                                                                           suffix):
    from PySide6.QtGui import QDesktopServices
    from PySide6.QtWidgets import QFileDialog

    from studio.gui.runs import ReportDialog, RunsWidget

    folder = tmp_path / "runs"
    write_run(folder / "20240101-000000-sheet", random_frame())
    runs = RunsWidget(folder)
    qtbot.addWidget(runs)
    runs.refresh()
    runs.table.selectRow(0)
    target = tmp_path / "out folder" / f"sheet.{suffix}"
    target.parent.mkdir()
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), ""))
    asked: list[str] = []

    def no_launcher(url) -> bool:  # qt.qpa.services: Unable to detect a launcher
        asked.append(url.toLocalFile())
        return False

    monkeypatch.setattr(QDesktopServices, "openUrl", no_launcher)
    qtbot.mouseClick(runs.report_button, Qt.MouseButton.LeftButton)
    dialog = runs.report_dialog
    assert isinstance(dialog, ReportDialog) and dialog.isVisible()
    qtbot.waitExposed(dialog)
    assert target.is_file() and asked == [], "nothing is handed to a browser unasked"
    assert str(target) in dialog.path_label.text()
    assert "IC" in dialog.headline.text()
    picture = dialog.picture.pixmap()
    assert not picture.isNull() and picture.width() <= dialog.scroll.viewport().width()
    assert picture.height() > picture.width(), "the whole sheet, six panels under one another"
    qtbot.mouseClick(dialog.open_folder_button, Qt.MouseButton.LeftButton)
    assert asked == [str(target.parent)] and "copy the path" in dialog.note.text()
    dialog.close()


# ---- 10: the exported chart ------------------------------------------------------------------------------

def _background_rows_at_bottom(image: QImage) -> int:
    white = QColor("white").rgb()
    rows = 0
    for y in range(image.height() - 1, -1, -1):
        if any(image.pixel(x, y) != white for x in range(0, image.width(), 2)):
            break
        rows += 1
    return rows


def _legend_text_height(image: QImage) -> int:
    """The height of the lowest run of rows holding dark (text) pixels: the legend's line, at the bottom."""
    def dark(y: int) -> bool:
        return any(QColor(image.pixel(x, y)).lightness() < 100 for x in range(0, image.width() // 2))

    y = image.height() - 1
    while y > 0 and not dark(y):
        y -= 1
    bottom = y
    while y > 0 and dark(y):
        y -= 1
    return bottom - y


def _line_thickness(image: QImage, colour: str) -> int:
    """The most pixels of one column near the middle that are (nearly) the curve's colour."""
    want = QColor(colour)
    best = 0
    for x in range(image.width() * 2 // 5, image.width() * 3 // 5, 7):
        count = sum(1 for y in range(image.height())
                    if max(abs(QColor(image.pixel(x, y)).red() - want.red()),
                           abs(QColor(image.pixel(x, y)).green() - want.green()),
                           abs(QColor(image.pixel(x, y)).blue() - want.blue())) < 40)
        best = max(best, count)
    return best


def test_the_exported_chart_scales_lines_and_legend_fills_the_image_and_dates_carry_the_year(qtbot, tmp_path):
    import numpy as np

    from studio.gui.runs import PALETTE, RunsWidget

    dates = [str(d)[:10] for d in np.arange(np.datetime64("2024-02-05"), np.datetime64("2024-04-26"))]
    fake_run(tmp_path / "runs", "20240101-000000-a", 1.0, [(d, 0.01 if i == 0 else 0.0) for i, d in enumerate(dates)])
    runs = RunsWidget(tmp_path / "runs")
    qtbot.addWidget(runs)
    runs.resize(1280, 330)  # the dock's height at 1280 x 800
    runs.show()
    runs.refresh()
    runs.table.selectRow(0)
    qtbot.waitExposed(runs)
    small, large = tmp_path / "small.png", tmp_path / "large.png"
    runs.export_png(str(small), width=1600, light=True)
    runs.export_png(str(large), width=3200, light=True)
    one, two = QImage(str(small)), QImage(str(large))
    assert (one.width(), two.width()) == (1600, 3200)
    # the lines and the legend grow with the image as the axis text does (Qt drew both at screen size: a
    # line 2 pixels wide on a 1600-pixel image)
    assert _line_thickness(one, PALETTE[0]) >= 3
    assert _line_thickness(two, PALETTE[0]) >= 1.7 * _line_thickness(one, PALETTE[0])
    assert _legend_text_height(two) >= 1.7 * _legend_text_height(one) > 10
    # no empty band under the legend
    assert _background_rows_at_bottom(one) < 0.04 * one.height()
    # the screen's own pens are back afterwards
    assert runs.plot.listDataItems()[0].opts["pen"].widthF() == 2
    # February to April of one year: the date labels say which year
    axis = runs.plot.getAxis("bottom")
    low, high = runs.plot.viewRange()[0]
    labels = [text for spacing, values in axis.tickValues(low, high, axis.width())
              for text in axis.tickStrings(values, 1.0, spacing)]
    assert labels and any("2024" in text for text in labels), labels


# ---- 9: the plots' titles start afresh with each run -----------------------------------------------------

def test_the_plot_titles_name_no_dates_of_the_last_run_when_a_new_one_starts(qtbot, tmp_path):
    from studio.gui.plots import PlotsWidget

    run = fake_run(tmp_path, "run", 1.0, two_days(0.01))
    plots = PlotsWidget()
    qtbot.addWidget(plots)
    start = {"kind": "start", "oracle_ic": {}}
    epoch = {"kind": "epoch", "epoch": 1, "train_loss": 0.1, "valid_loss": 0.1, "valid": {"ic": 0.02, "rank_ic": 0.02},
             "daily": {"ic": [0.1, 0.2], "long": [0.01, 0.0], "short": [0.0, 0.0], "long_short": [0.005, 0.0],
                       "dates": ["2024-01-02", "2024-01-03"]}}
    for record in (start, epoch, {"kind": "done", "run_dir": str(run)}):
        plots.add_record(record)
    plots.redraw()
    assert "test dates" in plots.pnl_plot.titleLabel.text and "test dates" in plots.daily_plot.titleLabel.text
    plots.add_record(start)  # the next run begins
    plots.redraw()
    for plot in (plots.pnl_plot, plots.daily_plot):
        assert "dates" not in plot.titleLabel.text and "epoch" not in plot.titleLabel.text, plot.titleLabel.text


# ---- 9: Tab search, the palette -------------------------------------------------------------------------

def test_tab_search_for_last_picks_the_last_step_node(window, qtbot):  # noqa: F811
    tab = window.open_file(GRAPHS / "default.json")
    window.open_search(tab, QPointF(0, 400))
    popup = window.search_popup
    qtbot.keyClicks(popup.edit, "last")
    assert popup.list.currentItem().data(Qt.ItemDataRole.UserRole) == "reduce_time"
    assert "Bar window" not in popup.list.currentItem().text()
    before = set(tab.graph.nodes)
    qtbot.keyClick(popup.edit, Qt.Key.Key_Return)
    (added,) = set(tab.graph.nodes) - before
    assert tab.graph.nodes[added].type == "reduce_time" and tab.graph.nodes[added].params["mode"] == "last"


def test_palette_names_are_whole_at_1280x800(window, qtbot):  # noqa: F811
    window.resize(1203, 752)  # the window on a 1280 x 800 screen
    window.settle_docks()
    qtbot.wait(50)
    tree = window.palette_widget.tree
    metrics = tree.fontMetrics()
    cut = []
    for i in range(tree.topLevelItemCount()):
        group = tree.topLevelItem(i)
        for j in range(group.childCount()):
            item = group.child(j)
            rect = tree.visualItemRect(item)
            if rect.left() + metrics.horizontalAdvance(item.text(0)) + 4 > tree.viewport().width():
                cut.append(item.text(0))
    assert cut == []
    assert window.docks["palette"].width() < 0.25 * window.width(), "the canvas keeps most of the width"


def test_a_double_clicked_palette_node_lands_whole_in_the_view(window, qtbot):  # noqa: F811
    tab = window.open_file(GRAPHS / "default.json")
    qtbot.waitExposed(tab.view)
    tab.view.scale(2.0, 2.0)  # zoomed in, as one is to read the node one adds
    tree = window.palette_widget.tree
    (item,) = [tree.topLevelItem(i).child(j) for i in range(tree.topLevelItemCount())
               for j in range(tree.topLevelItem(i).childCount())
               if tree.topLevelItem(i).child(j).data(0, Qt.ItemDataRole.UserRole) == "gru"]
    for _ in range(2):  # the second lands beside the first (its spot is taken), still in view
        before = set(tab.graph.nodes)
        tree.itemDoubleClicked.emit(item, 0)
        (added,) = set(tab.graph.nodes) - before
        node = tab.scene.nodes[added]
        visible = tab.view.mapToScene(tab.view.viewport().rect()).boundingRect()
        assert visible.contains(node.sceneBoundingRect()), (visible, node.sceneBoundingRect())


# ---- 9: the gallery menu, unsaved gallery files, a run's graph tab ---------------------------------------

def test_the_gallery_menu_sorts_numbers_by_value(qtbot, tmp_path):
    from PySide6.QtCore import QSettings

    from studio.gui.main_window import MainWindow
    from studio.gui.recovery import Recovery
    from studio.nodes import default_registry

    gallery = tmp_path / "gallery"
    (gallery / "cells").mkdir(parents=True)
    for n in (1, 10, 2, 3):
        shutil.copy(GRAPHS / "default.json", gallery / "cells" / f"convgru_{n}.json")
    for n in (12, 9):
        (gallery / f"set_{n}").mkdir()
        shutil.copy(GRAPHS / "default.json", gallery / f"set_{n}" / "model.json")
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    w = MainWindow(default_registry(), gallery, settings=settings, recovery=Recovery(tmp_path / "recovery"))
    qtbot.addWidget(w)
    menus = [a for a in w.gallery_menu.actions() if a.menu() is not None]
    assert [a.text() for a in menus] == ["cells", "set_9", "set_12"]
    assert [a.text() for a in menus[0].menu().actions()] == ["convgru_1", "convgru_2", "convgru_3", "convgru_10"]


def test_unsaved_changes_to_a_gallery_file_default_to_save_as(window, qtbot, tmp_path, monkeypatch):  # noqa: F811
    from PySide6.QtWidgets import QFileDialog

    tab = window.open_file(GRAPHS / "default.json")  # the window's gallery is graphs/
    original = (GRAPHS / "default.json").read_bytes()
    tab.add_node("relu", QPointF(300, 600))
    seen: dict[str, str] = {}

    def answer_the_box() -> None:
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox):
            QTimer.singleShot(20, answer_the_box)
            return
        seen["default"] = box.defaultButton().text()
        seen["text"] = box.text()
        box.defaultButton().click()  # Enter: what the default does

    copy = tmp_path / "my default.json"
    chosen: list[str] = []

    def save_as(parent, title, start, filters):
        chosen.append(start)
        return str(copy), filters

    monkeypatch.setattr(QMessageBox, "question", REAL_QUESTION)
    monkeypatch.setattr(QFileDialog, "getSaveFileName", save_as)
    QTimer.singleShot(20, answer_the_box)
    assert window._confirm_discard([tab.document])
    assert seen["default"] == "Save As…" and "gallery example" in seen["text"]
    assert chosen and Path(chosen[0]).parent != GRAPHS, "Save As starts among the user's files"
    assert (GRAPHS / "default.json").read_bytes() == original, "the gallery file was written over"
    assert copy.is_file() and tab.document.path == copy and not tab.document.modified
    # the user's own copy is an ordinary file: Save is the default there
    tab.add_node("relu", QPointF(600, 600))
    QTimer.singleShot(20, answer_the_box)
    assert window._confirm_discard([tab.document])
    assert seen["default"] == "Save" and "relu" in copy.read_text()


def test_a_run_s_graph_opens_in_a_tab_named_after_the_run(window, qtbot, tmp_path):  # noqa: F811
    run = Path(window.runs.folder) / "20240101-000000-default"
    run.mkdir(parents=True)
    shutil.copy(GRAPHS / "default.json", run / "graph.json")
    (run / "config.json").write_text(json.dumps({"graph": {"name": "default"}, "status": "finished"}))
    window.runs.refresh()
    window.runs.table.selectRow(0)
    window.runs.open_selected()
    tab = window.current_tab()
    assert tab.document.path == run / "graph.json"
    title = window.tabs.tabText(window.tabs.currentIndex())
    assert "20240101-000000-default" in title and "graph.json" not in title


# ---- 9: a stopped run's wording --------------------------------------------------------------------------

def test_a_stopped_run_says_so_once(window, qtbot):  # noqa: F811
    window.open_file(GRAPHS / "default.json")
    panel = window.training
    panel.epochs.setValue(50)
    seen = records_of(panel)
    qtbot.mouseClick(panel.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: any(r["kind"] == "step" for r in seen), timeout=120_000)
    qtbot.mouseClick(panel.stop_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: seen[-1]["kind"] == "done", timeout=30_000)
    text = panel.status.text()
    status = seen[-1]["status"]
    assert "at epoch" in text and text.lower().count(status) == 1, text  # not "stopped: stopped at epoch 1"
