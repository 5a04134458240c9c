"""The main window's docks come from one declared list (studio.gui.docks.DOCKS)."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QLabel, QTabBar

from studio.gui.docks import DOCKS, DockSpec
from studio.gui.main_window import MainWindow
from studio.gui.recovery import Recovery
from studio.nodes import default_registry
from tests.conftest import GRAPHS


def notes(window) -> QLabel:
    return QLabel("notes", window)


NOTES = DockSpec("notes", "Notes", Qt.DockWidgetArea.LeftDockWidgetArea, notes, "notes_label",
                 after_show=True)


def make_window(qtbot, tmp_path, monkeypatch, specs=DOCKS) -> MainWindow:
    monkeypatch.setenv("STUDIO_RUNS_DIR", str(tmp_path / "runs"))
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(default_registry(), GRAPHS, settings=settings, recovery=Recovery(tmp_path / "recovery"),
                        dock_specs=specs)
    qtbot.addWidget(window)
    window.show()
    window.finish_setup()
    return window


def view_menu_entries(window) -> list[str]:
    return [action.text() for action in window.view_menu.actions() if not action.isSeparator()]


@pytest.mark.parametrize("specs", [DOCKS, (*DOCKS, NOTES)], ids=["declared", "one more"])
def test_every_declared_dock_is_made_in_its_area_with_its_view_menu_entry(qtbot, tmp_path, monkeypatch, specs):
    window = make_window(qtbot, tmp_path, monkeypatch, specs)
    assert list(window.docks) == [spec.name for spec in specs]
    for spec in specs:
        dock = window.docks[spec.name]
        assert dock.windowTitle() == spec.title
        assert dock.objectName() == spec.layout_name, "the saved layout knows the dock by this name"
        assert window.dockWidgetArea(dock) == spec.area
        assert dock.widget() is getattr(window, spec.attribute)
        # shown, or a tab behind another (docks added to a shown window show on the next event-loop turn)
        qtbot.waitUntil(lambda: dock.isVisible() or bool(window.tabifiedDockWidgets(dock)))  # noqa: B023
    # after Frame All, Auto-layout and the zooms, one entry per dock, in the declared order
    assert view_menu_entries(window)[4:] == [spec.title for spec in specs]


def test_the_bottom_docks_are_one_tab_group_with_plots_in_front_and_training_under_the_inspector(
        qtbot, tmp_path, monkeypatch):
    window = make_window(qtbot, tmp_path, monkeypatch)
    docks = window.docks
    qtbot.waitUntil(lambda: docks["plots"].isVisible())
    assert set(window.tabifiedDockWidgets(docks["plots"])) == {docks["runs"], docks["queue"]}
    tab_bars = [bar for bar in window.findChildren(QTabBar) if bar.parent() is window and bar.count()]
    assert [[bar.tabText(i) for i in range(bar.count())] for bar in tab_bars] == [["Plots", "Runs", "Queue"]]
    assert tab_bars[0].currentIndex() == 0, "the plots in front"
    assert window.tabifiedDockWidgets(docks["training"]) == []
    qtbot.waitUntil(lambda: docks["training"].y() > docks["inspector"].y() + docks["inspector"].height() - 5)
    assert abs(docks["training"].x() - docks["inspector"].x()) <= 2, "stacked in one column on the right"


def test_a_declared_dock_is_in_the_saved_layout_and_comes_back_hidden(qtbot, tmp_path, monkeypatch):
    window = make_window(qtbot, tmp_path, monkeypatch, (*DOCKS, NOTES))
    qtbot.waitUntil(lambda: window.docks["notes"].isVisible())
    window.docks["notes"].hide()
    window.save_layout()
    again = MainWindow(default_registry(), GRAPHS, settings=window.settings, recovery=Recovery(tmp_path / "again"),
                       dock_specs=(*DOCKS, NOTES))
    qtbot.addWidget(again)
    again.show()
    again.finish_setup()
    qtbot.wait(100)  # settle_docks restores the saved state on the next turn of the event loop
    assert not again.docks["notes"].isVisible()
    assert again.docks["palette"].isVisible()
