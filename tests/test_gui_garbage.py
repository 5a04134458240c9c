"""While a worker thread runs, Python's garbage collector runs on the GUI thread only."""

from __future__ import annotations

import gc
import threading

from PySide6.QtCore import QThread

from studio.gui.garbage import GuiThreadGarbageCollection


class Cycle:
    """Part of a reference cycle: only the cyclic collector frees it; says on which thread."""

    def __init__(self, freed_on: list[int]) -> None:
        self.me = self
        self.freed_on = freed_on

    def __del__(self) -> None:
        self.freed_on.append(threading.get_ident())


class MakesCycles(QThread):
    def __init__(self, freed_on: list[int], go: threading.Event) -> None:
        super().__init__()
        self.freed_on, self.go = freed_on, go

    def run(self) -> None:
        for _ in range(50):
            Cycle(self.freed_on)
        # live allocations enough to trip a gen-0 collection, were it on, and the GUI timer's check
        kept = [[i] for i in range(5_000)]
        self.go.wait(10)
        del kept


def settle_earlier_tests(qtbot) -> None:
    """What earlier tests left queued happens now, not in the middle of this test: deleting their
    windows frees thousands of objects, and each one freed lowers the collector's allocation count, so
    the timer would find it under the threshold and never collect; a training's late ``warmed`` signal
    freezes the collector's generations."""
    from PySide6.QtCore import QCoreApplication, QEvent

    qtbot.wait(50)
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    QCoreApplication.processEvents()
    gc.unfreeze()


def test_cycles_made_on_a_worker_are_collected_on_the_gui_thread(qtbot):
    settle_earlier_tests(qtbot)
    was_enabled = gc.isenabled()
    gc.enable()
    try:
        gc.collect()
        collection = GuiThreadGarbageCollection()
        freed_on: list[int] = []
        go = threading.Event()
        worker = MakesCycles(freed_on, go)
        collection.hold(worker)
        assert collection.active and not gc.isenabled()
        worker.start()
        try:
            qtbot.waitUntil(lambda: len(freed_on) == 50, timeout=10_000)  # the GUI timer's collections
        except qtbot.TimeoutError:
            raise AssertionError(f"{len(freed_on)} of 50 cycles freed; gc count {gc.get_count()}, threshold "
                                 f"{gc.get_threshold()}, frozen {gc.get_freeze_count()}") from None
        assert set(freed_on) == {threading.get_ident()}
        go.set()
        qtbot.waitUntil(lambda: not collection.active, timeout=10_000)
        assert worker.isFinished()
        assert gc.isenabled()  # as before the hold
    finally:
        (gc.enable if was_enabled else gc.disable)()


def test_the_settings_before_the_hold_come_back_with_two_workers(qtbot):
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        collection = GuiThreadGarbageCollection()
        first_go, second_go = threading.Event(), threading.Event()
        first, second = MakesCycles([], first_go), MakesCycles([], second_go)
        for worker in (first, second):
            collection.hold(worker)
            worker.start()
        first_go.set()
        qtbot.waitUntil(first.isFinished, timeout=10_000)
        qtbot.wait(100)
        assert collection.active  # the second still runs
        second_go.set()
        qtbot.waitUntil(lambda: not collection.active, timeout=10_000)
        assert not gc.isenabled()  # it was off before, it stays off
    finally:
        (gc.enable if was_enabled else gc.disable)()
