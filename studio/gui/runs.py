"""The runs table: every run under the runs folder with the figures of the comparison table; select
runs to overlay their test long-short PnL, open a run's graph, export the chart as PNG. "Across seeds"
shows one row per group of runs that differ only in their seed (mean +- std, as Qlib reports models);
the chart draws a group as a band (mean +- std of the cumulative long-short across seeds) around its
mean, with each seed's thin line on demand."""

from __future__ import annotations

import csv
import io
import json
import math
import os
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QItemSelection, QItemSelectionModel, QRectF, Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QFontDatabase, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QCheckBox,
    QComboBox,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from studio.core.owned_dir import read_json, read_owned
from studio.gui.plots import EpochAxis, YearDateAxis
from studio.metric_specs import BASELINES_FILE, BY_KEY, RUNS, SEEDS, shown_in
from studio.metrics import MIN_DATES, sample_size
from studio.train.ensemble_kind import is_ensemble
from studio.train.records import seed_group
from studio.train.run_figures import (
    NO_BASELINES_NOTE,
    baseline_words,
    overfit_words,
    read_baselines,
    seed_spread_words,
    split_figures,
)
from studio.train.run_lock import run_status

COLUMNS = [("run", "run"), ("graph", "graph"), ("status", "status"),
           *((spec.key, spec.runs_header) for spec in shown_in(RUNS))]
#: the columns that hold numbers (sorted as numbers)
FIGURE_KEYS = {k for k, _ in COLUMNS[3:]}
#: the columns read from the run's baselines.json (their tooltip lists every baseline)
BASELINE_KEYS = {spec.key for spec in shown_in(RUNS) if spec.source == BASELINES_FILE}
FEW_DATES_TIP = ("fewer than {n} test dates: Sharpe, ICIR and the rest mean little here (IC t = mean IC / "
                 "(std / sqrt(dates)); |t| < 2 is no evidence of skill)")
#: an exported chart is laid out at least this wide (in screen pixels) before it is scaled to the image
EXPORT_LAYOUT_WIDTH = 800.0
PALETTE = ["#5ea8e8", "#e8a85e", "#7ed38a", "#b88ee8", "#e05252", "#d8d860", "#60d8d8", "#d88ec8"]


def read_runs(folder: Path) -> list[dict]:
    """One row per run directory: test figures from metrics.json (no pandas needed)."""
    rows = []
    if not folder.is_dir():
        return rows
    for path in sorted((p for p in folder.iterdir() if os.path.lexists(p / "config.json")), reverse=True):
        try:  # inside the run folder only: a link or a special file there passes the run over (ForeignEntry)
            config = read_json(path / "config.json")
            metrics_file = path / "metrics.json"
            metrics = read_json(metrics_file) if os.path.lexists(metrics_file) else {}
        except (OSError, ValueError):
            continue
        test = split_figures(path, metrics, "test")  # with the baselines' figures of baselines.json
        dates, t, few = sample_size(test)
        run_name = path.name
        if config.get("kind") == "walk_forward":  # one run with its folds: their figures in the tooltip
            run_name += f" (walk-forward, {(config.get('walk_forward') or {}).get('folds', '?')} folds)"
        if is_ensemble(config):  # as studio compare names it
            ensemble = config.get("ensemble") or {}
            run_name += f" (ensemble of {len(ensemble.get('members') or [])}, {ensemble.get('combine', '?')})"
        rows.append({"path": path, "run": run_name, "graph": config.get("graph", {}).get("name", ""),
                     "folds": _fold_lines(metrics),
                     # running while a live process owns the run, interrupted when that process died
                     "status": run_status(path, config.get("status")),
                     **{k: test.get(k) for k, _ in COLUMNS[3:]},
                     "incremental_ic_t": test.get("incremental_ic_t"),
                     "baselines_tip": baselines_tip(path, test, (metrics.get("splits") or {}).get("train") or {}),
                     "baselines_words": baseline_words(test),
                     "ic_t": t, "dates": dates, "few_dates": few, "seed": config.get("seed"),
                     "group": seed_group(config), "ensemble": is_ensemble(config)})
    return rows


def _text(value, pattern: str = "{:.3f}") -> str:
    return pattern.format(value) if isinstance(value, int | float) and math.isfinite(value) else "n/a"


def baselines_tip(path: Path, test: dict, train: dict) -> str:
    """The tooltip of the baseline columns: every baseline on the run's own dates (test IC and t, training IC,
    correlation with the model's score), then what they mean in words (baselines.json's verdicts)."""
    baselines = read_baselines(path)
    if baselines is None:
        return NO_BASELINES_NOTE.removeprefix("- in the baseline columns: ")
    model = (baselines.get("model") or {}).get("test") or {}
    lines = [f"baselines on this run's {(baselines.get('split_dates') or {}).get('test', '?')} test dates "
             f"(model: IC {_text(model.get('ic'))}, t {_text(model.get('ic_t'), '{:.1f}')})",
             "name: test IC (t) | train IC | corr with the model"]
    for b in baselines.get("baselines") or []:
        b_test, b_train = b.get("test") or {}, b.get("train") or {}
        lines.append(f"{b.get('name')}: {_text(b_test.get('ic'))} ({_text(b_test.get('ic_t'), '{:.1f}')}) | "
                     f"{_text(b_train.get('ic'))} | {_text(b.get('corr'), '{:.2f}')}")
    for left in baselines.get("left_out") or []:
        lines.append(f"left out: {left.get('name')} ({left.get('reason')})")
    words = [str(v) for v in baselines.get("verdicts") or []]
    overfit = overfit_words(train, test)
    # the row's own words where baselines.json has none of them (an older baselines.json)
    if not words:
        words = [*baseline_words(test), *([overfit] if overfit else [])]
    if words:
        lines += ["", *words]
    return "\n".join(lines)


