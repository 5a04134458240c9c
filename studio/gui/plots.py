"""Live training plots (pyqtgraph): losses, validation IC and RankIC per epoch with the oracle line,
IC per date, and the cumulative long, short and long-short PnL of the validation (then test) dates.

Records arrive by signal and go into buffers; a 10 Hz timer redraws what changed. The four plots sit
in one row (time series read best wide), each with labelled axes in its unit, the epoch axis in whole
epochs and the date axes in dates, and its legend in a row of its own under the plot, never over the
data. A negative IC shows as red bars under the zero line. The legs differ in colour and in line
style (long: green solid, short: red dashed, long-short: blue, thick), so reversed legs show at a
glance, in grey print too. "Export PNG…" saves the plots, "Export CSV…" the numbers behind them.
"""

from __future__ import annotations

import csv
import io
import math
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

LONG, SHORT, LONG_SHORT = "#4caf50", "#e05252", "#5ea8e8"
LEG_PENS = {
    "long": {"color": LONG, "width": 2},
    "short": {"color": SHORT, "width": 2, "style": Qt.PenStyle.DashLine},
    "long_short": {"color": LONG_SHORT, "width": 3},
}
AXIS_TEXT = "#c8c8c8"


def _nan(values) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def _seconds(dates) -> np.ndarray:
    """'2024-01-02' -> seconds since the epoch (what pyqtgraph's date axis reads), UTC midnight."""
    return np.array([np.datetime64(str(d)[:10], "s").astype(np.int64) for d in dates], dtype=float)


class EpochAxis(pg.AxisItem):
    """Ticks on whole epochs only (epoch 1.5 does not exist)."""

    def tickValues(self, minVal, maxVal, size):
        levels = super().tickValues(minVal, maxVal, size)
        whole = []
        for spacing, values in levels:
            if spacing < 1:
                continue
            whole.append((spacing, [v for v in values if float(v).is_integer()]))
        if not whole:
            first, last = math.ceil(minVal), math.floor(maxVal)
            whole = [(1.0, [float(v) for v in range(first, last + 1)])]
        return whole


def _with_year(level, example: str, formats: dict[str, str]):
    """A copy of one of pyqtgraph's date zoom levels whose tick formats ``formats`` replaces (old -> new)."""
    from pyqtgraph.graphicsItems.DateAxisItem import TickSpec, ZoomLevel

    return ZoomLevel([TickSpec(spec.spacing, spec.step, formats.get(spec.format, spec.format), spec.autoSkip)
                      for spec in level.tickSpecs], example)


class YearDateAxis(pg.DateAxisItem):
    """A date axis (UTC) whose labels carry the year: pyqtgraph's own reads "Feb" and "15" for a chart
    within one year, and a chart exported alone must say which year it shows."""

    def __init__(self, orientation: str = "bottom", **kwargs) -> None:
        from pyqtgraph.graphicsItems import DateAxisItem as dates

        super().__init__(orientation, utcOffset=0, **kwargs)
        # the example texts are as wide as the labels, so the ticks are spaced for them
        self.zoomLevels = OrderedDict([
            (np.inf, _with_year(dates.YEAR_MONTH_ZOOM_LEVEL, "MMM YYYY", {"%b": "%b %Y"})),
            (5 * 3600 * 24, _with_year(dates.MONTH_DAY_ZOOM_LEVEL, "MMM YYYY", {"%b": "%b %Y"})),
            (6 * 3600, _with_year(dates.DAY_HOUR_ZOOM_LEVEL, "Mon 00 MMM YYYY", {"%a %d": "%a %d %b %Y"})),
            (15 * 60, _with_year(dates.HOUR_MINUTE_ZOOM_LEVEL, "Mon 00 MMM YYYY", {"%a %d": "%a %d %b %Y"})),
            (30, dates.HMS_ZOOM_LEVEL),
            (1, dates.MS_ZOOM_LEVEL),
        ])


def _let_shrink(label: pg.LabelItem) -> None:
    """pyqtgraph makes a label's text width its minimum width, each time the text changes: a long title
    pushed the last plot out of its dock at 1280 x 800. The title may be cut instead (the plots'
    caption says the dates shown whatever the width)."""
    measure = label.updateMin

    def update_min() -> None:
        measure()
        label.setMinimumWidth(0)
        hints = label._sizeHint  # what LabelItem.sizeHint answers; only the minimum width changes
        hints[Qt.SizeHint.MinimumSize] = (0, hints[Qt.SizeHint.MinimumSize][1])

    label.updateMin = update_min


def _plot(title: str, x_label: str, y_label: str, y_units: str | None = None, dates: bool = False,
          epochs: bool = False) -> pg.PlotItem:
    axes = {}
    if dates:
        axes["bottom"] = YearDateAxis(orientation="bottom")
    elif epochs:
        axes["bottom"] = EpochAxis(orientation="bottom")
    plot = pg.PlotItem(axisItems=axes)
    _let_shrink(plot.titleLabel)
    plot.setTitle(title, size="9pt")
    small = {"font-size": "8pt"}
    plot.setLabel("bottom", x_label, **small)
    plot.setLabel("left", y_label, units=y_units, **small)
    for side in ("left", "bottom"):
        plot.getAxis(side).enableAutoSIPrefix(False)  # no "(x0.001)" on an IC axis
    plot.showGrid(x=True, y=True, alpha=0.15)
    plot.addLine(y=0, pen=pg.mkPen("#888", width=1))
    return plot


