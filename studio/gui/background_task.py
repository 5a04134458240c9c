"""The worker every run action of the Runs dock uses (predict, export, ensemble) and the dialog that runs
them: Close never waits for the work and never destroys a running thread."""

from __future__ import annotations

import threading

from PySide6.QtCore import QThread, Signal
from PySide6.QtWidgets import QApplication, QDialog, QPushButton

from studio.core.text import error_line
from studio.gui.garbage import gui_garbage_collection

#: tasks still running: held here (not by a dialog that may be closed and collected) until they end
_running: set[BackgroundTask] = set()
#: whether the quit hook that waits for them is connected
_quit_hooked = False


def _wait_for_tasks() -> None:
    """At quit: ask every task to stop and let it end (a QThread destroyed while it runs aborts the process)."""
    for task in list(_running):
        task.cancel.set()
    for task in list(_running):
        task.wait()


class BackgroundTask(QThread):
    """Runs ``work(cancel)`` off the GUI thread; ``succeeded(result)`` or ``failed(one line)`` on the GUI
    thread. ``cancel`` (a threading.Event) is set by ``stop()``: the GUI side never waits for the work."""

    succeeded = Signal(object)
    failed = Signal(str)

    def __init__(self, work, expected: tuple[type[BaseException], ...] = ()) -> None:
        super().__init__()  # no parent: a closed dialog's deletion must not take a running thread with it
        self.work, self.expected = work, expected
        self.cancel = threading.Event()
        self.finished.connect(self._ended)

    def start(self) -> None:  # type: ignore[override]
        global _quit_hooked
        app = QApplication.instance()
        if not _quit_hooked and app is not None:
            app.aboutToQuit.connect(_wait_for_tasks)
            _quit_hooked = True
        _running.add(self)
        gui_garbage_collection().hold(self)
        super().start()

    def run(self) -> None:
        try:
            result = self.work(self.cancel)
        except self.expected as exc:  # the core's own one-line refusals
            self.failed.emit(error_line(exc))
        except Exception as exc:  # anything else still ends as one line in the dialog, never a traceback
            self.failed.emit(f"{type(exc).__name__}: {error_line(exc)}")
        else:
            self.succeeded.emit(result)

    def stop(self) -> None:
        self.cancel.set()

    def _ended(self) -> None:
        self.wait()  # finished() comes just before the thread has ended: let it end, then let it go
        _running.discard(self)


class TaskDialog(QDialog):
    """A dialog whose work runs on BackgroundTasks: ``self.status`` shows a refusal in one line, the
    answer of a task it has since replaced (or of any task once closed) is dropped, and Close, Escape and
    the window's X stop its tasks without waiting."""

    #: the task whose answer the dialog waits for (subclasses may run more: ``tasks``)
    task: BackgroundTask | None = None

    def tasks(self) -> list[BackgroundTask | None]:
        return [self.task]

    def current(self, task: BackgroundTask) -> bool:
        return task is self.task and not task.cancel.is_set()

    def _refuse(self, line: str) -> bool:
        self.status.setStyleSheet("color: #e05252")
        self.status.setText(line)
        return False

    def _task_failed(self, task: BackgroundTask, button: QPushButton, what: str, line: str) -> None:
        if not self.current(task):
            return  # closed or replaced meanwhile: nobody is waiting for it
        button.setEnabled(True)
        self._refuse(f"Cannot {what}: {line}")

    def done(self, code: int) -> None:
        # stop, never wait: a worker ends at its next check (an export, which has none, when it is done)
        # and its answer is dropped
        for task in self.tasks():
            if task is not None:
                task.stop()
        super().done(code)