def ensemble_problem(path: Path) -> str | None:
    """Why an ensemble cannot do what a run does with its own model (export), or None for a run."""
    from studio.core.text import printable

    try:
        config = read_json(path / "config.json")
    except (OSError, ValueError):
        return None
    if is_ensemble(config):
        return (f"{printable(path.name)} is an ensemble: it has no single model to export (export a member, or "
                "predict with the ensemble: each member predicts and the scores are combined)")
    return None


def run_action_problem(path: Path) -> str | None:
    """Why a run cannot predict or export its model (one line), or None: it needs its graph, its best
    weights and the preprocessing it recorded (runs before preprocess.json have none)."""
    from studio.core.text import printable
    from studio.data.preprocess_spec import SPEC_FILE

    name = printable(path.name)
    try:
        if is_ensemble(read_json(path / "config.json")):  # studio predict scores each member and combines them
            return None if os.path.lexists(path / "predictions.parquet") else f"{name}: an unfinished ensemble"
    except (OSError, ValueError):
        pass
    folds = sorted((p for p in (path / "folds").glob("fold-*") if p.is_dir()),
                   key=lambda p: (len(p.name), p.name)) if (path / "folds").is_dir() else []
    if folds and not os.path.lexists(path / SPEC_FILE):  # as studio predict and export say it
        return (f"{name} is a walk-forward run: it has one model per fold; predict or export with its last fold, "
                f"the newest model (studio predict {printable(str(folds[-1]))})")
    for file, lacking in ((SPEC_FILE, "it was made before runs stored their preprocessing (no preprocess.json): "
                                      "train it again (studio reproduce) to predict or export with raw bars"),
                          ("graph.json", "it has no graph.json"),
                          ("model.pt", "it has no best weights yet (no model.pt)")):
        if not os.path.lexists(path / file):
            return f"{name}: {lacking}"
    return None


def _fold_lines(metrics: dict) -> list[str]:
    lines = []
    for fold in metrics.get("folds") or []:
        test = fold.get("test") or {}
        ic, sharpe = test.get("ic"), test.get("sharpe")
        lines.append(f"fold {fold.get('fold')} ({fold.get('first')} .. {fold.get('last')}): {fold.get('status')}, "
                     f"IC {_figure_text('ic', ic) if isinstance(ic, float) else '-'}, "
                     f"Sharpe {_figure_text('sharpe', sharpe) if isinstance(sharpe, float) else '-'}")
    return lines


#: the columns of the across-seeds view: (key, header); figures are mean +- std across the group's seeds
SEED_COLUMNS = [("graph", "graph"), ("seeds", "seeds"), *((spec.key, spec.runs_header) for spec in shown_in(SEEDS))]


def seed_groups(rows: list[dict]) -> list[dict]:
    """One row per group of finished runs that differ only in their seed: the seed count, the runs, and the
    mean and std (n - 1) of each figure."""
    groups: dict[str, list[dict]] = {}
    for row in rows:
        # an ensemble is not one more seed of its members' experiment (as studio compare's table)
        if row["status"] != "failed" and not row.get("ensemble"):
            groups.setdefault(row["group"], []).append(row)
    out = []
    for key, runs in groups.items():
        group = {"group": key, "graph": runs[0]["graph"], "seeds": len({r["seed"] for r in runs}),
                 "paths": [r["path"] for r in runs]}
        for figure, _ in SEED_COLUMNS[2:]:
            values = [float(r[figure]) for r in runs if isinstance(r[figure], int | float)
                      and math.isfinite(r[figure])]
            group[figure] = float(np.mean(values)) if values else None
            group[f"{figure}_std"] = float(np.std(values, ddof=1)) if len(values) > 1 else None
        out.append(group)
    named: dict[str, int] = {}
    for g in out:
        named[g["graph"]] = named.get(g["graph"], 0) + 1
    for g in out:  # graphs of one name but other parameters are told apart by their group
        if named[g["graph"]] > 1:
            g["graph"] += f" #{g['group'][:6]}"
    return out


def _figure_text(key: str, value: float) -> str:
    return BY_KEY[key].runs_text(value)


class FigureItem(QTableWidgetItem):
    """A table cell that sorts by its number (Sharpe 9.5 below 19.9), missing values last."""

    def __lt__(self, other: QTableWidgetItem) -> bool:  # Qt's sort asks the items themselves
        a, b = self.data(Qt.ItemDataRole.UserRole), other.data(Qt.ItemDataRole.UserRole)
        a_missing = not isinstance(a, int | float) or (isinstance(a, float) and math.isnan(a))
        b_missing = not isinstance(b, int | float) or (isinstance(b, float) and math.isnan(b))
        if a_missing or b_missing:
            # missing after every number, whichever way the column is sorted: Qt sorts descending by
            # asking other < self, so a missing value is the largest going up and the smallest going down
            if a_missing and b_missing:
                return False
            table = self.tableWidget()
            descending = table is not None and table.horizontalHeader().sortIndicatorOrder() == \
                Qt.SortOrder.DescendingOrder
            return a_missing if descending else b_missing
        return a < b


