"""Export a finished run's model from the Runs dock, as ``studio export RUN/graph.json --to OUT --run RUN``
does: the run's own graph.json (so the graph check passes by construction) with its best weights, as .py,
.pt2 or ONNX; with the run's preprocessing (default) the export takes raw bars. On a worker thread; the
dialog says what was written, with Open folder / Copy path."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QApplication,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from studio.core.text import printable
from studio.gui.background_task import BackgroundTask, TaskDialog

#: (suffix, what the format list shows)
FORMATS = ((".py", ".py: PyTorch code and its weights"), (".pt2", ".pt2: a torch.export program"),
           (".onnx", ".onnx: an ONNX model"))


def export_run(run_dir: Path, out: Path, with_preprocessing: bool) -> list[Path]:
    """What ``studio export RUN/graph.json --to OUT --weights RUN/model.pt [--run RUN]`` writes; the files."""
    from studio.core.graph_file import load_graph
    from studio.core.validation import validate
    from studio.nodes import default_registry
    from studio.torchgraph.export import export
    from studio.torchgraph.export_preprocess import read_run

    registry = default_registry()
    graph = load_graph(run_dir / "graph.json")
    checked = validate(graph, registry)
    if not checked.ok:
        raise ValueError(f"{run_dir / 'graph.json'}: {checked.errors[0]}")
    run = read_run(run_dir, graph, registry) if with_preprocessing else None
    return export(graph, out, weights=str(run_dir / "model.pt"), registry=registry, run=run)


def written_text(out: Path, written: list[Path], with_preprocessing: bool, normalize: str | None) -> str:
    """What was written and what it takes, a line each."""
    lines = [f"Wrote {printable(str(path))}" for path in written]
    if not with_preprocessing:
        lines.append(f"{out.name} takes (x, mask): windows normalised as in training (docs/graph-format.md)")
    elif out.suffix == ".py":
        lines.append(f"{out.name}: preprocess(bars) and score(bars) take raw bars with the run's {normalize} "
                     "preprocessing (needs numpy as well as torch)")
    elif any(path.name.endswith(".preprocess.json") for path in written):
        lines.append(f"{normalize} ranks the stocks of each bar, which is not put in the program: it takes "
                     f"(x, mask); {out.with_suffix('.preprocess.json').name} beside it holds every constant and "
                     "step that makes them from raw bars")
    else:
        lines.append(f"{out.name} takes raw bars (float32) and traded (N,) bool and gives (N,) scores: the run's "
                     f"{normalize} preprocessing is inside it")
    return "\n".join(lines)


class ExportDialog(TaskDialog):
    def __init__(self, run_dir: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.run_dir = Path(run_dir)
        self.setWindowTitle(f"Export the model of {printable(self.run_dir.name)}")
        self.task: BackgroundTask | None = None
        self.written: list[Path] = []
        outer = QVBoxLayout(self)
        form = QFormLayout()
        outer.addLayout(form)
        self.format = QComboBox()
        for suffix, text in FORMATS:
            self.format.addItem(text, suffix)
        self.format.currentIndexChanged.connect(lambda _i: self._fit_suffix())
        form.addRow("format", self.format)
        self.with_run = QCheckBox("with the run's preprocessing (the export takes raw bars)")
        self.with_run.setChecked(True)
        self.with_run.setToolTip("on: the run's feature transforms and stored normalisation go with the model "
                                 "(as studio export --run); off: the plain export of the run's graph.json "
                                 "with its weights, which takes normalised windows")
        form.addRow("", self.with_run)
        out_row = QHBoxLayout()
        self.output = QLineEdit(str(Path.cwd() / "exports" / f"{self.run_dir.name}.py"))
        save_as = QPushButton("Save as…")
        save_as.setAutoDefault(False)
        save_as.clicked.connect(self.choose_output)
        out_row.addWidget(self.output, 1)
        out_row.addWidget(save_as)
        form.addRow("output", out_row)
        self.status = QLabel("")
        self.status.setTextFormat(Qt.TextFormat.PlainText)  # paths are text, never markup
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.status.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        outer.addWidget(self.status, 1)
        buttons = QHBoxLayout()
        self.export_button = QPushButton("Export")
        self.export_button.setDefault(True)
        self.export_button.clicked.connect(self.start)
        self.open_folder_button = QPushButton("Open folder")
        self.open_folder_button.setAutoDefault(False)
        self.open_folder_button.clicked.connect(self.open_folder)
        self.copy_button = QPushButton("Copy path")
        self.copy_button.setAutoDefault(False)
        self.copy_button.clicked.connect(self.copy_path)
        for button in (self.open_folder_button, self.copy_button):
            button.setEnabled(False)
        close = QPushButton("Close")
        close.setAutoDefault(False)
        close.clicked.connect(self.close)
        for widget in (self.export_button, self.open_folder_button, self.copy_button):
            buttons.addWidget(widget)
        buttons.addStretch(1)
        buttons.addWidget(close)
        outer.addLayout(buttons)
        self.resize(760, 240)

    def suffix(self) -> str:
        return self.format.currentData()

    def _fit_suffix(self) -> None:
        text = self.output.text().strip()
        if text:
            self.output.setText(str(Path(text).with_suffix(self.suffix())))

    def choose_output(self) -> None:
        names = {".py": "Python (*.py)", ".pt2": "torch.export program (*.pt2)", ".onnx": "ONNX (*.onnx)"}
        path, _ = QFileDialog.getSaveFileName(self, "Export the model", self.output.text().strip(),
                                              names[self.suffix()])
        if path:
            self.output.setText(str(Path(path).with_suffix(self.suffix())))

    def start(self) -> bool:
        from studio.core.graph_file import GraphFileError
        from studio.data.errors import DataError

        if self.task is not None and self.task.isRunning():
            return False
        text = self.output.text().strip()
        if not text:
            return self._refuse("Choose where to write the export (Save as…)")
        out = Path(text)
        if out.suffix != self.suffix():
            out = out.with_suffix(self.suffix())
            self.output.setText(str(out))
        run_dir, with_run = self.run_dir, self.with_run.isChecked()

        def expected() -> tuple[type[BaseException], ...]:
            from studio.torchgraph.export import ExportError  # torch: imported on the worker thread
            from studio.torchgraph.export_preprocess import RunError

            return ExportError, RunError

        def work(_cancel):
            try:
                return export_run(run_dir, out, with_run)
            except expected() as exc:
                raise ValueError(str(exc)) from None

        task = BackgroundTask(work, (ValueError, OSError, GraphFileError, DataError))
        task.succeeded.connect(lambda written, t=task: self._exported(t, out, written))
        task.failed.connect(lambda line, t=task: self._failed(t, line))
        self.task = task
        self.export_button.setEnabled(False)
        self.status.setStyleSheet("")
        self.status.setText(f"Exporting to {printable(str(out))}…")
        task.start()
        return True

    def _normalize(self) -> str | None:
        from studio.data.preprocess_spec import load_spec, spec_path

        try:
            return load_spec(spec_path(self.run_dir))["normalize"]
        except Exception:  # read for the message only; the export itself checked it
            return None

    def _exported(self, task: BackgroundTask, out: Path, written: list[Path]) -> None:
        if not self.current(task):
            return
        self.export_button.setEnabled(True)
        self.written = [Path(p) for p in written]
        self.status.setStyleSheet("")
        self.status.setText(written_text(out, self.written, self.with_run.isChecked(), self._normalize()))
        for button in (self.open_folder_button, self.copy_button):
            button.setEnabled(True)

    def _failed(self, task: BackgroundTask, line: str) -> None:
        self._task_failed(task, self.export_button, "export", line)

    def open_folder(self) -> bool:
        if not self.written:
            return False
        opened = QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.written[0].parent)))
        if not opened:  # no file manager registered on this desktop
            self.status.setText(self.status.text() + "\nNothing here can open the folder: copy the path.")
        return opened

    def copy_path(self) -> None:
        if self.written:
            QApplication.clipboard().setText(str(self.written[0]))
