"""The main window's docks, declared in one list that MainWindow reads (as napari's add_dock_widget).

A dock is one DockSpec: the window makes the widget with its factory, keeps it as the attribute the
spec names, puts it in a QDockWidget named for the saved layout (QMainWindow.saveState keys docks by
object name, so renaming one orphans the layout: bump STATE_VERSION then), places it in its area,
tabified with or split under an earlier dock, and lists it in the View menu. Specs are made in list
order, so a factory may use the widgets of the specs before it. The ones marked after_show are made
once the window is on screen (their modules import pyqtgraph and, later, torch).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QWidget

Area = Qt.DockWidgetArea


@dataclass(frozen=True)
class DockSpec:
    #: the key of the dock in MainWindow.docks
    name: str
    #: the dock's title bar and its View-menu entry
    title: str
    area: Qt.DockWidgetArea
    #: makes the dock's widget, given the window
    make: Callable[[object], QWidget]
    #: the window attribute that holds the widget (window.inspector, window.training, …)
    attribute: str
    #: the earlier dock whose tab group this one joins
    tabified_with: str | None = None
    #: the earlier dock this one sits under, both visible
    split_under: str | None = None
    #: the tab shown first in its group
    raised: bool = False
    in_view_menu: bool = True
    #: made once the window shows (finish_setup), not with the window
    after_show: bool = False
    #: the name saveState/restoreState know the dock by; the title when empty
    object_name: str = ""

    @property
    def layout_name(self) -> str:
        return self.object_name or self.title


def _palette(window) -> QWidget:
    from studio.gui.palette import Palette

    palette = Palette(window.registry, window)
    palette.activated.connect(window.add_at_centre)
    return palette


def _inspector(window) -> QWidget:
    from studio.gui.inspector import Inspector

    return Inspector(window)


def _training(window) -> QWidget:
    from studio.gui.training import TrainingPanel

    return TrainingPanel(window)


def _plots(window) -> QWidget:
    from studio.gui.plots import PlotsWidget

    plots = PlotsWidget(window)
    plots.setMinimumHeight(160)
    return plots


def _runs(window) -> QWidget:
    from studio.gui.runs import RunsWidget

    return RunsWidget(window.training.runs_dir, window)


def _queue(window) -> QWidget:
    from studio.gui.queue import QueueWidget

    return QueueWidget(window, window.training)


#: every dock of the main window, in the order they are made and listed in the View menu
DOCKS: tuple[DockSpec, ...] = (
    DockSpec("palette", "Palette", Area.LeftDockWidgetArea, _palette, "palette_widget"),
    DockSpec("inspector", "Inspector", Area.RightDockWidgetArea, _inspector, "inspector"),
    # the inspector above the training panel, both visible: watch a run and edit at once
    DockSpec("training", "Training", Area.RightDockWidgetArea, _training, "training", split_under="inspector",
             after_show=True),
    DockSpec("plots", "Plots", Area.BottomDockWidgetArea, _plots, "plots", raised=True, after_show=True),
    DockSpec("runs", "Runs", Area.BottomDockWidgetArea, _runs, "runs", tabified_with="plots", after_show=True),
    DockSpec("queue", "Queue", Area.BottomDockWidgetArea, _queue, "queue", tabified_with="runs", after_show=True),
)