class CompareDialog(QDialog):
    """Two runs side by side: the graph diff, the settings that differ and the change in every figure;
    "Highlight changes" selects the changed nodes of run B's graph on the canvas."""

    def __init__(self, diff, parent=None) -> None:
        super().__init__(parent)
        self.diff = diff
        self.setWindowTitle(f"Compare {diff.a.name} and {diff.b.name}")
        layout = QVBoxLayout(self)
        self.text = QPlainTextEdit()
        self.text.setReadOnly(True)
        self.text.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.text.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.text.setPlainText("\n".join(diff.lines()))
        layout.addWidget(self.text)
        buttons = QHBoxLayout()
        changed = sorted(diff.graph.changed_nodes()) if diff.graph is not None else []
        self.highlight_button = QPushButton(f"Highlight {len(changed)} changed node{'s' if len(changed) != 1 else ''}"
                                            " on the canvas")
        self.highlight_button.setEnabled(bool(changed))
        self.highlight_button.setToolTip("Open run B's graph and select its new, retyped and re-set nodes")
        buttons.addWidget(self.highlight_button)
        buttons.addStretch(1)
        close = QPushButton("Close")
        close.clicked.connect(self.close)
        buttons.addWidget(close)
        layout.addLayout(buttons)
        self.resize(760, 560)


class ReportDialog(QDialog):
    """A run's tear sheet inside the studio: where it was written, its headline figures and the figure
    (fitted to the width, scrolled down); buttons open the file or its folder where the desktop can."""

    def __init__(self, run_name: str, written: Path, sheet, png: bytes, parent=None) -> None:
        from studio.core.text import printable
        from studio.train.report import headline_cells

        super().__init__(parent)
        self.written = written
        self.setWindowTitle(f"Tear sheet: {printable(run_name)}")
        layout = QVBoxLayout(self)
        self.path_label = QLabel(f"Written to {printable(written)}")
        self.path_label.setTextFormat(Qt.TextFormat.PlainText)  # a path is text, never markup
        self.path_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.path_label.setWordWrap(True)
        layout.addWidget(self.path_label)
        figures = "   ".join(f"{label} {value}" for label, value in headline_cells(sheet))
        notes = "".join(f"\n{printable(note)}" for note in sheet.notes)
        self.headline = QLabel(figures + notes)
        self.headline.setTextFormat(Qt.TextFormat.PlainText)
        self.headline.setWordWrap(True)
        layout.addWidget(self.headline)
        self.image = QPixmap()
        self.image.loadFromData(png, "PNG")
        self.picture = QLabel()
        self.picture.setAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop)
        self.scroll = QScrollArea()
        self.scroll.setWidget(self.picture)
        self.scroll.setWidgetResizable(True)
        # fitted to the width; the vertical bar is always there, so showing it cannot narrow the view under the
        # fitted picture (which then lost its right edge)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.scroll.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOn)
        layout.addWidget(self.scroll, 1)
        buttons = QHBoxLayout()
        self.open_file_button = QPushButton("Open in browser" if written.suffix.lower() == ".html" else "Open file")
        self.open_file_button.clicked.connect(lambda: self._open(written))
        self.open_folder_button = QPushButton("Open folder")
        self.open_folder_button.clicked.connect(lambda: self._open(written.parent))
        copy = QPushButton("Copy path")
        copy.clicked.connect(lambda: QApplication.clipboard().setText(str(written)))
        close = QPushButton("Close")
        close.clicked.connect(self.close)
        self.note = QLabel("")
        self.note.setWordWrap(True)
        for widget in (self.open_file_button, self.open_folder_button, copy):
            buttons.addWidget(widget)
        buttons.addWidget(self.note, 1)
        buttons.addWidget(close)
        layout.addLayout(buttons)
        window = parent.window() if parent is not None else None
        room = window.size() if window is not None and window.isVisible() else None
        self.resize(min(1200, int(room.width() * 0.9)) if room else 1100,
                    min(900, int(room.height() * 0.9)) if room else 800)

    def _open(self, target: Path) -> bool:
        opened = QDesktopServices.openUrl(QUrl.fromLocalFile(str(target)))
        if not opened:  # no browser or file manager registered (qt.qpa.services: Unable to detect a launcher)
            self.note.setText("Nothing here can open it: copy the path above.")
        return opened

    def fit(self) -> None:
        """The figure at the width of the view (never larger than drawn)."""
        if self.image.isNull():
            return
        width = min(self.image.width(), self.scroll.viewport().width())
        self.picture.setPixmap(self.image.scaledToWidth(max(width, 1), Qt.TransformationMode.SmoothTransformation))

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self.fit()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self.fit()


