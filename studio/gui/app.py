"""Start the studio: ``studio`` / ``studio gui [FILE] [--screenshot OUT.png]``.

Nothing here imports torch: the window shows first, and torch loads when a run starts.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")

from PySide6.QtCore import QTimer
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

from studio import __version__
from studio.gui.main_window import MainWindow
from studio.gui.recovery_dialog import offer_recovery


def dark_palette() -> QPalette:
    palette = QPalette()
    base, text = QColor("#23262b"), QColor("#e6e6e6")
    for role, colour in (
        (QPalette.ColorRole.Window, QColor("#2a2e34")), (QPalette.ColorRole.WindowText, text),
        (QPalette.ColorRole.Base, base), (QPalette.ColorRole.AlternateBase, QColor("#2c3036")),
        (QPalette.ColorRole.Text, text), (QPalette.ColorRole.Button, QColor("#30353c")),
        (QPalette.ColorRole.ButtonText, text), (QPalette.ColorRole.Highlight, QColor("#3d7ab8")),
        (QPalette.ColorRole.HighlightedText, QColor("white")), (QPalette.ColorRole.ToolTipBase, QColor("#30353c")),
        (QPalette.ColorRole.ToolTipText, text), (QPalette.ColorRole.PlaceholderText, QColor("#7c848e")),
    ):
        palette.setColor(role, colour)
    # disabled controls look disabled (a Stop button that does nothing must not look pressable)
    faded = QColor("#6a717b")
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText):
        palette.setColor(QPalette.ColorGroup.Disabled, role, faded)
    palette.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Button, QColor("#292d32"))
    palette.setColor(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Base, QColor("#26292e"))
    return palette


def application() -> QApplication:
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Model Studio")
    app.setOrganizationName("Model Studio")
    app.setApplicationVersion(__version__)
    app.setStyle("Fusion")
    app.setPalette(dark_palette())
    return app


def make_window(file: str | None, gallery: Path | None) -> MainWindow:
    from studio.nodes import default_registry

    window = MainWindow(default_registry(), gallery)
    if file:
        window.open_file(file)
    else:
        window.new_document()
    return window


def run(file: str | None = None, screenshot: str | None = None, gallery: Path | None = None) -> int:
    started = time.perf_counter()
    app = application()
    window = make_window(file, gallery)
    window.show()
    window.shown_after = time.perf_counter() - started
    if screenshot:
        def shoot() -> None:
            app.processEvents()
            tab = window.current_tab()
            if tab is not None:
                tab.view.frame_all()
            app.processEvents()
            window.grab().save(screenshot)
            app.quit()

        QTimer.singleShot(0, window.finish_setup)
        QTimer.singleShot(300, shoot)
        return _exec_then_tear_down(app, window)
    QTimer.singleShot(0, window.finish_setup)
    QTimer.singleShot(50, lambda: offer_recovery(window))
    return _exec_then_tear_down(app, window)


def _exec_then_tear_down(app: QApplication, window: MainWindow) -> int:
    """Run the event loop, then delete the window while the application still lives. Left to Python's
    finalisation, Qt objects die in no set order, and one destroyed after the QApplication crashed the
    process at exit now and then (about one start in ten on a loaded machine, after the work was done)."""
    import gc

    import shiboken6

    code = app.exec()
    training = getattr(window, "training", None) if shiboken6.isValid(window) else None
    if training is not None and training.is_running():  # the loop ended another way than by closing
        training.stop(wait=True)  # a QThread deleted while it runs aborts the process
    if shiboken6.isValid(window):
        shiboken6.delete(window)  # its children, docks, plots and timers with it
    app.processEvents()
    gc.collect()
    return code
