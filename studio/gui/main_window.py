"""The studio's main window: editor tabs, palette, inspector, training, plots and runs; menus,
shortcuts, files (atomic saves, recent files, the gallery, autosave and crash recovery)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import shiboken6
from PySide6.QtCore import QPointF, QRect, QSettings, Qt, QTimer
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence, QUndoGroup
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QDockWidget,
    QFileDialog,
    QMainWindow,
    QMenu,
    QMessageBox,
    QTabWidget,
)

from studio import __version__
from studio.core.document import Endpoint, Graph, InputSpec, block_reference
from studio.core.edits import (
    CLIPBOARD_FORMAT,
    EditError,
    can_connect,
    copy_selection,
    expand_in,
    group_in,
    paste_into,
)
from studio.core.graph_file import GraphFileError
from studio.core.layout import NODE_SIZE
from studio.core.registry import Registry
from studio.core.text import natural_key
from studio.gui.docks import DOCKS, DockSpec
from studio.gui.editor_document import EditorDocument
from studio.gui.palette import SearchPopup
from studio.gui.recovery import Recovery
from studio.gui.view import EditorTab
from studio.gui.wheel_guard import install_wheel_guard

MAX_RECENT = 10
#: the version of the saved dock layout (bump when the docks change, so an old layout is ignored)
STATE_VERSION = 4


def name_save_as() -> None:
    """Relabel the Save button of the "Unsaved changes" box on screen as Save As… (QMessageBox.question
    has no such standard button; the box is found as the modal widget while it waits for an answer)."""
    box = QApplication.activeModalWidget()
    if isinstance(box, QMessageBox) and box.windowTitle() == "Unsaved changes":
        button = box.button(QMessageBox.StandardButton.Save)
        if button is not None:
            button.setText("Save As…")


#: an edit is autosaved for crash recovery this long after the last change (and every minute)
AUTOSAVE_AFTER_EDIT_MS = 3_000

class MainWindow(QMainWindow):
    def __init__(self, registry: Registry, gallery: Path | None = None, settings: QSettings | None = None,
                 recovery: Recovery | None = None, dock_specs: Sequence[DockSpec] = DOCKS) -> None:
        super().__init__()
        # here, not in app.py alone: every window (the studio's, a test's) gets boxes that ignore the
        # wheel unless focused; the guard is installed on the application once
        install_wheel_guard()
        self.registry = registry
        self.gallery = gallery
        self.settings = settings or QSettings("Model Studio", "Model Studio")
        self.recovery = recovery or Recovery()
        self.undo_group = QUndoGroup(self)
        self.documents: list[EditorDocument] = []
        self.setWindowTitle("Model Studio")
        self._fit_to_screen()

        # plots and runs take the width under the palette and the canvas (four time series side by
        # side); the inspector and the training panel take the right side's full height, so that a
        # node's parameters and the run's settings both have room at 1280 x 800
        self.setCorner(Qt.Corner.BottomRightCorner, Qt.DockWidgetArea.RightDockWidgetArea)
        self.setCorner(Qt.Corner.BottomLeftCorner, Qt.DockWidgetArea.BottomDockWidgetArea)
        self.tabs = QTabWidget(self)
        self.tabs.setTabsClosable(True)
        self.tabs.setMovable(True)
        self.tabs.setDocumentMode(True)
        self.tabs.tabCloseRequested.connect(self.close_tab)
        self.tabs.currentChanged.connect(self._tab_changed)
        self.setCentralWidget(self.tabs)

        #: the declared docks (studio.gui.docks) by name, each made once; the widgets are attributes too
        self.dock_specs = tuple(dock_specs)
        self.docks: dict[str, QDockWidget] = {}
        self.view_menu: QMenu | None = None
        #: the training, plots, runs and queue docks come after the window shows (they import torch later)
        self.training = self.plots = self.runs = self.queue = None
        self._add_docks([spec for spec in self.dock_specs if not spec.after_show])
        self.search_popup = SearchPopup(registry, self)
        self.search_popup.chosen.connect(self._add_from_popup)
        self._popup_at = QPointF()

        self._make_actions()
        self._make_menus()
        self.statusBar().showMessage("Ready")
        self.autosave = QTimer(self)
        self.autosave.setInterval(60_000)
        self.autosave.timeout.connect(self.save_recovery)
        self.autosave.start()
        # and a few seconds after the last edit: a kill -9 a minute after an edit lost it (the drag of
        # many nodes, a burst of edits, restart the wait instead of writing at every step)
        self.autosave_after_edit = QTimer(self)
        self.autosave_after_edit.setSingleShot(True)
        self.autosave_after_edit.setInterval(AUTOSAVE_AFTER_EDIT_MS)
        self.autosave_after_edit.timeout.connect(self.save_recovery)

    # ---- layout ------------------------------------------------------------------------------
    def _fit_to_screen(self) -> None:
        """1500 x 920 where the screen has room, else 94 % of it (1280 x 800: 1203 x 752), centred."""
        screen = self.screen() or QApplication.primaryScreen()
        if screen is None:
            self.resize(1500, 920)
            return
        room = screen.availableGeometry()
        width = min(1500, int(room.width() * 0.94))
        height = min(920, int(room.height() * 0.94))
        self.resize(width, height)
        self.move(room.x() + (room.width() - width) // 2, room.y() + (room.height() - height) // 2)

    def settle_docks(self) -> None:
        """The first-run arrangement: palette left, inspector over training on the right, plots and
        runs tabbed along the bottom with over a third of the height; then what the user left last time
        (QMainWindow.saveState) replaces it. Sizes are set once the new docks are laid out (the next
        turn of the event loop), or Qt's first layout pass overrides them."""
        QTimer.singleShot(0, self._size_docks)

    def _size_docks(self) -> None:
        if not self._alive():
            return
        height = max(self.height(), 600)
        docks = self.docks
        if "plots" in docks:
            self.resizeDocks([docks["plots"]], [int(height * 0.38)], Qt.Orientation.Vertical)
        if "training" in docks:  # the user moves the split between them; saveState keeps it
            self.resizeDocks([docks["inspector"], docks["training"]], [int(height * 0.52), int(height * 0.42)],
                             Qt.Orientation.Vertical)
        self.resizeDocks([docks["palette"], docks["inspector"]], [int(self.width() * 0.15), int(self.width() * 0.25)],
                         Qt.Orientation.Horizontal)
        self._restore_geometry()
        state = self.settings.value("window/state")
        if state is not None:
            self.restoreState(state, STATE_VERSION)

    def _restore_geometry(self) -> None:
        """The window as it was left, as the same share of the screen it opens on: a window that filled
        a 1280 x 800 screen fills a 1600 x 1000 one too, instead of sitting small in its corner."""
        geometry = self.settings.value("window/geometry")
        if geometry is None:
            return
        self.restoreGeometry(geometry)  # the screen it was on, if there still; maximized stays maximized
        screen = self.screen() or QApplication.primaryScreen()
        if screen is None or self.isMaximized() or self.isFullScreen():
            return
        room = screen.availableGeometry()
        saved_room = _rect_setting(self.settings.value("window/screen"))
        saved = _rect_setting(self.settings.value("window/normal"))
        if saved_room is not None and saved is not None:
            across, down = room.width() / saved_room.width(), room.height() / saved_room.height()
            width = min(round(saved.width() * across), room.width())
            height = min(round(saved.height() * down), room.height())
            x = room.x() + min(max(round((saved.x() - saved_room.x()) * across), 0), room.width() - width)
            y = room.y() + min(max(round((saved.y() - saved_room.y()) * down), 0), room.height() - height)
            self.setGeometry(x, y, width, height)
        if not room.contains(self.frameGeometry()):
            self._fit_to_screen()  # it would run off this screen (its frame, or an older setting)

    def save_layout(self) -> None:
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState(STATE_VERSION))
        # where the window was on which room, to restore it in proportion on a screen of another size
        screen = self.screen()
        if screen is not None:
            normal = self.normalGeometry() if self.isMaximized() or self.isFullScreen() else self.geometry()
            self.settings.setValue("window/normal", _rect_text(normal))
            self.settings.setValue("window/screen", _rect_text(screen.availableGeometry()))

    def _add_docks(self, specs: Sequence[DockSpec]) -> None:
        """Make each spec's widget and dock, place it (tabified with or split under an earlier dock)
        and list it in the View menu; the raised one is shown first in its tab group."""
        for spec in specs:
            widget = spec.make(self)
            setattr(self, spec.attribute, widget)
            dock = QDockWidget(spec.title, self)
            dock.setObjectName(spec.layout_name)  # the saved layout's key for this dock
            dock.setWidget(widget)
            self.addDockWidget(spec.area, dock)
            if self.view_menu is not None and spec.in_view_menu:
                self.view_menu.addAction(dock.toggleViewAction())
            self.docks[spec.name] = dock
        for spec in specs:
            if spec.tabified_with is not None:
                self.tabifyDockWidget(self.docks[spec.tabified_with], self.docks[spec.name])
            if spec.split_under is not None:
                self.splitDockWidget(self.docks[spec.split_under], self.docks[spec.name], Qt.Orientation.Vertical)
        for spec in specs:
            if spec.raised:
                self.docks[spec.name].raise_()

    def _action(self, text: str, slot, shortcut=None, tip: str = "") -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            shortcuts = shortcut if isinstance(shortcut, list) else [shortcut]
            action.setShortcuts([QKeySequence(s) for s in shortcuts])
        action.setStatusTip(tip)
        action.triggered.connect(slot)
        self.addAction(action)
        return action

    def _make_actions(self) -> None:
        a = self._action
        self.act_new = a("&New", self.new_document, QKeySequence.StandardKey.New)
        self.act_open = a("&Open…", self.open_dialog, QKeySequence.StandardKey.Open)
        self.act_save = a("&Save", self.save, QKeySequence.StandardKey.Save)
        self.act_save_as = a("Save &As…", self.save_as, QKeySequence.StandardKey.SaveAs)
        self.act_close = a("&Close Tab", lambda: self.close_tab(self.tabs.currentIndex()), "Ctrl+W")
        # Ctrl+Q by name too: Qt has no Quit binding on platforms without a desktop theme (offscreen, Xvfb)
        self.act_quit = a("&Quit", self.close, "Ctrl+Q")
        self.act_undo = self.undo_group.createUndoAction(self, "&Undo")
        self.act_undo.setShortcuts([QKeySequence("Ctrl+Z")])
        self.act_redo = self.undo_group.createRedoAction(self, "&Redo")
        self.act_redo.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
        self.addAction(self.act_undo)
        self.addAction(self.act_redo)
        self.act_copy = a("&Copy", self.copy, QKeySequence.StandardKey.Copy)
        self.act_paste = a("&Paste", lambda: self.paste(), QKeySequence.StandardKey.Paste)
        self.act_duplicate = a("D&uplicate", self.duplicate, "Ctrl+D")
        self.act_delete = a("&Delete", self.delete, [QKeySequence.StandardKey.Delete, "Backspace"])
        self.act_select_all = a("Select &All", self.select_all, QKeySequence.StandardKey.SelectAll)
        self.act_group = a("&Group into Block", self.group, "Ctrl+G")
        self.act_expand = a("&Expand Block", self.expand, "Ctrl+Shift+G")
        self.act_frame = a("&Frame All", lambda: self.current_tab() and self.current_tab().view.frame_all(), "F")
        self.act_layout = a("&Auto-layout", lambda: self.current_tab() and self.current_tab().auto_layout(), "L")
        self.act_zoom_in = a("Zoom &In", lambda: self.current_tab() and self.current_tab().view.zoom(1.25), "Ctrl+=")
        self.act_zoom_out = a("Zoom &Out", lambda: self.current_tab() and self.current_tab().view.zoom(0.8), "Ctrl+-")
        for action in (self.act_frame, self.act_layout, self.act_delete):
            action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            self.tabs.addAction(action)

    def _make_menus(self) -> None:
        bar = self.menuBar()
        file = bar.addMenu("&File")
        for action in (self.act_new, self.act_open):
            file.addAction(action)
        self.recent_menu = file.addMenu("Open &Recent")
        self.gallery_menu = file.addMenu("&Gallery")
        self._fill_gallery()
        file.addSeparator()
        for action in (self.act_save, self.act_save_as, self.act_close):
            file.addAction(action)
        file.addSeparator()
        file.addAction(self.act_quit)
        self._fill_recent()
        edit = bar.addMenu("&Edit")
        for action in (self.act_undo, self.act_redo, None, self.act_copy, self.act_paste, self.act_duplicate,
                       self.act_delete, self.act_select_all, None, self.act_group, self.act_expand):
            edit.addSeparator() if action is None else edit.addAction(action)
        view = bar.addMenu("&View")
        for action in (self.act_frame, self.act_layout, self.act_zoom_in, self.act_zoom_out):
            view.addAction(action)
        view.addSeparator()
        for spec in self.dock_specs:
            if spec.name in self.docks and spec.in_view_menu:
                view.addAction(self.docks[spec.name].toggleViewAction())
        self.view_menu = view
        self.train_menu = bar.addMenu("&Train")
        help_menu = bar.addMenu("&Help")
        help_menu.addAction(self._action("&Keyboard Shortcuts", self.show_shortcuts, "Ctrl+/"))
        help_menu.addAction(self._action("&About Model Studio", self.about))

    def _fill_gallery(self) -> None:
        self.gallery_menu.clear()
        if self.gallery is None or not self.gallery.is_dir():
            self.gallery_menu.setEnabled(False)
            return

        def add_folder(menu: QMenu, folder: Path) -> None:
            for sub in sorted((p for p in folder.iterdir() if p.is_dir()), key=natural_key):
                files = list(sub.rglob("*.json"))
                if files:
                    add_folder(menu.addMenu(sub.name), sub)
            for path in sorted(folder.glob("*.json"), key=natural_key):
                action = menu.addAction(path.stem)
                action.setToolTip(str(path))
                action.triggered.connect(lambda _=False, p=path: self.open_file(p))

        add_folder(self.gallery_menu, self.gallery)

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        recent = [p for p in self.settings.value("recent", [], list) or [] if Path(p).is_file()]
        for path in recent:
            action = self.recent_menu.addAction(Path(path).name)
            action.setToolTip(path)
            action.triggered.connect(lambda _=False, p=path: self.open_file(p))
        self.recent_menu.setEnabled(bool(recent))

    def _remember(self, path: Path) -> None:
        recent = [str(path.resolve())] + [p for p in (self.settings.value("recent", [], list) or [])
                                          if p != str(path.resolve())]
        self.settings.setValue("recent", recent[:MAX_RECENT])
        self._fill_recent()

    # ---- tabs and documents ------------------------------------------------------------------
    def current_tab(self) -> EditorTab | None:
        widget = self.tabs.currentWidget()
        return widget if isinstance(widget, EditorTab) else None

    def tabs_of(self, document: EditorDocument) -> list[EditorTab]:
        return [self.tabs.widget(i) for i in range(self.tabs.count())
                if isinstance(self.tabs.widget(i), EditorTab) and self.tabs.widget(i).document is document]

    def add_document(self, document: EditorDocument, scope: str | None = None) -> EditorTab:
        if document not in self.documents:
            self.documents.append(document)
            self.undo_group.addStack(document.undo_stack)
            document.titleChanged.connect(self._update_titles)
            document.validated.connect(lambda _v, d=document: self._validated(d))
        tab = EditorTab(document, scope, self)
        tab.scene.message.connect(lambda text: self.statusBar().showMessage(text, 6000))
        tab.scene.selectionChanged.connect(lambda t=tab: self._selection_changed(t))
        tab.scene.nodeDoubleClicked.connect(lambda node_id, t=tab: self.open_block(t, node_id))
        tab.view.searchRequested.connect(lambda pos, t=tab: self.open_search(t, pos))
        tab.view.contextRequested.connect(lambda pos, at, t=tab: self.context_menu(t, pos, at))
        tab.scene.wireDroppedOnCanvas.connect(lambda end, out, pos, t=tab: self.open_search(t, pos, (end, out)))
        tab.leaveBlock.connect(lambda t=tab: self.leave_block(t))
        tab.documentChanged.connect(lambda _change, t=tab: self._document_changed(t))
        index = self.tabs.addTab(tab, tab.title)
        self.tabs.setCurrentIndex(index)
        QTimer.singleShot(0, tab.view.frame_all)
        self._update_titles()
        return tab

    def _tab_changed(self, index: int) -> None:
        tab = self.current_tab()
        if tab is not None:
            self.undo_group.setActiveStack(tab.document.undo_stack)
            self._selection_changed(tab)
            self._validated(tab.document)
        self._update_titles()

    def _document_changed(self, tab: EditorTab) -> None:
        if not self._alive():
            return
        self.autosave_after_edit.start()
        if tab.graph is None:  # its block went away (undo of a group, a deleted block)
            self.tabs.removeTab(self.tabs.indexOf(tab))
            tab.detach()
            tab.deleteLater()
            return
        if tab is self.current_tab():
            self.inspector.refresh()

    def _alive(self) -> bool:
        """False while Qt tears the window down (signals from dying children still arrive)."""
        return shiboken6.isValid(self) and shiboken6.isValid(self.tabs)

    def _selection_changed(self, tab: EditorTab) -> None:
        if not self._alive() or tab is not self.current_tab():
            return
        nodes = tab.scene.selected_nodes()
        self.inspector.show_node(tab, nodes[0] if len(nodes) == 1 else None)

    def _validated(self, document: EditorDocument) -> None:
        if not self._alive():
            return
        tab = self.current_tab()
        if tab is None or tab.document is not document:
            return
        v = document.validation
        errors = len(v.errors)
        text = (f"valid · {v.total_params:,} parameters" if not errors
                else f"{errors} problem{'s' if errors > 1 else ''}: {v.errors[0]}")
        self.statusBar().showMessage(text)

    def _update_titles(self) -> None:
        if not self._alive():
            return
        for i in range(self.tabs.count()):
            tab = self.tabs.widget(i)
            if isinstance(tab, EditorTab):
                self.tabs.setTabText(i, tab.title + (" *" if tab.document.modified else ""))
                self.tabs.setTabToolTip(i, str(tab.document.path or "not saved yet"))
        tab = self.current_tab()
        if tab is None:
            self.setWindowTitle("Model Studio")
            self.setWindowModified(False)
            return
        self.setWindowTitle(f"{tab.title}[*] — Model Studio")
        self.setWindowModified(tab.document.modified)

    # ---- files -------------------------------------------------------------------------------
    def new_document(self) -> EditorTab:
        graph = Graph(name="untitled", input=InputSpec(["close", "volume", "turnover"], 10, 24))
        graph.add_node("input", 1, {}, node_id="bars", pos=(0, 0))
        graph.add_node("output", 1, {}, node_id="score", pos=(600, 0))
        return self.add_document(EditorDocument(graph, self.registry, None, self))

    def open_dialog(self) -> None:
        start = str(self.gallery) if self.gallery else ""
        path, _ = QFileDialog.getOpenFileName(self, "Open graph", start, "Graph files (*.json)")
        if path:
            self.open_file(path)

    def open_file(self, path: str | Path) -> EditorTab | None:
        path = Path(path)
        for document in self.documents:
            # realpath, not resolve(): a symlink loop must reach the loader's one-line error, not raise here
            if document.path and os.path.realpath(document.path) == os.path.realpath(path):
                tabs = self.tabs_of(document)
                if tabs:
                    self.tabs.setCurrentWidget(tabs[0])
                    return tabs[0]
        try:
            document = EditorDocument.open(path, self.registry, self)
        except GraphFileError as exc:
            QMessageBox.warning(self, "Cannot open", str(exc))
            self.statusBar().showMessage(str(exc), 10000)
            return None
        if document.graph.load_problems:
            self.statusBar().showMessage(f"{path.name}: {len(document.graph.load_problems)} part(s) of the file "
                                         "could not be read; see the nodes marked in red", 10000)
        self._remember(path)
        tab = self.add_document(document)
        if document.laid_out and not document.graph.load_problems:  # after the tab's own status line
            where = ", ".join("the graph" if s is None else f"block {s}" for s in document.laid_out)
            self.statusBar().showMessage(f"{path.name}: laid out {where} (at the stored positions nodes or wires "
                                         "lay over nodes); saving keeps the new positions", 10000)
        return tab

    def save(self) -> bool:
        tab = self.current_tab()
        if tab is None:
            return False
        if tab.document.path is None or self.keep_apart(tab.document.path):  # never over a gallery example
            return self.save_as()
        return self._save(tab.document, tab.document.path)

    def save_as(self) -> bool:
        tab = self.current_tab()
        if tab is None:
            return False
        start = str(tab.document.path or (Path.cwd() / tab.document.title))
        if self.keep_apart(tab.document.path):  # a copy of an example or a run's graph goes among the user's files
            run = tab.document.run_dir
            start = str(Path.cwd() / (f"{run.name}.json" if run is not None else tab.document.path.name))
        path, _ = QFileDialog.getSaveFileName(self, "Save graph as", start, "Graph files (*.json)")
        if not path:
            return False
        if not path.endswith(".json"):
            path += ".json"
        return self._save(tab.document, Path(path))

    def _save(self, document: EditorDocument, path: Path) -> bool:
        try:
            document.save(path)
        except OSError as exc:
            QMessageBox.critical(self, "Cannot save", f"{path}: {exc.strerror or exc}")
            return False
        self.recovery.discard(document)
        self._remember(path)
        self.statusBar().showMessage(f"Saved {path}", 5000)
        self._update_titles()
        return True

    def close_tab(self, index: int) -> None:
        tab = self.tabs.widget(index)
        if not isinstance(tab, EditorTab):
            self.tabs.removeTab(index)
            return
        document = tab.document
        if len(self.tabs_of(document)) == 1 and not self._confirm_discard([document]):
            return
        # a block's tab goes back to the tab it was opened from (Qt would show a neighbour)
        parent = tab.opened_from
        self.tabs.removeTab(index)
        if parent is not None and shiboken6.isValid(parent) and self.tabs.indexOf(parent) >= 0:
            self.tabs.setCurrentWidget(parent)
        tab.detach()
        tab.deleteLater()
        if not self.tabs_of(document):
            self.documents.remove(document)
            self.undo_group.removeStack(document.undo_stack)
            self.recovery.discard(document)

    def keep_apart(self, path: Path | None) -> bool:
        """Whether a file should be saved under another name rather than over itself: a gallery example
        (the studio's own, shared by every user), a run's record of its graph, or a file this user cannot
        write."""
        if path is None:
            return False
        if Path(path).name == "graph.json" and (Path(path).parent / "config.json").is_file():
            return True
        if self.gallery is not None:
            try:
                if Path(path).resolve().is_relative_to(self.gallery.resolve()):
                    return True
            except OSError:
                pass
        return Path(path).exists() and not os.access(path, os.W_OK)

    def _confirm_discard(self, documents: list[EditorDocument]) -> bool:
        """Ask about unsaved documents; True when it is fine to go on. A gallery example, a run's graph or
        a read-only file is offered Save As… (the default button), never Save over it."""
        for document in documents:
            if not document.modified:
                continue
            apart = self.keep_apart(document.path)
            text = f"Save the changes to {document.title}?"
            if apart:
                text += ("\nIt is a gallery example, a run's record of its graph or a file you cannot write: "
                         "Save As… keeps your version under another name.")
                # the standard dialog (which tests replace) with its Save button renamed once it is up
                QTimer.singleShot(0, name_save_as)
            answer = QMessageBox.question(
                self, "Unsaved changes", text,
                QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard
                | QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Save)
            if answer == QMessageBox.StandardButton.Cancel:
                return False
            if answer == QMessageBox.StandardButton.Save:
                tabs = self.tabs_of(document)
                if tabs:
                    self.tabs.setCurrentWidget(tabs[0])
                if not (self.save_as() if apart else self.save()):
                    return False
        return True

    #: a quit answered "Yes" while a run trains: the window closes once the worker thread has ended
    _quitting_after_run = False

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.training is not None and self.training.is_running():
            if not self._quitting_after_run:
                answer = QMessageBox.question(self, "Training", "A run is in progress. Stop it and quit?")
                if answer != QMessageBox.StandardButton.Yes:
                    event.ignore()
                    return
                self._quitting_after_run = True
                self.statusBar().showMessage("Stopping the run, then quitting…")
                self.training.stop(then=self._close_after_run)
            # never closed under a running QThread (its destruction aborts the process); the window
            # stays live meanwhile, and the engine ends the run within about a second
            event.ignore()
            return
        queue = self.queue
        if queue is not None and queue.running():
            answer = QMessageBox.question(self, "Queue", "Queued runs are in progress. Stop them and quit? "
                                          "(studio sweep --resume continues them)")
            if answer != QMessageBox.StandardButton.Yes:
                event.ignore()
                return
            queue.stop_all(wait=True)
        if not self._confirm_discard(self.documents):
            event.ignore()
            return
        self.autosave.stop()  # discarded work must not be autosaved again after the close
        self.recovery.close()  # this studio's autosaves go with it: nothing is left to offer
        self.save_layout()
        for i in range(self.tabs.count()):  # no more selection signals into a closing window
            widget = self.tabs.widget(i)
            if isinstance(widget, EditorTab):
                widget.scene.blockSignals(True)
        event.accept()

    def _close_after_run(self) -> None:
        self._quitting_after_run = False  # a close cancelled later (unsaved changes) asks again next time
        self.close()

    def save_recovery(self) -> None:
        for document in self.documents:
            if document.modified:
                self.recovery.save(document)

    # ---- editing -----------------------------------------------------------------------------
    def add_at_centre(self, type_id: str) -> None:
        """A node from the palette (double-click) with its box centred in the view; where that spot is
        taken the node lands beside it, and the view then follows it, so it is always whole on screen."""
        tab = self.current_tab()
        if tab is None:
            return
        centre = tab.view.mapToScene(tab.view.viewport().rect().center())
        width, height = NODE_SIZE
        node_id = tab.add_node(type_id, QPointF(centre.x() - width / 2, centre.y() - height / 2))
        item = tab.scene.nodes.get(node_id) if node_id else None
        if item is None:
            return
        visible = tab.view.mapToScene(tab.view.viewport().rect()).boundingRect()
        if not visible.contains(item.sceneBoundingRect()):
            tab.view.centerOn(item)

    def open_search(self, tab: EditorTab, pos: QPointF, wire_from: tuple[Endpoint, bool] | None = None) -> None:
        """The search popup at ``pos``; ``wire_from`` (a port and whether it is an output): the node
        chosen is wired to that port (a wire let go over empty canvas)."""
        self._popup_at = pos
        self._wire_from = wire_from
        self.search_popup.open_at(tab.view.mapToGlobal(tab.view.mapFromScene(pos)))

    def _add_from_popup(self, type_id: str) -> None:
        tab = self.current_tab()
        if tab is None:
            return
        wire_from, self._wire_from = getattr(self, "_wire_from", None), None
        node_id = tab.add_node(type_id, self._popup_at)
        if node_id is None or wire_from is None:
            return
        end, output = wire_from
        v = tab.document.validation_of(tab.scope)
        ports = v.in_ports.get(node_id, ()) if output else v.out_ports.get(node_id, ())
        for port in ports:  # the first port the wire fits
            src, dst = (end, Endpoint(node_id, port.name)) if output else (Endpoint(node_id, port.name), end)
            if can_connect(tab.graph, v, src, dst) is None:
                tab.scene.connect_ports(src, dst)
                return
        self.statusBar().showMessage(f"{node_id} has no port that fits {end}", 6000)

    # ---- context menus -----------------------------------------------------------------------
    def context_menu(self, tab: EditorTab, pos: QPointF, at) -> QMenu:
        """The right-click menu for what is under ``pos``: a node, a wire, or the canvas."""
        from studio.gui.scene import EdgeItem, NodeItem, PortItem

        menu = QMenu(self)
        item = next((i for i in tab.scene.items(pos) if isinstance(i, NodeItem | EdgeItem | PortItem)), None)
        if isinstance(item, PortItem):
            item = item.node
        if isinstance(item, NodeItem):
            if not item.isSelected():
                tab.scene.select_nodes([item.node_id])
            node = tab.graph.nodes.get(item.node_id)
            if node is not None and block_reference(node) is not None:
                menu.addAction("Open block", lambda: self.open_block(tab, item.node_id))
            if node is not None and node.type == "block":
                menu.addAction(self.act_expand)
            menu.addAction(self.act_group)
            menu.addSeparator()
            menu.addAction(self.act_copy)
            menu.addAction(self.act_duplicate)
            wires = [e for e in tab.graph.edges if item.node_id in (e.src.node, e.dst.node)]
            disconnect = menu.addAction(f"Disconnect ({len(wires)} wire{'s' if len(wires) != 1 else ''})")
            disconnect.setEnabled(bool(wires))
            disconnect.triggered.connect(lambda: self._disconnect(tab, wires))
            menu.addAction(self.act_delete)
        elif isinstance(item, EdgeItem):
            tab.scene.clearSelection()
            item.setSelected(True)
            menu.addAction("Disconnect", lambda: self._disconnect(tab, [item.edge]))
            menu.addAction("Add a node here…", lambda: self.open_search(tab, pos))
        else:
            menu.addAction("Add node…", lambda: self.open_search(tab, pos))
            menu.addAction(self.act_paste)
            menu.addSeparator()
            for action in (self.act_select_all, self.act_frame, self.act_layout):
                menu.addAction(action)
        self.last_context_menu = menu  # for tests and screenshots
        menu.popup(at)
        return menu

    def _disconnect(self, tab: EditorTab, wires: list) -> None:
        def cut(g) -> None:
            for edge in wires:
                if edge in g.edges:
                    g.disconnect(edge)

        tab.document.edit(f"Disconnect {len(wires)} wire{'s' if len(wires) != 1 else ''}", cut, tab.scope)

    def leave_block(self, tab: EditorTab) -> None:
        """The breadcrumb's file part: to the tab of the file (opened again if it was closed)."""
        for other in self.tabs_of(tab.document):
            if other.scope is None:
                self.tabs.setCurrentWidget(other)
                return
        self.add_document(tab.document, None)

    def delete(self) -> None:
        tab = self.current_tab()
        if tab is not None:
            tab.delete_selection()

    def select_all(self) -> None:
        tab = self.current_tab()
        if tab is not None:
            for item in tab.scene.nodes.values():
                item.setSelected(True)

    def copy(self) -> None:
        tab = self.current_tab()
        if tab is None or not tab.scene.selected_nodes():
            return
        text = copy_selection(tab.graph, tab.scene.selected_nodes())
        # plain text (its JSON names the format): a QMimeData handed to the clipboard is freed twice at exit
        QApplication.clipboard().setText(text)
        self._copied = text  # for platforms without a system clipboard (offscreen)
        self.statusBar().showMessage(f"Copied {len(tab.scene.selected_nodes())} node(s)", 3000)

    def paste(self, text: str | None = None) -> list[str]:
        tab = self.current_tab()
        if tab is None:
            return []
        if text is None:
            text = QApplication.clipboard().text()
            if CLIPBOARD_FORMAT not in text:
                text = getattr(self, "_copied", "")
        if CLIPBOARD_FORMAT not in (text or ""):
            self.statusBar().showMessage("The clipboard holds no Model Studio nodes", 4000)
            return []
        try:
            added = tab.document.edit(f"Paste {len(text)} characters",
                                      lambda g: paste_into(g, tab.scope, text))
        except EditError as exc:
            self.statusBar().showMessage(str(exc), 6000)
            return []
        tab.scene.select_nodes(added)
        return added

    def duplicate(self) -> None:
        tab = self.current_tab()
        if tab is not None and tab.scene.selected_nodes():
            self.paste(copy_selection(tab.graph, tab.scene.selected_nodes()))

    def group(self) -> None:
        tab = self.current_tab()
        if tab is None:
            return
        chosen = tab.scene.selected_nodes()
        v = tab.document.validation_of(tab.scope)
        shapes = {Endpoint(n, p): s for n, ports in v.out_shapes.items() for p, s in ports.items()}
        try:
            block_id = tab.document.edit(f"Group {len(chosen)} nodes",
                                         lambda g: group_in(g, tab.scope, chosen, shapes=shapes))
        except EditError as exc:
            self.statusBar().showMessage(str(exc), 6000)
            return
        tab.scene.select_nodes([block_id])

    def expand(self) -> None:
        tab = self.current_tab()
        if tab is None:
            return
        blocks = [n for n in tab.scene.selected_nodes() if tab.graph.nodes[n].type == "block"]
        if not blocks:
            self.statusBar().showMessage("Select a block node to expand", 4000)
            return
        try:
            added = tab.document.edit("Expand block", lambda g: expand_in(g, tab.scope, blocks))
        except EditError as exc:
            self.statusBar().showMessage(str(exc), 6000)
            return
        tab.scene.select_nodes(added)

    def open_block(self, tab: EditorTab, node_id: str) -> None:
        node = tab.graph.nodes.get(node_id)
        name = block_reference(node) if node is not None else None  # block instances and per-day nodes
        if name is None:
            return
        entry = tab.document.graph.blocks.get(name)
        if entry is None or entry.graph is None:
            self.statusBar().showMessage(f"block {name!r} is not available", 5000)
            return
        if entry.path is not None:  # a block file: open it as a document of its own
            base = tab.document.path.parent if tab.document.path else Path.cwd()
            opened = self.open_file(base / entry.path)
            if opened is not None:
                opened.opened_from = tab
            return
        for i in range(self.tabs.count()):
            other = self.tabs.widget(i)
            if isinstance(other, EditorTab) and other.document is tab.document and other.scope == name:
                self.tabs.setCurrentIndex(i)
                other.opened_from = tab
                return
        self.add_document(tab.document, name).opened_from = tab

    def finish_setup(self) -> None:
        """Docks that need pyqtgraph (and, later, torch): built once the window is on screen."""
        if self.training is not None:
            return
        from studio.gui.training import wire_training

        self._add_docks([spec for spec in self.dock_specs if spec.after_show])
        wire_training(self)
        self.settle_docks()

    #: what the canvas does that no menu shows (with the actions' own shortcuts, Help > Keyboard shortcuts)
    GESTURES = (
        ("Add a node by name (search)", "Tab or Shift+A on the canvas"),
        ("Add a node from the palette", "drag it onto the canvas, or double-click it"),
        ("Wire two ports", "drag from an output to an input"),
        ("Add a node wired to a port", "drag from the port and let go on empty canvas"),
        ("Pick a wire up from an input", "drag from the connected input"),
        ("Select", "click, Ctrl+click, or drag a rubber band"),
        ("Move", "drag the selected nodes (they snap to the grid)"),
        ("Pan", "drag with the middle or right button"),
        ("Zoom", "mouse wheel"),
        ("Context menu", "right-click a node, a wire or the canvas"),
        ("Open a block", "double-click a block node"),
    )

    def shortcut_rows(self) -> list[tuple[str, str]]:
        """Every action with a shortcut, then the canvas gestures."""
        rows, seen = [], set()
        for action in self.findChildren(QAction):
            keys = ", ".join(k.toString(QKeySequence.SequenceFormat.NativeText) for k in action.shortcuts())
            name = action.text().replace("&", "")
            if keys and (name, keys) not in seen:
                seen.add((name, keys))
                rows.append((name, keys))
        return sorted(rows) + list(self.GESTURES)

    def show_shortcuts(self) -> QDialog:
        from PySide6.QtWidgets import QDialogButtonBox, QHeaderView, QTableWidget, QTableWidgetItem, QVBoxLayout

        dialog = QDialog(self)
        dialog.setWindowTitle("Keyboard shortcuts")
        rows = self.shortcut_rows()
        table = QTableWidget(len(rows), 2, dialog)
        table.setHorizontalHeaderLabels(["action", "keys"])
        for r, (name, keys) in enumerate(rows):
            table.setItem(r, 0, QTableWidgetItem(name))
            table.setItem(r, 1, QTableWidgetItem(keys))
        table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        table.verticalHeader().hide()
        table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(dialog.reject)
        layout = QVBoxLayout(dialog)
        layout.addWidget(table)
        layout.addWidget(buttons)
        dialog.resize(620, 560)
        dialog.show()
        self.shortcuts_dialog = dialog
        return dialog

    def about(self) -> None:
        QMessageBox.about(self, "Model Studio", f"Model Studio {__version__}\n"
                          "Design, train and compare networks for cross-sectional return prediction.")


def _rect_text(rect: QRect) -> str:
    return f"{rect.x()} {rect.y()} {rect.width()} {rect.height()}"


def _rect_setting(value: object) -> QRect | None:
    """A rectangle from the settings file ("x y width height"), or None for anything else."""
    if not isinstance(value, str):
        return None
    parts = value.split()
    if len(parts) != 4 or any(len(p) > 7 for p in parts):
        return None
    try:
        x, y, width, height = (int(p) for p in parts)
    except ValueError:
        return None
    return QRect(x, y, width, height) if width > 0 and height > 0 else None
