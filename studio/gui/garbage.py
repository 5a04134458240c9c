"""Python's cyclic garbage collector runs on the GUI thread only, while worker threads run.

A collection runs on whichever thread's allocation trips the threshold. Run on a training thread, it
can free Qt wrappers that belong to the GUI thread and destroy their C++ objects there; such a
destructor can wait for a lock the GUI thread holds while that thread waits for the GIL, and then
nothing ever runs again (not even a watchdog that needs the GIL). So while a worker runs, automatic
collection is off and pyqtgraph's ``GarbageCollector`` collects from a timer on the GUI thread (the
pattern of pyqtgraph and calibre); when the last worker ends, the collector's settings are as before.
"""

from __future__ import annotations

import gc

import shiboken6
from PySide6.QtCore import QObject, QThread, Slot


class GuiThreadGarbageCollection(QObject):
    """``hold(thread)`` before a worker thread starts; the hold ends when the thread has finished."""

    INTERVAL_S = 0.25

    def __init__(self) -> None:
        super().__init__()
        self._threads: set[QThread] = set()
        self._collector = None
        self._was_enabled = True

    def hold(self, thread: QThread) -> None:
        if not self._threads:
            from pyqtgraph.util.garbage_collector import GarbageCollector

            self._was_enabled = gc.isenabled()
            self._collector = GarbageCollector(interval=self.INTERVAL_S)  # turns automatic collection off
        self._threads.add(thread)
        # this object lives on the GUI thread, so the slot is queued there when the worker ends
        thread.finished.connect(self._thread_finished)

    @property
    def active(self) -> bool:
        return self._collector is not None

    @Slot()
    def _thread_finished(self) -> None:
        # the sender, not isFinished(): finished() is emitted just before the thread is done
        self._threads.discard(self.sender())
        self._threads = {t for t in self._threads if shiboken6.isValid(t) and not t.isFinished()}
        if self._threads or self._collector is None:
            return
        self._collector.timer.stop()
        self._collector = None
        if self._was_enabled:
            gc.enable()


def freeze_long_lived_objects() -> None:
    """Collect once on the GUI thread and move what is alive out of later collections' reach (the first
    training step imports hundreds of modules; full collections over them stalled the window)."""
    gc.collect()
    gc.freeze()


_shared: GuiThreadGarbageCollection | None = None


def gui_garbage_collection() -> GuiThreadGarbageCollection:
    """The process's one instance (created on the GUI thread by the first worker's start)."""
    global _shared
    if _shared is None:
        _shared = GuiThreadGarbageCollection()
    return _shared
