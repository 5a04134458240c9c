"""The queue: sweeps of the open graph x N seeds waiting, running and done, on the local executor or a
Ray address. Add, reorder and cancel while editing goes on; each trial lands in the runs table as it
finishes.

Each entry is an ordinary sweep (studio.train.sweep) whose trials write their run directories into the
studio's runs folder. One entry runs at a time, on a worker thread that only calls ``Sweep.run`` and
sends each finished trial to the GUI thread by a signal. Cancel sets the entry's ``threading.Event``
from the GUI thread: the sweep stops its trials cleanly (their best epochs kept) and the entry can be
resumed from the command line (``studio sweep --resume DIR``).
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QThread, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from studio.core.text import error_line, printable
from studio.gui.garbage import gui_garbage_collection
from studio.train.sweep import describe_trial, sweep_time_left, time_left


@dataclass
class QueueEntry:
    sweep: object  # studio.train.sweep.Sweep
    title: str
    executor: str = "local"
    address: str | None = None
    state: str = "waiting"  # waiting, running, done, cancelled, failed
    done: int = 0
    failed: int = 0
    message: str = ""
    cancel: threading.Event = field(default_factory=threading.Event)
    #: the running trials' progress by trial id (studio.train.sweep.TrialProgress's dicts)
    progress: dict[str, dict] = field(default_factory=dict)
    started: float | None = None  # time.monotonic() when it began running

    def fraction(self) -> float:
        """How much of the entry is done: its ended trials, and the running ones' share of their steps."""
        total = len(self.sweep.trials)
        if not total:
            return 1.0 if self.state == "done" else 0.0
        return min(1.0, (self.done + self.failed + sum(i["fraction"] for i in self.progress.values())) / total)

    def describe(self) -> str:
        total = len(self.sweep.trials)
        where = "Ray " + (self.address or "(local)") if self.executor == "ray" else "local"
        text = f"{self.title} · {self.state} · {self.done}/{total} runs" + (f", {self.failed} failed"
                                                                              if self.failed else "")
        if self.state == "running" and self.progress:
            text += f" · {self.fraction():.0%}"
            if self.started is not None:
                left = time_left(sweep_time_left(time.monotonic() - self.started, self.fraction() * total, total))
                text += f" · {left}" if left else ""
        text = f"{text} · {where}" + (f" · {self.message}" if self.message else "")
        lines = [text]
        for info in sorted(self.progress.values(), key=lambda i: (i["graph"], i["seed"])):
            lines.append("    " + describe_trial(info))
        return "\n".join(lines)


class QueueWorker(QThread):
    """Runs one queue entry's sweep; ``trial`` carries each finished trial (as a plain dict)."""

    trial = Signal(object)
    progress = Signal(object)

    def __init__(self, entry: QueueEntry, parent=None) -> None:
        super().__init__(parent)
        self.entry = entry
        self.error = ""

    def run(self) -> None:
        from studio.train.sweep import SweepError

        try:
            if self.entry.executor == "ray":
                self._run_apart()
                return
            self.entry.sweep.run(on_trial=lambda t: self.trial.emit(t.to_json()), cancel=self.entry.cancel,
                                 executor=self.entry.executor, address=self.entry.address,
                                 on_progress=self.progress.emit)
        except SweepError as exc:
            self.error = str(exc)
        except Exception as exc:  # shown on the entry, in one line; the studio stays up
            self.error = f"{type(exc).__name__}: {error_line(exc)}"

    def _run_apart(self) -> None:
        """A sweep on Ray runs in a ``studio sweep --events`` process of its own: a Ray driver can end its
        process when the Ray it is attached to goes away (a ``ray stop`` on the machine did), and that must
        not be the studio. Its events come back on a pipe; Cancel is its Ctrl-C; what it prints goes to
        sweep.log."""
        import json
        import signal
        import subprocess
        import sys

        from studio.core.owned_dir import owned_file
        from studio.train.sweep import Sweep

        sweep = self.entry.sweep
        command = [sys.executable, "-m", "studio", "sweep", "--resume", str(sweep.path), "--executor", "ray",
                   "--events"] + (["--address", self.entry.address] if self.entry.address else [])
        by_id = {t.id: t for t in sweep.trials}
        with owned_file(sweep.path / "sweep.log", "ab", what="sweep") as log:  # never through a link
            child = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log,
                                     start_new_session=True)  # the terminal's Ctrl-C is the studio's
            stop = threading.Thread(target=self._cancel_when_asked, args=(child,), daemon=True)
            stop.start()
            for raw in child.stdout:
                try:
                    event = json.loads(raw)
                except ValueError:
                    continue  # not an event (a library's print): sweep.log has the rest
                if not isinstance(event, dict):
                    continue
                if event.get("event") == "progress" and isinstance(event.get("info"), dict):
                    self.progress.emit(event["info"])
                elif event.get("event") == "trial" and isinstance(event.get("trial"), dict):
                    record = event["trial"]
                    if record.get("id") in by_id:
                        by_id[record["id"]].__dict__.update(record)
                        self.trial.emit(record)
            code = child.wait()
        if code in (0, 1, 130, -signal.SIGINT):  # it ran (1: some trial failed; 130: cancelled)
            self.entry.sweep = Sweep.open(sweep.path)  # what the sweep process wrote is the record
        else:
            with owned_file(sweep.path / "sweep.log", what="sweep") as log:
                log.seek(max(0, os.fstat(log.fileno()).st_size - (64 << 10)))  # its end says why
                tail = log.read().decode("utf-8", errors="replace").strip().splitlines()
            said = next((line for line in reversed(tail) if line.startswith("studio: ")), "")
            self.error = said[len("studio: "):] if said else f"the sweep process ended with code {code}; see " \
                                                              f"{sweep.path / 'sweep.log'}"

    def _cancel_when_asked(self, child) -> None:
        import signal

        while child.poll() is None:
            if self.entry.cancel.wait(0.2):
                child.send_signal(signal.SIGINT)  # every trial stops after its batch, its best epoch kept
                return