#: a plot at least this wide shows its title's detail and its legend in one row
WIDE_PLOT_PX = 280


class PlotsWidget(QWidget):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        pg.setConfigOptions(antialias=True, background="#1f2227", foreground=AXIS_TEXT)
        self.layout_widget = pg.GraphicsLayoutWidget()
        self.export_png_button = QPushButton("Export PNG…")
        self.export_png_button.setToolTip("Save the four plots as one PNG image")
        self.export_png_button.clicked.connect(self.export_png_dialog)
        self.export_csv_button = QPushButton("Export CSV…")
        self.export_csv_button.setToolTip("Save the numbers behind the plots: one row per epoch in FILE.csv, "
                                          "one row per date in FILE_daily.csv")
        self.export_csv_button.clicked.connect(self.export_csv_dialog)
        self.caption = QLabel("")
        self.caption.setStyleSheet("color: #9aa3ad")
        bar = QHBoxLayout()
        bar.setContentsMargins(6, 2, 6, 0)
        bar.addWidget(self.caption, 1)
        bar.addWidget(self.export_png_button)
        bar.addWidget(self.export_csv_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addLayout(bar)
        layout.addWidget(self.layout_widget)

        lw = self.layout_widget
        self.loss_plot = _plot("loss per epoch", "epoch", "loss", epochs=True)
        self.ic_plot = _plot("validation IC / RankIC per epoch", "epoch", "IC", epochs=True)
        self.daily_plot = _plot("IC per date", "date", "IC", dates=True)
        self.pnl_plot = _plot("cumulative PnL", "date", "cumulative return", dates=True)
        plots = (self.loss_plot, self.ic_plot, self.daily_plot, self.pnl_plot)
        for column, plot in enumerate(plots):
            lw.addItem(plot, row=0, col=column)
        self.legends = []
        for column, _plot_item in enumerate(plots):
            legend = pg.LegendItem(colCount=3, labelTextColor=AXIS_TEXT)
            lw.addItem(legend, row=1, col=column)
            self.legends.append(legend)
        lw.ci.layout.setRowStretchFactor(0, 10)
        lw.ci.layout.setRowStretchFactor(1, 1)
        #: each plot's title: its name and a detail (which dates) shown when the plot is wide enough
        self._titles = {plot: (plot.titleLabel.text, "") for plot in plots}
        self._wide = True  # until the widget has a width

        self.curves = {
            "train_loss": self.loss_plot.plot(pen=pg.mkPen("#e8a85e", width=2), symbol="o", symbolSize=5,
                                              symbolBrush="#e8a85e"),
            "valid_loss": self.loss_plot.plot(pen=pg.mkPen("#5ea8e8", width=2, style=Qt.PenStyle.DashLine),
                                              symbol="s", symbolSize=5, symbolBrush="#5ea8e8"),
            "ic": self.ic_plot.plot(pen=pg.mkPen("#5ea8e8", width=2), symbol="o", symbolSize=5,
                                    symbolBrush="#5ea8e8"),
            "rank_ic": self.ic_plot.plot(pen=pg.mkPen("#b88ee8", width=2, style=Qt.PenStyle.DashLine),
                                         symbol="s", symbolSize=5, symbolBrush="#b88ee8"),
            "long": self.pnl_plot.plot(pen=pg.mkPen(**LEG_PENS["long"])),
            "short": self.pnl_plot.plot(pen=pg.mkPen(**LEG_PENS["short"])),
            "long_short": self.pnl_plot.plot(pen=pg.mkPen(**LEG_PENS["long_short"])),
        }
        names = {"train_loss": "train", "valid_loss": "valid", "ic": "IC", "rank_ic": "RankIC",
                 "long": "long leg", "short": "short leg", "long_short": "long-short"}
        owner = {"train_loss": 0, "valid_loss": 0, "ic": 1, "rank_ic": 1, "long": 3, "short": 3, "long_short": 3}
        for key, curve in self.curves.items():
            curve.setClipToView(True)
            curve.setDownsampling(auto=True)
            self.legends[owner[key]].addItem(curve, names[key])
        self.bars = pg.BarGraphItem(x=[], height=[], width=0.8, brushes=[])
        self.daily_plot.addItem(self.bars)
        self.legends[2].addItem(pg.BarGraphItem(x=[], height=[], width=1, brush=LONG), "IC ≥ 0")
        self.legends[2].addItem(pg.BarGraphItem(x=[], height=[], width=1, brush=SHORT), "IC &lt; 0")  # HTML label
        dashed = pg.mkPen("#7ed38a", width=1.5, style=Qt.PenStyle.DotLine)
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
        from studio.core.owned_dir import read_owned

        try:  # inside the run folder only: a link or a special file there is not followed
            text = read_owned(Path(run_dir) / "daily.csv").decode("utf-8", errors="replace")
        except (OSError, ValueError):
            return
        rows = [r for r in csv.DictReader(io.StringIO(text)) if r["split"] == "test"]
        if rows:
            self.daily = {k: [float(r[k]) if r[k] not in ("", "nan") else None for r in rows]
                          for k in ("ic", "long", "short", "long_short")}
            self.daily["dates"] = [r["date"] for r in rows]
            self.daily_label = "test dates, best epoch"
            self.dirty = True

    def redraw(self) -> None:
        if not self.dirty:
            return
        self.dirty = False
        x = np.array([e["epoch"] for e in self.epochs], dtype=float)
        for key in ("train_loss", "valid_loss", "ic", "rank_ic"):
            self.curves[key].setData(x, _nan([e[key] for e in self.epochs]), skipFiniteCheck=True)
        for plot in (self.daily_plot, self.pnl_plot):  # no dates yet: no date labels (they would read 1970)
            plot.getAxis("bottom").setStyle(showValues=self.daily is not None)
        if self.daily is None:  # a new run: no dates yet, and no title naming the last run's dates
            for key in ("long", "short", "long_short"):
                self.curves[key].setData([], [])
            self.bars.setOpts(x=[], height=[], brushes=[])
            self._set_title(self.daily_plot, "IC per date")
            self._set_title(self.pnl_plot, "cumulative PnL")
            self.caption.setText("")
            return
        ic = np.nan_to_num(_nan(self.daily["ic"]))
        days = _seconds(self.daily["dates"]) if self.daily.get("dates") else np.arange(len(ic), dtype=float)
        width = float(np.median(np.diff(days))) * 0.8 if len(days) > 1 else 0.8
        self.bars.setOpts(x=days, height=ic, width=width,
                          brushes=[pg.mkBrush(LONG if v >= 0 else SHORT) for v in ic])
        self._set_title(self.daily_plot, "IC per date", self.daily_label)
        for key in ("long", "short", "long_short"):
            self.curves[key].setData(days, np.cumsum(np.nan_to_num(_nan(self.daily[key]))))
        self._set_title(self.pnl_plot, "cumulative PnL", self.daily_label)
        self.caption.setText(f"{len(self.epochs)} epoch(s); daily figures of the {self.daily_label}")

    # ---- fitting the width -------------------------------------------------------------------------
    def _set_title(self, plot: pg.PlotItem, name: str, detail: str = "") -> None:
        self._titles[plot] = (name, detail)
        self._show_title(plot)

    def _show_title(self, plot: pg.PlotItem) -> None:
        name, detail = self._titles[plot]
        plot.setTitle(f"{name} ({detail})" if detail and self._wide else name, size="9pt")

    def fit_width(self) -> None:
        """Titles with their detail and legends in one row where each plot has the room (about 280 px),
        else the plain titles and legends of one or two columns, so all four plots fit the dock."""
        per_plot = self.layout_widget.width() / 4
        wide = per_plot >= WIDE_PLOT_PX
        columns = 3 if wide else (2 if per_plot >= 190 else 1)
        if wide == self._wide and all(legend.columnCount == columns for legend in self.legends):
            return
        self._wide = wide
        for legend in self.legends:
            legend.setColumnCount(columns)
        for plot in self._titles:
            self._show_title(plot)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self.fit_width()

    # ---- export ----------------------------------------------------------------------------------
    def export_png(self, path: str, width: int = 1800) -> None:
        from pyqtgraph.exporters import ImageExporter

        exporter = ImageExporter(self.layout_widget.scene())
        exporter.parameters()["width"] = width
        exporter.export(path)

    def export_csv(self, path: str) -> list[Path]:
        """FILE.csv: epoch, train_loss, valid_loss, ic, rank_ic; FILE_daily.csv: date, ic, long, short,
        long_short of the dates shown."""
        target = Path(path)
        written = [target]
        with open(target, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["epoch", "train_loss", "valid_loss", "ic", "rank_ic"])
            for e in self.epochs:
                writer.writerow([e["epoch"], *("" if e[k] is None else e[k]
                                               for k in ("train_loss", "valid_loss", "ic", "rank_ic"))])
        if self.daily is not None:
            daily = target.with_name(target.stem + "_daily.csv")
            keys = ("ic", "long", "short", "long_short")
            dates = self.daily.get("dates") or list(range(len(self.daily["ic"])))
            with open(daily, "w", newline="", encoding="utf-8") as fh:
                writer = csv.writer(fh)
                writer.writerow(["date", *keys])
                for i, date in enumerate(dates):
                    writer.writerow([date, *("" if self.daily[k][i] is None else self.daily[k][i] for k in keys)])
            written.append(daily)
        return written

    def export_png_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export plots", "training.png", "PNG image (*.png)")
        if path:
            self.export_png(path)

    def export_csv_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export plot data", "training.csv", "CSV (*.csv)")
        if path:
            self.export_csv(path)
