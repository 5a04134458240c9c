"""The training plots fit the dock they are given: at 1280 x 800 the right side (inspector and training
panel, the full height) leaves the plots about 950 px, where the titles' detail ("validation dates,
epoch 4") and three-item legends in one row pushed the cumulative PnL plot past the dock's edge."""

from __future__ import annotations

from studio.gui.plots import PlotsWidget


def _epoch_record(epoch: int) -> dict:
    dates = [f"2024-01-{day:02d}" for day in range(2, 22)]
    values = [0.01 * ((i % 5) - 2) for i in range(len(dates))]
    return {"kind": "epoch", "epoch": epoch, "train_loss": -0.01 * epoch, "valid_loss": -0.008 * epoch,
            "valid": {"ic": 0.05, "rank_ic": 0.06},
            "daily": {"dates": dates, "ic": values, "long": values, "short": values, "long_short": values}}


def _shown(qtbot, width: int) -> PlotsWidget:
    plots = PlotsWidget()
    qtbot.addWidget(plots)
    plots.resize(width, 260)
    plots.show()
    qtbot.waitExposed(plots)
    for epoch in (1, 2, 3, 4):
        plots.add_record(_epoch_record(epoch))
    plots.redraw()
    qtbot.wait(50)
    return plots


def test_all_four_plots_fit_a_narrow_dock(qtbot):
    plots = _shown(qtbot, 950)
    view = plots.layout_widget
    right = plots.pnl_plot.mapRectToScene(plots.pnl_plot.boundingRect()).right()
    assert right <= view.viewport().width() + 1, (right, view.viewport().width())
    legend = plots.legends[3]
    assert legend.mapRectToScene(legend.boundingRect()).right() <= view.viewport().width() + 1
    # the detail the titles drop there is still said, once, in the caption above the plots
    assert plots.pnl_plot.titleLabel.text == "cumulative PnL"
    assert "validation dates, epoch 4" in plots.caption.text()


def test_a_wide_dock_keeps_the_titles_detail_and_one_row_legends(qtbot):
    plots = _shown(qtbot, 1400)
    assert plots.pnl_plot.titleLabel.text == "cumulative PnL (validation dates, epoch 4)"
    assert all(legend.columnCount == 3 for legend in plots.legends)
    # and narrowing it afterwards fits again
    plots.resize(950, 260)
    qtbot.wait(50)
    assert plots.pnl_plot.titleLabel.text == "cumulative PnL"
    right = plots.pnl_plot.mapRectToScene(plots.pnl_plot.boundingRect()).right()
    assert right <= plots.layout_widget.viewport().width() + 1