class QueueWidget(QWidget):
    """The queue dock: add the open graph x N seeds, reorder, cancel; one entry runs at a time."""

    trialDone = Signal()

    def __init__(self, window, panel, parent=None) -> None:
        super().__init__(parent)
        self.window, self.panel = window, panel
        self.entries: list[QueueEntry] = []
        self.worker: QueueWorker | None = None
        layout = QVBoxLayout(self)
        add = QHBoxLayout()
        self.seeds = QSpinBox()
        self.seeds.setRange(1, 100)
        self.seeds.setValue(5)
        self.seeds.setToolTip("Seeds of the open graph to queue (0, 1, ...), with the training panel's settings")
        self.add_button = QPushButton("Add open graph")
        self.add_button.clicked.connect(lambda: self.add_open_graph())
        self.executor = QComboBox()
        self.executor.addItems(["local", "ray"])
        self.executor.setToolTip("local: a process pool on this machine; ray: a local Ray, or the cluster at "
                                 "the address (pip install -e '.[scale]')")
        self.address = QLineEdit()
        self.address.setPlaceholderText("Ray address (empty: a local Ray)")
        add.addWidget(self.add_button)
        add.addWidget(QLabel("x"))
        add.addWidget(self.seeds)
        add.addWidget(QLabel("seeds on"))
        add.addWidget(self.executor)
        add.addWidget(self.address, 1)
        layout.addLayout(add)
        self.list = QListWidget()
        layout.addWidget(self.list, 1)
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.bar.setToolTip("The running entry: its finished runs and the running ones' share of their steps")
        self.bar.hide()
        layout.addWidget(self.bar)
        buttons = QHBoxLayout()
        for text, slot, tip in (("Up", lambda: self.move(-1), "Run this waiting entry earlier"),
                                ("Down", lambda: self.move(1), "Run this waiting entry later"),
                                ("Cancel", lambda: self.cancel_selected(),
                                 "Take a waiting entry off the queue, or stop the running one cleanly")):
            button = QPushButton(text)
            button.setToolTip(tip)
            button.clicked.connect(lambda _=False, s=slot: s())
            buttons.addWidget(button)
        buttons.addStretch(1)
        self.status = QLabel("Queue the open graph with several seeds; runs land in the runs table.")
        self.status.setWordWrap(True)
        layout.addLayout(buttons)
        layout.addWidget(self.status)

    # ---- adding ------------------------------------------------------------------------------------
    def add_open_graph(self) -> QueueEntry | None:
        from studio.core.graph_file import save_graph
        from studio.train.sweep import Sweep, SweepSpec

        tab = self.window.current_tab()
        if tab is None:
            self.status.setText("Open a model to queue it.")
            return None
        document = tab.document
        if not document.validation.ok or document.graph.kind != "model":
            self.status.setText("Cannot queue: " + (str(document.validation.errors[0])
                                                    if not document.validation.ok else "open a model, not a block"))
            return None
        misfit = self.panel.check_fit()
        if misfit is not None:
            self.status.setText(f"Cannot queue: {misfit}")
            return None
        runs_dir = Path(self.panel.runs_dir)
        sweeps = runs_dir.parent / "sweeps" if runs_dir.name else Path("sweeps")
        name = document.graph.name or document.title or "graph"
        stamp = time.strftime("%Y%m%d-%H%M%S")
        graph_file = sweeps / "graphs" / f"{stamp}-{len(self.entries)}-{Path(name).stem}.json"
        graph_file.parent.mkdir(parents=True, exist_ok=True)
        # frozen (edits go on), at the bars per day the training panel trains on
        save_graph(self.panel.training_graph().copy(), graph_file, stamp_version=False)
        training = self.panel.train_config().to_json()
        training.pop("seed")
        source = self.panel.source_spec()
        data = ({"synthetic": dict(source.synthetic)} if source.kind == "synthetic"
                else {"path": source.path, "import": dict(source.importer)})
        executor = self.executor.currentText()
        address = (self.address.text().strip() or None) if executor == "ray" else None
        # on this machine one trial at a time leaves the desktop responsive; a cluster takes as many
        # trials at once as its CPUs and GPUs hold
        spec = SweepSpec(name=f"{name} x {self.seeds.value()} seeds", graphs=[str(graph_file.resolve())],
                         seeds=list(range(self.seeds.value())), training=training, data=data, executor=executor,
                         workers=0 if address else 1, resources={"cpu": 1})
        entry = QueueEntry(Sweep.create(spec, sweeps, runs_dir=runs_dir), printable(spec.name), executor, address)
        self.entries.append(entry)
        self._redraw()
        self._next()
        return entry

    # ---- order and cancel ----------------------------------------------------------------------------
    def move(self, step: int) -> None:
        row = self.list.currentRow()
        target = row + step
        if not (0 <= row < len(self.entries) and 0 <= target < len(self.entries)):
            return
        if self.entries[row].state != "waiting" or self.entries[target].state != "waiting":
            return  # only waiting entries change places
        self.entries[row], self.entries[target] = self.entries[target], self.entries[row]
        self._redraw()
        self.list.setCurrentRow(target)

    def cancel_selected(self) -> None:
        row = self.list.currentRow()
        if not 0 <= row < len(self.entries):
            return
        entry = self.entries[row]
        if entry.state == "waiting":
            entry.state = "cancelled"
        elif entry.state == "running":
            entry.cancel.set()
            entry.message = "stopping after the current batches…"
        self._redraw()

    def stop_all(self, wait: bool = False) -> None:
        """Cancel every entry (the window closes): waiting ones do not start, the running one stops."""
        for entry in self.entries:
            if entry.state == "waiting":
                entry.state = "cancelled"
            entry.cancel.set()
        if wait and self.worker is not None:
            self.worker.wait(60_000)

    # ---- running ------------------------------------------------------------------------------------------
    def running(self) -> bool:
        """An entry is running: its worker is set until its ``finished`` slot ran (a worker that ended
        but whose slot is still queued is running still, so no second entry starts beside it)."""
        return self.worker is not None

    def _next(self) -> None:
        if self.worker is not None:
            return
        entry = next((e for e in self.entries if e.state == "waiting"), None)
        if entry is None:
            return
        entry.state, entry.started = "running", time.monotonic()
        self.worker = QueueWorker(entry, self)
        self.worker.trial.connect(self._on_trial)
        self.worker.progress.connect(self._on_progress)
        self.worker.finished.connect(lambda worker=self.worker: self._finished(worker))
        gui_garbage_collection().hold(self.worker)
        self.worker.start()
        self._redraw()

    def _on_progress(self, info: dict) -> None:
        entry = self.worker.entry if self.worker is not None else None
        if entry is None or entry.state != "running":
            return
        entry.progress[info["trial"]] = info
        self._show(entry)

    def _on_trial(self, trial: dict) -> None:
        entry = self.worker.entry if self.worker is not None else None
        if entry is None:
            return
        entry.progress.pop(trial["id"], None)
        entry.done = sum(t.status in ("finished", "early_stopped", "time_limit") for t in entry.sweep.trials)
        entry.failed = sum(t.status == "failed" for t in entry.sweep.trials)
        self._redraw()
        self.trialDone.emit()

    def _finished(self, worker: QueueWorker) -> None:
        if worker is not self.worker:
            return
        entry = worker.entry
        entry.progress.clear()
        entry.done = sum(t.status in ("finished", "early_stopped", "time_limit") for t in entry.sweep.trials)
        entry.failed = sum(t.status == "failed" for t in entry.sweep.trials)
        if worker.error:
            entry.state, entry.message = "failed", printable(worker.error)
        elif entry.cancel.is_set():
            entry.state, entry.message = "cancelled", f"resume: studio sweep --resume {entry.sweep.path}"
        else:
            entry.state, entry.message = "done", ""
        self.worker = None
        self._redraw()
        self.trialDone.emit()
        self._next()

    def _show(self, entry: QueueEntry) -> None:
        """One entry's line and the progress bar, in place (progress comes about once a second a trial)."""
        if entry in self.entries:
            item = self.list.item(self.entries.index(entry))
            if item is not None:
                item.setText(entry.describe())
        self._show_bar()

    def _show_bar(self) -> None:
        running = next((e for e in self.entries if e.state == "running"), None)
        self.bar.setVisible(running is not None)
        if running is not None:
            self.bar.setValue(round(running.fraction() * 1000))
            self.bar.setFormat(f"{running.fraction():.0%} of {running.title}")

    def _redraw(self) -> None:
        row = self.list.currentRow()
        self.list.clear()
        for entry in self.entries:
            item = QListWidgetItem(entry.describe())
            item.setToolTip(str(entry.sweep.path))
            self.list.addItem(item)
        if 0 <= row < self.list.count():
            self.list.setCurrentRow(row)
        waiting = sum(e.state == "waiting" for e in self.entries)
        running = next((e for e in self.entries if e.state == "running"), None)
        self.status.setText((f"Running {running.title}; " if running else "Idle; ") + f"{waiting} waiting.")
        self._show_bar()
