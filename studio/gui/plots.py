"""Live training plots (pyqtgraph): losses, validation IC and RankIC per epoch with the oracle line,
IC per date, and the cumulative long, short and long-short PnL of the validation (then test) dates.

Records arrive by signal and go into buffers; a 10 Hz timer redraws what changed. A negative IC shows
as red bars under the zero line; reversed legs show the red short curve above the green long one.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QVBoxLayout, QWidget

LONG, SHORT, LONG_SHORT = "#4caf50", "#e05252", "#5ea8e8"


def _nan(values) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=float)


class PlotsWidget(QWidget):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        pg.setConfigOptions(antialias=True, background="#1f2227", foreground="#c8c8c8")
        self.layout_widget = pg.GraphicsLayoutWidget()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.layout_widget)
        lw = self.layout_widget
        self.loss_plot = lw.addPlot(title="loss per epoch")
        self.ic_plot = lw.addPlot(title="validation IC / RankIC per epoch")
        lw.nextRow()
        self.daily_plot = lw.addPlot(title="IC per date")
        self.pnl_plot = lw.addPlot(title="cumulative PnL")
        for plot in (self.loss_plot, self.ic_plot, self.daily_plot, self.pnl_plot):
            plot.showGrid(x=True, y=True, alpha=0.15)
            plot.addLegend(offset=(6, 6))
        self.daily_plot.addLine(y=0, pen=pg.mkPen("#888", width=1))
        self.pnl_plot.addLine(y=0, pen=pg.mkPen("#888", width=1))
        self.ic_plot.addLine(y=0, pen=pg.mkPen("#888", width=1))
        self.curves = {
            "train_loss": self.loss_plot.plot(pen=pg.mkPen("#e8a85e", width=2), name="train", symbol="o", symbolSize=5),
            "valid_loss": self.loss_plot.plot(pen=pg.mkPen("#5ea8e8", width=2), name="valid", symbol="o", symbolSize=5),
            "ic": self.ic_plot.plot(pen=pg.mkPen("#5ea8e8", width=2), name="IC", symbol="o", symbolSize=5),
            "rank_ic": self.ic_plot.plot(pen=pg.mkPen("#b88ee8", width=2), name="RankIC", symbol="o", symbolSize=5),
            "long": self.pnl_plot.plot(pen=pg.mkPen(LONG, width=2), name="long leg"),
            "short": self.pnl_plot.plot(pen=pg.mkPen(SHORT, width=2), name="short leg"),
            "long_short": self.pnl_plot.plot(pen=pg.mkPen(LONG_SHORT, width=3), name="long-short"),
        }
        for curve in self.curves.values():
            curve.setClipToView(True)
            curve.setDownsampling(auto=True)
        self.bars = pg.BarGraphItem(x=[], height=[], width=0.8, brushes=[])
        self.daily_plot.addItem(self.bars)
        dashed = pg.mkPen("#7ed38a", width=1.5, style=pg.QtCore.Qt.PenStyle.DashLine)
        self.oracle_line = pg.InfiniteLine(angle=0, pen=dashed, label="oracle IC",
                                           labelOpts={"color": "#7ed38a", "position": 0.1})
        self.oracle_line.setVisible(False)
        self.ic_plot.addItem(self.oracle_line)
        self.reset()
        self.timer = QTimer(self)
        self.timer.setInterval(100)
        self.timer.timeout.connect(self.redraw)
        self.timer.start()

    def reset(self) -> None:
        self.epochs: list[dict] = []
        self.daily: dict | None = None
        self.daily_label = "validation"
        self.dirty = True
        self.oracle_line.setVisible(False)

    def add_record(self, record: dict) -> None:
        kind = record["kind"]
        if kind == "start":
            self.reset()
            oracle = record["oracle_ic"].get("valid")
            if oracle is not None:
                self.oracle_line.setValue(oracle)
                self.oracle_line.label.setFormat(f"oracle IC {oracle:.3f}")
                self.oracle_line.setVisible(True)
        elif kind == "epoch":
            self.epochs.append({"epoch": record["epoch"], "train_loss": record["train_loss"],
                                "valid_loss": record["valid_loss"], "ic": record["valid"]["ic"],
                                "rank_ic": record["valid"]["rank_ic"]})
            self.daily = record["daily"]
            self.daily_label = f"validation dates, epoch {record['epoch']}"
            self.dirty = True
        elif kind == "done" and record.get("run_dir"):
            self._load_test_days(record["run_dir"])

    def _load_test_days(self, run_dir: str) -> None:
        import csv
        from pathlib import Path

        path = Path(run_dir) / "daily.csv"
        if not path.is_file():
            return
        with open(path, encoding="utf-8") as fh:
            rows = [r for r in csv.DictReader(fh) if r["split"] == "test"]
        if rows:
            self.daily = {k: [float(r[k]) if r[k] not in ("", "nan") else None for r in rows]
                          for k in ("ic", "long", "short", "long_short")}
            self.daily_label = "test dates, best epoch"
            self.dirty = True

    def redraw(self) -> None:
        if not self.dirty:
            return
        self.dirty = False
        x = np.array([e["epoch"] for e in self.epochs], dtype=float)
        for key in ("train_loss", "valid_loss", "ic", "rank_ic"):
            self.curves[key].setData(x, _nan([e[key] for e in self.epochs]), skipFiniteCheck=True)
        if self.daily is None:
            for key in ("long", "short", "long_short"):
                self.curves[key].setData([], [])
            self.bars.setOpts(x=[], height=[], brushes=[])
            return
        ic = np.nan_to_num(_nan(self.daily["ic"]))
        days = np.arange(len(ic))
        self.bars.setOpts(x=days, height=ic, width=0.8,
                          brushes=[pg.mkBrush(LONG if v >= 0 else SHORT) for v in ic])
        self.daily_plot.setTitle(f"IC per date ({self.daily_label})")
        for key in ("long", "short", "long_short"):
            self.curves[key].setData(days, np.cumsum(np.nan_to_num(_nan(self.daily[key]))))
        self.pnl_plot.setTitle(f"cumulative PnL ({self.daily_label})")

    def export_png(self, path: str) -> None:
        from pyqtgraph.exporters import ImageExporter

        ImageExporter(self.layout_widget.scene()).export(path)
