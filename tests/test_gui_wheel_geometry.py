"""The mouse wheel scrolls panels, not the settings under the pointer; the window's size follows the
screen it opens on (issue 24, items 6 and 10)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from PySide6.QtCore import QPoint, QPointF, QRect, QSettings, QSize, Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QComboBox, QDialog, QFormLayout, QMessageBox, QSpinBox

from studio.gui.main_window import MainWindow
from studio.gui.recovery import Recovery
from studio.nodes import default_registry
from tests.conftest import GRAPHS, ROOT


def make_window(qtbot, tmp_path) -> MainWindow:
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    w = MainWindow(default_registry(), GRAPHS, settings=settings, recovery=Recovery(tmp_path / "recovery"))
    qtbot.addWidget(w)
    return w


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch):
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Discard)
    return make_window(qtbot, tmp_path)


def wheel_over(widget, notches: int = -3) -> None:
    """Turn the wheel with the pointer over ``widget`` as the system does (QTest's event is spontaneous:
    Qt gives the focus by policy and hands an ignored event on to the parents, as for a real mouse)."""
    top = widget.window()
    at = QPointF(widget.mapTo(top, widget.rect().center()))
    QTest.wheelEvent(top.windowHandle(), at, QPoint(0, 120 * notches))
    QApplication.processEvents()


def test_scrolling_the_training_panel_over_stocks_leaves_the_value(window, qtbot):
    window.resize(1203, 752)  # a 1280 x 800 screen: the training settings scroll
    window.show()
    qtbot.waitExposed(window)
    window.finish_setup()
    qtbot.wait(50)
    panel = window.training
    panel.stocks.setValue(240)
    bar = panel.scroll.verticalScrollBar()
    assert bar.maximum() > 0, "the settings should scroll in this window"
    bar.setValue(0)
    qtbot.wait(20)
    assert panel.scroll.viewport().rect().contains(panel.stocks.mapTo(panel.scroll.viewport(), QPoint(5, 5)))
    assert not panel.stocks.hasFocus()
    wheel_over(panel.stocks, notches=-3)
    assert panel.stocks.value() == 240, "the wheel changed an unfocused setting"
    assert not panel.stocks.hasFocus(), "the wheel gave the box the focus"
    assert bar.value() > 0, "the wheel did not scroll the panel"
    # a box the user clicked into takes the wheel
    bar.setValue(0)
    qtbot.mouseClick(panel.stocks, Qt.MouseButton.LeftButton)
    assert panel.stocks.hasFocus()
    wheel_over(panel.stocks, notches=-3)
    assert panel.stocks.value() == 237 and bar.value() == 0


def test_boxes_made_later_in_a_dialog_ignore_the_wheel_unless_focused(window, qtbot):
    window.show()
    dialog = QDialog(window)
    form = QFormLayout(dialog)
    count, choice = QSpinBox(), QComboBox()
    count.setRange(0, 100)
    count.setValue(50)
    choice.addItems(["a", "b", "c"])
    form.addRow("count", count)
    form.addRow("choice", choice)
    dialog.show()
    qtbot.waitExposed(dialog)
    assert count.focusPolicy() == choice.focusPolicy() == Qt.FocusPolicy.StrongFocus
    dialog.setFocus()
    assert not count.hasFocus() and not choice.hasFocus()
    for box in (count, choice):
        wheel_over(box, notches=-1)
    assert (count.value(), choice.currentIndex()) == (50, 0)
    choice.setFocus()
    wheel_over(choice, notches=-1)
    assert choice.currentIndex() == 1
    dialog.close()


WINDOW_ON_A_SCREEN = r"""
import json, sys
from PySide6.QtCore import QRect, QSettings
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QMessageBox
from studio.gui.main_window import MainWindow
from studio.gui.recovery import Recovery
from studio.nodes import default_registry

folder, place = sys.argv[1], json.loads(sys.argv[2])
app = QApplication([])
QMessageBox.question = staticmethod(lambda *a, **k: QMessageBox.StandardButton.Discard)
w = MainWindow(default_registry(), None, settings=QSettings(folder + "/settings.ini", QSettings.Format.IniFormat),
               recovery=Recovery(__import__("pathlib").Path(folder) / "recovery"))
w.show()
QTest.qWaitForWindowExposed(w)
w.finish_setup()
QTest.qWait(100)
if place:
    w.setGeometry(QRect(*place))
    QTest.qWait(50)
g = w.geometry()
print(json.dumps([g.x(), g.y(), g.width(), g.height()]))
w.close()
"""


def window_on_a_screen(tmp_path, size: tuple[int, int], place: list[int] | None = None) -> QRect:
    """Start a studio on a screen of ``size`` (Qt's offscreen screens are set up by a file), put its
    window at ``place`` if given, close it; the window's geometry once it had opened."""
    width, height = size
    screens = tmp_path / f"screen-{width}x{height}.json"
    screens.write_text(json.dumps({"screens": [{"name": "screen", "x": 0, "y": 0, "width": width,
                                                "height": height, "logicalDpi": 96, "logicalBaseDpi": 96,
                                                "dpr": 1}]}))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "QT_QPA_PLATFORM": f"offscreen:configfile={screens}"}
    done = subprocess.run([sys.executable, "-c", WINDOW_ON_A_SCREEN, str(tmp_path), json.dumps(place)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return QRect(*json.loads(done.stdout.strip().splitlines()[-1]))


def test_a_window_left_on_a_smaller_screen_reopens_in_proportion(tmp_path):
    first = window_on_a_screen(tmp_path, (1280, 800))
    assert first.size() == QSize(1203, 752)  # 94 % of the screen, centred: how the studio first opens
    got = window_on_a_screen(tmp_path, (1600, 1000))
    large = QRect(0, 0, 1600, 1000)
    assert got.width() >= 1480 and got.height() >= 920, f"reopened as {got} on {large}: small, in the corner"
    assert large.contains(got)
    assert abs(got.center().x() - large.center().x()) <= 3 and abs(got.center().y() - large.center().y()) <= 3
    # and back on the small screen it is as it was there
    back = window_on_a_screen(tmp_path, (1280, 800))
    assert max(abs(a - b) for a, b in zip(back.getRect(), first.getRect(), strict=True)) <= 2, (back, first)


def test_a_window_reopens_where_it_was_on_a_screen_of_the_same_size(tmp_path):
    left = QRect(100, 80, 1300, 850)
    assert window_on_a_screen(tmp_path, (1600, 1000), [100, 80, 1300, 850]) == left
    assert window_on_a_screen(tmp_path, (1600, 1000)) == left
