"""The runs table: every run under the runs folder with the figures of the comparison table; select
runs to overlay their test long-short PnL, open a run's graph, export the chart as PNG."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QFileDialog,
    QHBoxLayout,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from studio.metrics import MIN_DATES, sample_size

COLUMNS = [("run", "run"), ("graph", "graph"), ("status", "status"), ("ic", "IC"), ("rank_ic", "RankIC"),
           ("icir", "ICIR"), ("annual_return", "LS ann. ret."), ("sharpe", "Sharpe"), ("max_drawdown", "max DD"),
           ("oracle_ic", "oracle IC"), ("ic_t", "IC t"), ("dates", "dates")]
#: the columns that hold numbers (sorted as numbers)
FIGURE_KEYS = {k for k, _ in COLUMNS[3:]}
FEW_DATES_TIP = ("fewer than {n} test dates: Sharpe, ICIR and the rest mean little here (IC t = mean IC / "
                 "(std / sqrt(dates)); |t| < 2 is no evidence of skill)")
PALETTE = ["#5ea8e8", "#e8a85e", "#7ed38a", "#b88ee8", "#e05252", "#d8d860", "#60d8d8", "#d88ec8"]


def read_runs(folder: Path) -> list[dict]:
    """One row per run directory: test figures from metrics.json (no pandas needed)."""
    rows = []
    if not folder.is_dir():
        return rows
    for path in sorted((p for p in folder.iterdir() if (p / "config.json").is_file()), reverse=True):
        try:
            config = json.loads((path / "config.json").read_text(encoding="utf-8"))
            metrics_file = path / "metrics.json"
            metrics = json.loads(metrics_file.read_text(encoding="utf-8")) if metrics_file.is_file() else {}
        except (OSError, json.JSONDecodeError):
            continue
        test = (metrics.get("splits") or {}).get("test") or {}
        dates, t, few = sample_size(test)
        rows.append({"path": path, "run": path.name, "graph": config.get("graph", {}).get("name", ""),
                     "status": config.get("status", "?"), **{k: test.get(k) for k, _ in COLUMNS[3:]},
                     "ic_t": t, "dates": dates, "few_dates": few})
    return rows


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


class RunsWidget(QWidget):
    openGraph = Signal(str)

    def __init__(self, folder: Path, parent=None) -> None:
        super().__init__(parent)
        self.folder = Path(folder)
        self.rows: list[dict] = []
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels([h for _, h in COLUMNS])
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSortingEnabled(True)
        self.table.itemSelectionChanged.connect(self.overlay)
        self.table.doubleClicked.connect(lambda _index: self.open_selected())
        self.chart = pg.GraphicsLayoutWidget()
        self.plot = pg.PlotItem(title="test long-short PnL of the selected runs (cumulative)",
                                axisItems={"bottom": pg.DateAxisItem(orientation="bottom", utcOffset=0)})
        self.plot.setLabel("bottom", "date")
        self.plot.setLabel("left", "cumulative long-short return")
        self.plot.showGrid(x=True, y=True, alpha=0.15)
        self.chart.addItem(self.plot, row=0, col=0)
        self.legend = pg.LegendItem(colCount=2)  # under the plot, off the curves
        self.chart.addItem(self.legend, row=1, col=0)
        self.chart.ci.layout.setRowStretchFactor(0, 8)
        self.chart.ci.layout.setRowStretchFactor(1, 1)
        buttons = QHBoxLayout()
        for text, slot in (("Refresh", self.refresh), ("Open graph", self.open_selected),
                           ("Export chart…", self.export_dialog)):
            button = QPushButton(text)
            button.clicked.connect(lambda _=False, s=slot: s())
            buttons.addWidget(button)
        self.light_export = QCheckBox("light background")
        self.light_export.setToolTip("Export the chart black on white (for papers and slides)")
        buttons.addWidget(self.light_export)
        buttons.addStretch(1)
        left = QWidget()
        column = QVBoxLayout(left)
        column.setContentsMargins(0, 0, 0, 0)
        column.addLayout(buttons)
        column.addWidget(self.table)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(left)
        splitter.addWidget(self.chart)
        splitter.setSizes([700, 500])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(splitter)

    def refresh(self) -> None:
        self.rows = read_runs(self.folder)
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
                        f"{value:.2%}" if key in ("annual_return", "max_drawdown")
                        else f"{value:.2f}" if key in ("ic_t", "sharpe", "icir") else f"{value:.4f}")
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
                item.setData(Qt.ItemDataRole.UserRole + 1, str(row["path"]))
                self.table.setItem(r, c, item)
        self.table.setSortingEnabled(True)
        self.table.resizeColumnsToContents()

    def selected_paths(self) -> list[Path]:
        rows = sorted({i.row() for i in self.table.selectedIndexes()})
        return [Path(self.table.item(r, 0).data(Qt.ItemDataRole.UserRole + 1)) for r in rows]

    def overlay(self) -> None:
        self.plot.clear()
        self.legend.clear()
        self.plot.addLine(y=0, pen=pg.mkPen("#888", width=1))
        for i, path in enumerate(self.selected_paths()):
            daily = path / "daily.csv"
            if not daily.is_file():
                continue
            with open(daily, encoding="utf-8") as fh:
                rows = [r for r in csv.DictReader(fh) if r["split"] == "test"]
            values = [float(r["long_short"]) if r["long_short"] not in ("", "nan") else 0.0 for r in rows]
            dates = [np.datetime64(r["date"][:10], "s").astype(np.int64) for r in rows]
            curve = self.plot.plot(np.asarray(dates, dtype=float), np.cumsum(values),
                                   pen=pg.mkPen(PALETTE[i % len(PALETTE)], width=2))
            self.legend.addItem(curve, path.name)

    def open_selected(self) -> None:
        for path in self.selected_paths():
            graph = path / "graph.json"
            if graph.is_file():
                self.openGraph.emit(str(graph))

    def export_png(self, path: str, width: int = 1600, light: bool | None = None) -> None:
        """The chart and its legend as a PNG ``width`` pixels wide; ``light``: black on white (default:
        the checkbox)."""
        from pyqtgraph.exporters import ImageExporter

        light = self.light_export.isChecked() if light is None else light
        axes = [self.plot.getAxis(name) for name in ("left", "bottom")]
        if light:
            self.chart.setBackground("w")
            for axis in axes:
                axis.setPen("k")
                axis.setTextPen("k")
            self.plot.titleLabel.setText(self.plot.titleLabel.text, color="k")
            self.legend.setLabelTextColor("k")
        try:
            exporter = ImageExporter(self.chart.scene())
            exporter.parameters()["width"] = width
            if light:
                exporter.parameters()["background"] = pg.mkColor("w")
            exporter.export(path)
        finally:
            if light:
                self.chart.setBackground(pg.getConfigOption("background"))
                for axis in axes:
                    axis.setPen(pg.getConfigOption("foreground"))
                    axis.setTextPen(pg.getConfigOption("foreground"))
                self.plot.titleLabel.setText(self.plot.titleLabel.text, color=pg.getConfigOption("foreground"))
                self.legend.setLabelTextColor(pg.getConfigOption("foreground"))

    def export_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export chart", "pnl.png", "PNG image (*.png)")
        if path:
            self.export_png(path)