class RunsWidget(QWidget):
    openGraph = Signal(str)
    #: (graph file, node ids): select these nodes of that graph on the canvas
    highlightNodes = Signal(str, list)

    def __init__(self, folder: Path, parent=None) -> None:
        super().__init__(parent)
        self.folder = Path(folder)
        self.rows: list[dict] = []
        #: whether the table's rows are groups of seeds ("Across seeds") or runs
        self._grouped = False
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels([h for _, h in COLUMNS])
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSortingEnabled(True)
        self.table.itemSelectionChanged.connect(self.overlay)
        self.table.itemSelectionChanged.connect(self._enable_run_actions)
        self.table.doubleClicked.connect(lambda _index: self.open_selected())
        self.chart = pg.GraphicsLayoutWidget()
        self.plot = pg.PlotItem(title="test long-short PnL (cumulative)",
                                axisItems={"bottom": YearDateAxis(orientation="bottom")})
        self.plot.setLabel("bottom", "date")
        self.plot.setLabel("left", "cum. long-short return")
        self.plot.getAxis("left").enableAutoSIPrefix(False)  # returns as returns, not "x0.01"
        self.plot.showGrid(x=True, y=True, alpha=0.15)
        self.chart.addItem(self.plot, row=0, col=0)
        self.legend = pg.LegendItem(colCount=2)  # under the plot, off the curves
        self.chart.addItem(self.legend, row=1, col=0)
        # the legend's row is as tall as its lines, with no margin under it: all the height left over goes
        # to the plot (an exported chart had an empty band at the bottom)
        self.legend.layout.setContentsMargins(9, 0, 9, 0)
        self.chart.ci.layout.setContentsMargins(9, 9, 9, 2)
        self.chart.ci.layout.setRowStretchFactor(0, 1)
        self.chart.ci.layout.setRowStretchFactor(1, 0)
        # a tool bar, not a row of buttons: where the dock is narrower than its controls (1280 x 800) the
        # last ones go behind its » button instead of widening the dock over its neighbours
        buttons = QToolBar()
        buttons.setMovable(False)
        for text, slot in (("Refresh", self.refresh), ("Open graph", self.open_selected),
                           ("Compare 2…", self.compare_selected), ("Report…", self.report_selected),
                           ("Predict…", self.predict_selected), ("Export model…", self.export_model_selected),
                           ("Export chart…", self.export_dialog)):
            button = QPushButton(text)
            button.clicked.connect(lambda _=False, s=slot: s())
            buttons.addWidget(button)
            if slot == self.report_selected:
                self.report_button = button
                button.setToolTip("The selected run's tear sheet (score groups, IC, IC by month, RankIC decay, "
                                  "turnover, long-short net of cost) as an HTML page or a PNG")
            if slot == self.predict_selected:
                self.predict_button = button
            if slot == self.export_model_selected:
                self.export_model_button = button
            if slot == self.compare_selected:
                self.compare_button = button
                button.setToolTip("Select two runs: what changed in the graph and the settings, beside the "
                                  "change in every figure")
        self.by_seed = QCheckBox("Across seeds")
        self.by_seed.setToolTip("One row per group of runs that differ only in their seed: mean +- std of "
                                "the figures; the chart draws the group's band")
        self.by_seed.toggled.connect(lambda _on: self.refresh())
        buttons.addWidget(self.by_seed)
        self.ensemble_button = QPushButton("Ensemble")
        self.ensemble_button.clicked.connect(lambda _=False: self.ensemble_selected())
        buttons.addWidget(self.ensemble_button)
        #: the ensemble being made (a worker thread), and its last line when it failed
        self.ensemble_task = None
        self.ensemble_error: str | None = None
        self.seed_lines = QCheckBox("seed lines")
        self.seed_lines.setToolTip("Draw each seed's curve as a thin line inside its group's band")
        self.seed_lines.toggled.connect(lambda _on: self.overlay())
        buttons.addWidget(self.seed_lines)
        self.chart_kind = QComboBox()
        self.chart_kind.addItems(["test long-short PnL", "validation IC per epoch"])
        self.chart_kind.setToolTip("What the chart shows for the selected runs (a group's band: mean ± std "
                                   "across its seeds)")
        self.chart_kind.currentIndexChanged.connect(lambda _i: self._set_chart_kind())
        buttons.addWidget(self.chart_kind)
        self.light_export = QCheckBox("light background")
        self.light_export.setToolTip("Export the chart black on white (for papers and slides)")
        buttons.addWidget(self.light_export)
        # the buttons span the dock: beside the table they would push the chart off a 1280-pixel window
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.table)
        splitter.addWidget(self.chart)
        splitter.setSizes([700, 500])
        splitter.splitterMoved.connect(lambda _pos, _index: self._fit_legend())
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(buttons)
        layout.addWidget(splitter)
        self.overlay()
        self._enable_run_actions()

    def refresh(self) -> None:
        """Read the runs folder again and refill the table; the runs that were selected stay selected (by
        their directory, wherever the sort puts their rows) and the chart draws exactly those."""
        chosen = {str(p) for p in self.selected_paths()}
        self.rows = read_runs(self.folder)
        # the refill keeps the selection model's row numbers, which now name other runs: start clean
        self.table.blockSignals(True)
        try:
            self.table.clearSelection()
            if self.by_seed.isChecked():
                self._fill_groups()
            else:
                self._fill_runs()
            self._select_paths(chosen)
        finally:
            self.table.blockSignals(False)
        self.overlay()
        self._enable_run_actions()

    def _select_paths(self, chosen: set[str]) -> None:
        """Select every row that holds one of these run directories (a group row: any of its runs)."""
        model, selection = self.table.model(), QItemSelection()
        for r in range(self.table.rowCount()):
            if chosen.intersection(str(p) for p in self._row_paths(r)):
                selection.select(model.index(r, 0), model.index(r, self.table.columnCount() - 1))
        self.table.selectionModel().select(selection, QItemSelectionModel.SelectionFlag.ClearAndSelect)

    def _fill_runs(self) -> None:
        self._grouped = False
        self.table.setColumnCount(len(COLUMNS))
        self.table.setHorizontalHeaderLabels([h for _, h in COLUMNS])
        self.table.setSortingEnabled(False)
        self.table.setRowCount(len(self.rows))
        for r, row in enumerate(self.rows):
            for c, (key, _) in enumerate(COLUMNS):
                value = row[key]
                if key in FIGURE_KEYS and not isinstance(value, int | float):
                    item = FigureItem("-")  # a missing figure sorts as missing, not as the text "-"
                    item.setData(Qt.ItemDataRole.UserRole, None)
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                elif isinstance(value, float):
                    text = "-" if not math.isfinite(value) else (
                        BY_KEY[key].cell(row, runs=True) if key in BY_KEY else _figure_text(key, value))
                    item = FigureItem(text)
                    item.setData(Qt.ItemDataRole.UserRole, value)
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                    if key in ("ic", "rank_ic") and value < 0:
                        item.setForeground(pg.mkColor("#e05252"))
                elif key == "dates" and value is not None:
                    item = FigureItem(f"{value} !" if row["few_dates"] else str(value))
                    item.setData(Qt.ItemDataRole.UserRole, value)
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                else:
                    item = QTableWidgetItem("-" if value is None else str(value))
                if row["few_dates"]:  # a visible mark on the figures of a small sample
                    item.setToolTip(FEW_DATES_TIP.format(n=MIN_DATES))
                    if key in ("dates", "sharpe", "icir", "ic_t"):
                        item.setForeground(pg.mkColor("#e0a030"))
                if key in BASELINE_KEYS:  # every baseline of the run, and what they mean in words
                    item.setToolTip(row["baselines_tip"])
                    if row["baselines_words"]:
                        item.setForeground(pg.mkColor("#e0a030"))
                if row["folds"] and key == "run":
                    item.setToolTip("test figures of the out-of-sample dates of every fold together; each "
                                    "fold's own:\n" + "\n".join(row["folds"]))
                item.setData(Qt.ItemDataRole.UserRole + 1, str(row["path"]))
                self.table.setItem(r, c, item)
        self.table.setSortingEnabled(True)
        self.table.resizeColumnsToContents()

    def _fill_groups(self) -> None:
        groups = seed_groups(self.rows)
        self._grouped = True
        self.table.setSortingEnabled(False)
        self.table.clearContents()
        self.table.setColumnCount(len(SEED_COLUMNS))
        self.table.setHorizontalHeaderLabels([h for _, h in SEED_COLUMNS])
        self.table.setRowCount(len(groups))
        for r, group in enumerate(groups):
            for c, (key, _) in enumerate(SEED_COLUMNS):
                value = group[key]
                if key == "graph":
                    item = QTableWidgetItem(value)
                else:
                    std = group.get(f"{key}_std")
                    text = str(value) if key == "seeds" else "-" if value is None else _figure_text(key, value) + (
                        f" ± {_figure_text(key, std)}" if std is not None else "")
                    item = FigureItem(text)
                    item.setData(Qt.ItemDataRole.UserRole, value)  # sorts by the mean
                    spread = seed_spread_words(value, std) if key == "ic" else None
                    if spread:  # overfitting in words: the sign of the group's IC is the seed's
                        item.setToolTip(spread)
                        item.setForeground(pg.mkColor("#e0a030"))
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                item.setData(Qt.ItemDataRole.UserRole + 1, json.dumps([str(p) for p in group["paths"]]))
                self.table.setItem(r, c, item)
        self.table.setSortingEnabled(True)
        self.table.resizeColumnsToContents()

    def _row_paths(self, row: int) -> list[Path]:
        """The run directories of a table row (a group row holds several)."""
        item = self.table.item(row, 0)
        stored = item.data(Qt.ItemDataRole.UserRole + 1) if item is not None else None
        if not stored:
            return []
        # the table's own kind of rows: while "Across seeds" toggles, the rows are still the other kind
        return [Path(p) for p in json.loads(stored)] if self._grouped else [Path(stored)]

    def selected_paths(self) -> list[Path]:
        """The selected runs in the order of their run ids (not of the rows, which a sort reorders), so a
        run keeps its colour on the chart however the table is sorted."""
        rows = {i.row() for i in self.table.selectedIndexes()}
        paths = {p for r in rows for p in self._row_paths(r)}
        return sorted(paths, key=lambda p: (p.name, str(p)))

    def _set_chart_kind(self) -> None:
        epochs = self.chart_kind.currentIndex() == 1
        if epochs:
            self.plot.setAxisItems({"bottom": EpochAxis(orientation="bottom")})  # whole epochs only
            self.plot.setTitle("validation IC per epoch")
            self.plot.setLabel("bottom", "epoch")
            self.plot.setLabel("left", "validation IC")
        else:
            self.plot.setAxisItems({"bottom": YearDateAxis(orientation="bottom")})
            self.plot.setTitle("test long-short PnL (cumulative)")
            self.plot.setLabel("bottom", "date")
            self.plot.setLabel("left", "cum. long-short return")
        self.overlay()

    @staticmethod
    def _epoch_curve(path: Path) -> tuple[np.ndarray, np.ndarray] | None:
        """(epochs, validation IC) of a run, from its metrics.jsonl."""
        try:
            text = read_owned(path / "metrics.jsonl").decode("utf-8", errors="replace")
        except (OSError, ValueError):  # none, or a link or a special file planted there: not followed
            return None
        epochs, ics = [], []
        for line in text.splitlines():
            try:
                record = json.loads(line)
                ic = (record.get("valid") or {}).get("ic")
                epochs.append(float(record["epoch"]))
                ics.append(float(ic) if isinstance(ic, int | float) else math.nan)
            except (ValueError, KeyError, TypeError):
                continue  # a line cut short by a kill: the epochs before it still draw
        return (np.asarray(epochs), np.asarray(ics)) if epochs else None

    @staticmethod
    def _test_curve(path: Path) -> tuple[np.ndarray, np.ndarray] | None:
        """(dates as seconds, cumulative long-short) of a run's test dates."""
        try:
            text = read_owned(path / "daily.csv").decode("utf-8", errors="replace")
        except (OSError, ValueError):
            return None
        rows = [r for r in csv.DictReader(io.StringIO(text)) if r["split"] == "test"]
        values = [float(r["long_short"]) if r["long_short"] not in ("", "nan") else 0.0 for r in rows]
        dates = [np.datetime64(r["date"][:10], "s").astype(np.int64) for r in rows]
        return np.asarray(dates, dtype=float), np.cumsum(values)

    def overlay(self) -> None:
        self.plot.clear()
        self.legend.clear()
        self.plot.addLine(y=0, pen=pg.mkPen("#888", width=1))
        by_group: dict[str, list[Path]] = {}
        group_of = {row["path"]: row["group"] for row in self.rows}
        for path in self.selected_paths():
            # runs of one group are drawn together when there are several; alone, a run is its own line
            by_group.setdefault(group_of.get(path, str(path)) if self.by_seed.isChecked() else str(path),
                                []).append(path)
        names = {g["group"]: g["graph"] for g in seed_groups(self.rows)}
        self.bands: list[dict] = []
        for i, (group, paths) in enumerate(by_group.items()):
            color = PALETTE[i % len(PALETTE)]
            read = self._epoch_curve if self.chart_kind.currentIndex() == 1 else self._test_curve
            curves = [c for c in (read(p) for p in paths) if c is not None]
            if not curves:
                continue
            if len(curves) == 1:
                curve = self.plot.plot(*curves[0], pen=pg.mkPen(color, width=2))
                self.legend.addItem(curve, paths[0].name if not self.by_seed.isChecked() else names.get(group, ""))
                continue
            # the x values every seed has (runs stopped early have fewer epochs: the band ends with the shortest)
            n = min(len(c[0]) for c in curves)
            dates = curves[0][0][:n]
            same = [c[1][:n] for c in curves if np.array_equal(c[0][:n], dates)]
            stack = np.vstack(same)
            mean, std = stack.mean(axis=0), stack.std(axis=0, ddof=1) if len(same) > 1 else np.zeros(n)
            fill = pg.QtGui.QColor(color)
            fill.setAlpha(60)
            upper = pg.PlotDataItem(dates, mean + std, pen=pg.mkPen(None))
            lower = pg.PlotDataItem(dates, mean - std, pen=pg.mkPen(None))
            self.plot.addItem(upper)
            self.plot.addItem(lower)
            self.plot.addItem(pg.FillBetweenItem(upper, lower, brush=pg.mkBrush(fill)))
            if self.seed_lines.isChecked():
                for values in same:
                    self.plot.plot(dates, values, pen=pg.mkPen(color, width=1))
            line = self.plot.plot(dates, mean, pen=pg.mkPen(color, width=2))
            self.legend.addItem(line, f"{names.get(group, group)}: mean ± std of {len(same)} seeds")
            self.bands.append({"group": group, "dates": dates, "mean": mean, "std": std, "seeds": len(same)})
        drawn = bool(self.legend.items)
        self._fit_legend()
        # an empty chart has no dates: its axis would count milliseconds of 1970
        self.plot.getAxis("bottom").setStyle(showValues=drawn)
        if drawn:
            self.plot.enableAutoRange()
        else:
            text = ("select runs in the table to draw them" if not by_group else
                    "the selected runs have no " + ("epochs" if self.chart_kind.currentIndex() == 1
                                                    else "test results") + " yet")
            hint = pg.TextItem(text, color="#9aa0a6", anchor=(0.5, 0.5))
            self.plot.addItem(hint)
            hint.setPos(0.5, 0.5)
            self.plot.setRange(xRange=(0, 1), yRange=(0, 1), padding=0)

    def _fit_legend(self) -> None:
        """Two columns of run names where the chart has room for them, else one: a legend wider than the
        chart made the whole chart wider than its view, and its right side was cut off."""
        widths = [sample.width() + label.width() + 12 for sample, label in self.legend.items]
        room = self.chart.viewport().width() - 24
        columns = 2 if len(widths) > 1 and 2 * max(widths) <= room else 1
        if columns != self.legend.columnCount:
            self.legend.setColumnCount(columns)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._fit_legend()

    def compare_selected(self) -> CompareDialog | None:
        """The compare dialog of the two selected runs (A: the older one)."""
        from studio.train.run_diff import RunDiffError, diff_runs

        paths = sorted(self.selected_paths(), key=lambda p: p.name)
        if len(paths) != 2:
            self.compare_button.setToolTip("Select exactly two runs to compare them (Ctrl+click)")
            return None
        try:
            diff = diff_runs(paths[0], paths[1])
        except RunDiffError as exc:
            QMessageBox.warning(self, "Cannot compare", str(exc))
            return None
        dialog = CompareDialog(diff, self)
        changed = sorted(diff.graph.changed_nodes()) if diff.graph is not None else []
        dialog.highlight_button.clicked.connect(
            lambda: self.highlightNodes.emit(str(paths[1] / "graph.json"), changed))
        dialog.show()
        self.compare_dialog = dialog
        return dialog

    def report_selected(self) -> ReportDialog | None:
        """Write the selected run's tear sheet where the user says (default: report.html in the run) and
        show it here, in the studio, with the path it was written to (a browser may not be registered on
        this machine); the dialog, or None."""
        from studio.train.report import ReportError, write_report_and_figure

        paths = self.selected_paths()
        if len(paths) != 1:
            self.report_button.setToolTip("Select one run to make its tear sheet")
            QMessageBox.information(self, "Tear sheet", "Select one run (not a group of seeds) for its tear sheet.")
            return None
        out, _ = QFileDialog.getSaveFileName(self, "Tear sheet", str(paths[0] / "report.html"),
                                             "HTML page (*.html);;PNG image (*.png)")
        if not out:
            return None
        QApplication.setOverrideCursor(Qt.CursorShape.WaitCursor)
        try:
            sheet, png = write_report_and_figure(paths[0], out)
        except ReportError as exc:
            QMessageBox.warning(self, "Cannot make the tear sheet", str(exc))
            return None
        finally:
            QApplication.restoreOverrideCursor()
        dialog = ReportDialog(paths[0].name, Path(out), sheet, png, self)
        dialog.show()
        self.report_dialog = dialog
        return dialog

    def _enable_run_actions(self) -> None:
        """Predict… and Export model… only for one selected run that has what they need; else the tooltip
        says why not."""
        paths = self.selected_paths()
        reason = run_action_problem(paths[0]) if len(paths) == 1 else (
            "Select one run (not a group of seeds) to predict with it or export its model")
        export_reason = reason or ensemble_problem(paths[0])
        for button, tip, why in ((self.predict_button, "Score the stocks of some dates with the selected run (new "
                                                       "bars in, scores out): studio predict in the window", reason),
                                 (self.export_model_button, "The selected run's model as .py, .pt2 or ONNX, with its "
                                                            "preprocessing (takes raw bars): studio export --run",
                                  export_reason)):
            button.setEnabled(why is None)
            button.setToolTip(tip if why is None else why)
        group = self._selected_group()
        busy = self.ensemble_task is not None
        self.ensemble_button.setEnabled(not busy and len(group) > 1)
        self.ensemble_button.setToolTip(
            "Making the ensemble…" if busy else
            "Average the selected seed group's ranked test scores date by date into an ensemble run of its own "
            "(studio ensemble): it appears in the table" if len(group) > 1 else
            "Tick Across seeds and select one group of two or more seeds to make an ensemble of them")

    def _selected_group(self) -> list[Path]:
        """The runs of the one selected seed group (Across seeds), else none."""
        rows = {i.row() for i in self.table.selectedIndexes()}
        return self._row_paths(rows.pop()) if self._grouped and len(rows) == 1 else []

    def ensemble_selected(self):
        """Make an ensemble of the selected seed group on a worker thread (studio.train.ensemble, rank average)
        into a new run folder here; when it is made the table shows the runs with it selected. Returns the
        task (None when no group of two or more is selected or one is being made)."""
        import re
        import time

        from studio.gui.background_task import BackgroundTask
        from studio.train.ensemble import EnsembleError, make_ensemble

        paths = self._selected_group()
        if len(paths) < 2 or self.ensemble_task is not None:
            return None
        graph = next((r["graph"] for r in self.rows if r["path"] == paths[0]), "") or "runs"
        out = self.folder / f"{time.strftime('%Y%m%d-%H%M%S')}-ensemble-{re.sub(r'[^A-Za-z0-9_.-]+', '_', graph)}"
        task = BackgroundTask(lambda _cancel: make_ensemble(paths, out), (EnsembleError, OSError))
        task.succeeded.connect(lambda _metrics: self._ensemble_made(out))
        task.failed.connect(self._ensemble_failed)
        self.ensemble_task, self.ensemble_error = task, None
        self._enable_run_actions()
        task.start()
        return task

    def _ensemble_made(self, out: Path) -> None:
        self.ensemble_task = None
        self.by_seed.setChecked(False)  # the runs, where the ensemble is a row (the seed groups leave it out)
        self.refresh()
        self._select_paths({str(out)})

    def _ensemble_failed(self, line: str) -> None:
        self.ensemble_task, self.ensemble_error = None, line
        self._enable_run_actions()
        box = QMessageBox(QMessageBox.Icon.Warning, "Ensemble", f"No ensemble made: {line}", parent=self)
        box.open()  # not modal to the whole application: the table stays usable
        self.ensemble_box = box

    def predict_selected(self):
        """The predict dialog of the one selected run (None when the run cannot predict)."""
        from studio.gui.predict_dialog import PredictDialog

        paths = self.selected_paths()
        if len(paths) != 1 or run_action_problem(paths[0]) is not None:
            return None
        dialog = PredictDialog(paths[0], self)
        dialog.show()
        self.predict_dialog = dialog
        return dialog

    def export_model_selected(self):
        """The export dialog of the one selected run (None when the run has nothing to export)."""
        from studio.gui.export_dialog import ExportDialog

        paths = self.selected_paths()
        if len(paths) != 1 or run_action_problem(paths[0]) is not None:
            return None
        dialog = ExportDialog(paths[0], self)
        dialog.show()
        self.export_model_dialog = dialog
        return dialog

    def open_selected(self) -> None:
        for path in self.selected_paths():
            graph = path / "graph.json"
            if graph.is_file():
                self.openGraph.emit(str(graph))

    def export_png(self, path: str, width: int = 1600, light: bool | None = None) -> None:
        """The chart and its legend as a PNG ``width`` pixels wide; ``light``: black on white (default:
        the checkbox). The chart is laid out at least EXPORT_LAYOUT_WIDTH wide (a narrow dock's chart,
        scaled up, had huge text) and scaled to ``width``: text grows with the scale, but lines keep
        their width in pixels and the legend ignores it, so for the export the lines are widened and
        the legend scaled by the same factor."""
        from pyqtgraph.exporters import ImageExporter

        light = self.light_export.isChecked() if light is None else light
        axes = [self.plot.getAxis(name) for name in ("left", "bottom")]
        layout, shown = self.chart.ci, self.chart.ci.geometry()
        view = self.chart.viewport()
        laid_out = max(float(view.width()), EXPORT_LAYOUT_WIDTH)
        layout.setGeometry(QRectF(0, 0, laid_out, laid_out * view.height() / max(1, view.width())))
        exporter = ImageExporter(layout)
        scale = width / laid_out
        curves = [item for item in self.plot.items if isinstance(item, pg.PlotDataItem | pg.InfiniteLine)]
        pens = [pg.mkPen(item.opts["pen"]) if isinstance(item, pg.PlotDataItem) else pg.mkPen(item.pen)
                for item in curves]
        for item, pen in zip(curves, pens, strict=True):
            wider = pg.mkPen(pen)
            wider.setWidthF(max(1.0, pen.widthF()) * scale)
            item.setPen(wider)
        self.legend.setFlag(self.legend.GraphicsItemFlag.ItemIgnoresTransformations, False)
        if light:
            self.chart.setBackground("w")
            for axis in axes:
                axis.setPen("k")
                axis.setTextPen("k")
            self.plot.titleLabel.setText(self.plot.titleLabel.text, color="k")
            self._legend_text_color("k")
        try:
            exporter.parameters()["width"] = width
            if light:
                exporter.parameters()["background"] = pg.mkColor("w")
            # the axes size themselves to their labels while they paint: one drawing first, then the
            # layout settles (the legend's new lines and the axes' room), then the image
            for _ in range(2):  # the outer layout, then the plot's own (its axes)
                layout.layout.activate()
                self.plot.layout.activate()
            exporter.export(toBytes=True)
            for _ in range(2):
                layout.layout.activate()
                self.plot.layout.activate()
            exporter.export(path)
        finally:
            layout.setGeometry(shown)
            layout.layout.activate()
            for item, pen in zip(curves, pens, strict=True):
                item.setPen(pen)
            self.legend.setFlag(self.legend.GraphicsItemFlag.ItemIgnoresTransformations, True)
            if light:
                self.chart.setBackground(pg.getConfigOption("background"))
                for axis in axes:
                    axis.setPen(pg.getConfigOption("foreground"))
                    axis.setTextPen(pg.getConfigOption("foreground"))
                self.plot.titleLabel.setText(self.plot.titleLabel.text, color=pg.getConfigOption("foreground"))
                self._legend_text_color(pg.getConfigOption("foreground"))

    def _legend_text_color(self, color) -> None:
        # LegendItem.setLabelTextColor only takes effect on labels drawn afterwards: redraw each one
        self.legend.setLabelTextColor(color)
        for _sample, label in self.legend.items:
            label.setText(label.text, color=color)

    def export_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export chart", "pnl.png", "PNG image (*.png)")
        if path:
            self.export_png(path)
