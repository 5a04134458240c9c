"""studio report RUN_DIR: the tear sheet's figures against Alphalens (group mean returns per date, the
per-date Spearman IC) and hand-written pandas references (Pearson IC, groups with ties, decay, turnover,
monthly IC), on a real tiny run and on hand-made run directories; the PNG and HTML it writes, and its
one-line errors.

Alphalens bins with ``pd.qcut`` (every stock in a bin; quantile 5 the highest factor values) while the
tear sheet's groups are Qlib's (n = N // 5 stocks each from the top, the N - 5n lowest in none; G1 the
highest): the two agree when N_t is a multiple of 5 and no scores tie, and those are the dates compared
with Alphalens. Alphalens drops pairs without a forward return: so does the tear sheet (a stock counts
only with a score and a label)."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from studio import metrics
from studio.cli import main
from studio.train.report import TearSheet, quintile_groups, tear_sheet
from tests.conftest import GRAPHS

TINY_TRAIN = ["--synthetic", "stocks=40", "--synthetic", "days=100", "--epochs", "2", "--patience", "0",
              "--threads", "1", "-q"]
EXACT = 1e-10


# ---- run directories ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def real_run(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("report-run")
    assert main(["train", str(GRAPHS / "default.json"), "--out", str(folder), *TINY_TRAIN]) == 0
    (run_dir,) = folder.iterdir()
    return run_dir


def write_run(folder: Path, frame: pd.DataFrame, *, quantile: float = 0.2, cost: float = 0.002,
              min_stocks: int = 10) -> Path:
    """A run directory with these predictions, the config.json metric settings and a daily.csv computed as
    the engine does (studio.metrics.summarize per split)."""
    folder.mkdir(parents=True)
    frame = frame.copy()
    frame["split"] = frame["split"].astype("category")
    frame.to_parquet(folder / "predictions.parquet", index=False)
    config = {"metrics": {"cost": cost, "quantile": quantile, "min_stocks": min_stocks, "lag": 1, "horizon": 1}}
    (folder / "config.json").write_text(json.dumps(config))
    rows = []
    for split, part in frame.groupby("split", observed=True, sort=False):
        scores = part.pivot(index="date", columns="symbol", values="score")
        labels = part.pivot(index="date", columns="symbol", values="label").reindex_like(scores)
        _, daily = metrics.summarize(scores.to_numpy(), labels.to_numpy(), quantile=quantile, cost=cost,
                                     min_stocks=min_stocks)
        for i, date in enumerate(scores.index):
            rows.append({"date": str(date.date()), "split": split,
                         **{k: float(daily[k][i]) for k in ("ic", "rank_ic", "long", "short", "long_short",
                                                            "turnover")}})
    pd.DataFrame(rows).to_csv(folder / "daily.csv", index=False, float_format="%.10g")
    return folder


def random_frame(seed: int = 0, stocks: int = 50, valid_dates: int = 12, test_dates: int = 40) -> pd.DataFrame:
    """valid then test dates (business days across two months), distinct scores, labels correlated with them;
    on some dates 5 labels are missing (45 stocks count), on one only 8 stocks have a label (too few)."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2021-01-04", periods=valid_dates + test_dates)
    symbols = [f"S{i:03d}" for i in range(stocks)]
    index = pd.MultiIndex.from_product([dates, symbols], names=["date", "symbol"])
    frame = index.to_frame(index=False)
    frame["score"] = rng.normal(size=len(frame))
    frame["label"] = 0.01 * (0.3 * frame["score"] + rng.normal(size=len(frame)))
    frame["split"] = np.where(frame["date"] < dates[valid_dates], "valid", "test")
    day = frame["date"].map({d: i for i, d in enumerate(dates)})
    frame.loc[(day % 7 == 3) & (frame["symbol"] < "S005"), "label"] = np.nan  # 45 stocks on those dates
    frame.loc[(day == valid_dates + 20) & (frame["symbol"] >= "S008"), "label"] = np.nan  # 8 stocks: left out
    return frame


@pytest.fixture(scope="module")
def hand_made(tmp_path_factory) -> Path:
    return write_run(tmp_path_factory.mktemp("hand") / "run", random_frame())


def alphalens_factor_data(sheet_run: Path, split: str, trim: bool = False) -> pd.DataFrame:
    """The split's predictions in Alphalens' factor_data format (index date, asset; the 1-day forward return,
    the factor, its quantile by Alphalens' own binning), without pairs lacking a value and without dates too
    small for the studio to rank. ``trim``: each date keeps only its 5 * (N // 5) highest scores (the stocks
    Qlib's groups hold), so that Alphalens bins the same stocks on every date."""
    from alphalens.utils import quantize_factor

    frame = pd.read_parquet(sheet_run / "predictions.parquet")
    frame = frame[(frame["split"] == split) & frame["score"].notna() & frame["label"].notna()]
    min_stocks = json.loads((sheet_run / "config.json").read_text())["metrics"]["min_stocks"]
    frame = frame[frame.groupby("date")["symbol"].transform("size") >= min_stocks]
    if trim:
        frame = frame.sort_values(["date", "score"], ascending=[True, False])
        place = frame.groupby("date").cumcount()
        frame = frame[place < 5 * (frame.groupby("date")["symbol"].transform("size") // 5)].sort_index()
    data = pd.DataFrame({"1D": frame["label"].to_numpy(), "factor": frame["score"].to_numpy()},
                        index=pd.MultiIndex.from_arrays([pd.DatetimeIndex(frame["date"]).astype("datetime64[ns]"),
                                                         frame["symbol"].astype(str)], names=["date", "asset"]))
    data["factor_quantile"] = quantize_factor(data, quantiles=5)
    return data


def unambiguous_dates(data: pd.DataFrame) -> pd.DatetimeIndex:
    """Dates whose stock count is a multiple of 5 and whose scores are distinct: Qlib's groups and
    Alphalens' quintiles are the same stocks there."""
    per_date = data.groupby(level="date")["factor"].agg(["size", "nunique"])
    keep = (per_date["size"] % 5 == 0) & (per_date["nunique"] == per_date["size"])
    return pd.DatetimeIndex(per_date.index[keep])


def assert_groups_match_alphalens(sheet: TearSheet, data: pd.DataFrame) -> int:
    from alphalens.performance import mean_return_by_quantile

    dates = unambiguous_dates(data)
    mean, _std = mean_return_by_quantile(data, by_date=True, demeaned=False)
    for q in range(1, 6):
        theirs = mean.xs(q, level="factor_quantile")["1D"].reindex(dates)
        ours = sheet.groups[f"G{6 - q}"].reindex(dates)  # Alphalens' quantile 5 holds the highest scores: G1
        assert theirs.notna().all()
        np.testing.assert_allclose(ours.to_numpy(), theirs.to_numpy(), rtol=0, atol=EXACT)
    return len(dates)


def assert_rank_ic_matches_alphalens(sheet: TearSheet, data: pd.DataFrame) -> None:
    from alphalens.performance import factor_information_coefficient

    theirs = factor_information_coefficient(data)["1D"]  # Alphalens' IC: scipy's spearmanr per date
    ours = sheet.ic["rank_ic"]
    assert ours.reindex(theirs.index).notna().all()
    np.testing.assert_allclose(ours.reindex(theirs.index).to_numpy(), theirs.to_numpy(), rtol=0, atol=EXACT)
    assert ours.drop(theirs.index).isna().all()  # the dates left out (too few stocks) have none


# ---- against Alphalens --------------------------------------------------------------------------------

def test_a_real_run_s_groups_and_rank_ic_match_alphalens(real_run):
    sheet = tear_sheet(real_run, "test")
    assert_rank_ic_matches_alphalens(sheet, alphalens_factor_data(real_run, "test"))
    # a date's stock count is seldom a multiple of 5: Alphalens bins the stocks Qlib's groups hold
    trimmed = alphalens_factor_data(real_run, "test", trim=True)
    assert assert_groups_match_alphalens(sheet, trimmed) == len(sheet.dates)
    # on every date, G1 is the run's long leg (its quantile is 0.2: the top int(0.2 N) stocks), as daily.csv has it
    daily = pd.read_csv(real_run / "daily.csv", parse_dates=["date"])
    daily = daily[daily["split"] == "test"].set_index("date")
    np.testing.assert_allclose(sheet.groups["G1"].to_numpy(), daily["long"].reindex(sheet.dates).to_numpy(),
                               rtol=1e-9, atol=1e-12)
    assert not [n for n in sheet.notes if "daily.csv" in n]  # the recomputed daily figures are daily.csv's


def test_hand_made_groups_and_rank_ic_match_alphalens_on_every_usable_date(hand_made):
    for split in ("test", "valid"):
        sheet = tear_sheet(hand_made, split)
        data = alphalens_factor_data(hand_made, split)
        compared = assert_groups_match_alphalens(sheet, data)
        assert compared == data.index.get_level_values("date").nunique()  # every date: 50 or 45 stocks
        assert_rank_ic_matches_alphalens(sheet, data)
    sheet = tear_sheet(hand_made, "test")
    small = sheet.dates[20]
    assert sheet.sizes.loc[small, "n_stocks"] == 8 and sheet.groups.loc[small].isna().all()
    assert set(sheet.sizes["per_group"]) == {0, 9, 10}


def test_pearson_ic_and_the_rolling_mean_match_pandas(hand_made):
    sheet = tear_sheet(hand_made, "test")
    frame = pd.read_parquet(hand_made / "predictions.parquet")
    frame = frame[frame["split"] == "test"].dropna(subset=["score", "label"])
    counts = frame.groupby("date")["symbol"].size()
    reference = frame.groupby("date")[["score", "label"]].apply(lambda d: d["score"].corr(d["label"]))
    reference[counts < 10] = np.nan
    np.testing.assert_allclose(sheet.ic["ic"].to_numpy(), reference.reindex(sheet.dates).to_numpy(),
                               rtol=0, atol=EXACT)
    rolling = reference.reindex(sheet.dates).rolling(20, min_periods=1).mean()
    np.testing.assert_allclose(sheet.ic["ic_rolling"].to_numpy(), rolling.to_numpy(), rtol=0, atol=EXACT)
    by_month = reference.groupby([reference.index.year, reference.index.month]).mean()
    assert sheet.monthly_ic.shape == (1, 12) and list(sheet.monthly_ic.columns) == list(range(1, 13))
    for (year, month), value in by_month.items():
        assert sheet.monthly_ic.loc[year, month] == pytest.approx(value, abs=EXACT)
    assert sheet.monthly_ic.loc[2021].drop(list(by_month.index.get_level_values(1))).isna().all()


# ---- exact cases by hand ------------------------------------------------------------------------------

def test_groups_follow_qlib_with_ties_in_symbol_order_and_the_lowest_remainder_left_out():
    # 12 stocks: n = 2 per group, the 2 lowest scores in no group; S01 and S02 tie at the G1 / G2 boundary
    scores = np.array([[9.0, 8.0, 8.0, 7.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0, 0.0, -1.0]])
    labels = np.arange(12, dtype=float)[None, :] / 100
    means, member, n = quintile_groups(scores, labels, min_stocks=10)
    assert n.tolist() == [2]
    assert member.tolist() == [[0, 0, 1, 1, 2, 2, 3, 3, 4, 4, -1, -1]]
    np.testing.assert_allclose(means[0], [0.005, 0.025, 0.045, 0.065, 0.085])
    # the same stocks in another column order: the tie goes to the first column
    means, member, _ = quintile_groups(scores[:, ::-1], labels[:, ::-1], min_stocks=10)
    assert member[0, ::-1].tolist() == [0, 1, 0, 1, 2, 2, 3, 3, 4, 4, -1, -1]
    # too few stocks: no groups
    means, member, n = quintile_groups(scores[:, :9], labels[:, :9], min_stocks=10)
    assert np.isnan(means).all() and (member == -1).all() and n.tolist() == [0]


def test_turnover_decay_and_long_short_by_hand(tmp_path):
    # 10 stocks, 4 test dates and 2 valid dates after them (a leak into valid would pair more dates)
    dates = pd.bdate_range("2022-03-01", periods=6)
    symbols = [f"S{i}" for i in range(10)]
    rows = []
    rng = np.random.default_rng(3)
    tops = [("S0", "S1"), ("S0", "S2"), ("S3", "S4"), ("S3", "S4"), ("S0", "S1"), ("S0", "S1")]
    for d, (date, top) in enumerate(zip(dates, tops, strict=True)):
        for i, s in enumerate(symbols):
            score = 10.0 + i / 100 if s in top else -float(i)
            rows.append({"date": date, "symbol": s, "split": "test" if d < 4 else "valid", "score": score,
                         "label": float(rng.normal())})
    frame = pd.DataFrame(rows)
    run = write_run(tmp_path / "run", frame, cost=0.01)
    sheet = tear_sheet(run, "test")
    assert list(sheet.dates) == list(dates[:4])
    # G1 = the two top names: S0,S1 -> S0,S2 (one of two new) -> S3,S4 (both) -> S3,S4 (none)
    np.testing.assert_allclose(sheet.turnover["G1"].to_numpy(), [1.0, 0.5, 1.0, 0.0])
    # G5 = the two lowest scores: S9, S8 on every date (neither is ever a top name)
    np.testing.assert_allclose(sheet.turnover["G5"].to_numpy(), [1.0, 0.0, 0.0, 0.0])
    legs = metrics.long_short(*(frame[frame["split"] == "test"].pivot(index="date", columns="symbol", values=v)
                                .to_numpy() for v in ("score", "label")), 0.2, 10)
    np.testing.assert_allclose(sheet.turnover["long_short"].to_numpy(), legs["turnover"])
    np.testing.assert_allclose(sheet.long_short["gross"].to_numpy(), legs["long_short"], rtol=0, atol=EXACT)
    np.testing.assert_allclose(sheet.long_short["net"].to_numpy(), legs["long_short"] - 0.01 * legs["turnover"],
                               rtol=0, atol=EXACT)
    np.testing.assert_allclose(sheet.long_short["net_cumulative"].to_numpy(),
                               np.cumsum(legs["long_short"] - 0.01 * legs["turnover"]), rtol=0, atol=EXACT)
    np.testing.assert_allclose(sheet.groups_cumulative["G1-G5"].to_numpy(),
                               np.cumsum(sheet.groups["G1"] - sheet.groups["G5"]), rtol=0, atol=EXACT)
    # the decay stays within the split: 4, 3, 2, 1 dates pair up at h = 1..4, none after
    assert sheet.decay["dates"].tolist() == [4, 3, 2, 1, 0, 0, 0, 0, 0, 0]
    assert sheet.decay.loc[5:, "rank_ic"].isna().all()
    assert sheet.decay.index.tolist() == list(range(1, 11))


def test_the_decay_matches_a_pandas_reference_within_the_split(hand_made):
    frame = pd.read_parquet(hand_made / "predictions.parquet")
    for split in ("valid", "test"):
        sheet = tear_sheet(hand_made, split)
        part = frame[frame["split"] == split]
        scores = part.pivot(index="date", columns="symbol", values="score")
        labels = part.pivot(index="date", columns="symbol", values="label")
        for h in range(1, 11):
            later = labels.shift(-(h - 1))  # the label h - 1 dates later, same symbol, within the split
            values = []
            for date in scores.index:
                pair = pd.DataFrame({"s": scores.loc[date], "l": later.loc[date]}).dropna()
                if len(pair) >= 10:
                    values.append(pair["s"].rank().corr(pair["l"].rank()))
            values = pd.Series(values, dtype=float)
            # the test split's 21st date has 8 labels: the pair that reaches it is left out
            assert sheet.decay.loc[h, "dates"] == len(values) == len(scores) - (h - 1) - (split == "test")
            assert sheet.decay.loc[h, "rank_ic"] == pytest.approx(values.mean(), abs=EXACT)
            assert sheet.decay.loc[h, "std"] == pytest.approx(values.std(ddof=1), abs=EXACT)


def test_the_decay_at_h1_is_the_split_s_mean_rank_ic_of_daily_csv(real_run):
    daily = pd.read_csv(real_run / "daily.csv")
    for split in ("train", "valid", "test"):
        sheet = tear_sheet(real_run, split)
        assert sheet.decay.loc[1, "rank_ic"] == pytest.approx(daily.loc[daily["split"] == split, "rank_ic"].mean(),
                                                              rel=1e-9, abs=1e-12)
        assert sheet.decay.loc[1, "dates"] == sheet.headline["dates"]
        assert (sheet.decay["dates"].diff().dropna() <= 0).all()  # fewer pairs at larger h


def test_the_headline_is_the_run_s_metrics_json(real_run):
    recorded = json.loads((real_run / "metrics.json").read_text())["splits"]
    for split in ("train", "test"):
        sheet = tear_sheet(real_run, split)
        for key in ("ic", "icir", "rank_ic", "rank_icir", "annual_return", "sharpe", "net_annual_return",
                    "net_sharpe", "max_drawdown", "turnover", "ic_t"):
            assert sheet.headline[key] == pytest.approx(recorded[split][key], rel=1e-9, abs=1e-12), (split, key)
        assert sheet.headline["dates"] == recorded[split]["dates"]


def test_a_daily_csv_that_disagrees_is_said(tmp_path, hand_made):
    run = tmp_path / "run"
    shutil.copytree(hand_made, run)
    daily = pd.read_csv(run / "daily.csv")
    daily.loc[daily.index[-1], "ic"] += 0.1
    daily.to_csv(run / "daily.csv", index=False)
    sheet = tear_sheet(run, "test")
    assert any("daily.csv differs" in n and "on 1 of 40 dates (ic)" in n for n in sheet.notes)


# ---- the command ----------------------------------------------------------------------------------------

def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_the_command_writes_a_png_and_an_html_page(real_run, tmp_path, capsys):
    png, page = tmp_path / "sheet.png", tmp_path / "out" / "report.html"
    code, out, err = run_cli(capsys, "report", str(real_run), "--to", str(png))
    assert code == 0, err
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 50_000
    assert f"wrote {png}" in out and "test split" in out
    code, out, err = run_cli(capsys, "report", str(real_run), "--to", str(page), "--split", "valid")
    assert code == 0, err
    text = page.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and "data:image/png;base64," in text
    assert "http://" not in text and "https://" not in text and "<script" not in text  # self-contained
    figures = json.loads((real_run / "metrics.json").read_text())["splits"]["valid"]
    for key, pattern in (("ic", "{:.4f}"), ("icir", "{:.3f}"), ("rank_ic", "{:.4f}"), ("rank_icir", "{:.3f}"),
                         ("annual_return", "{:.2%}"), ("sharpe", "{:.2f}"), ("max_drawdown", "{:.2%}"),
                         ("net_annual_return", "{:.2%}"), ("turnover", "{:.2f}")):
        assert f"<td>{pattern.format(figures[key])}</td>" in text, key
    few = " !" if figures["few_dates"] else ""  # marked as in studio compare's tables, and said in a note
    assert f"<td>{figures['dates']}{few}</td>" in text
    assert not few or "fewer than 20, the figures mean little" in text
    assert "valid split" in text and "RankIC decay" in text and "Mean IC by month" in text
    # the base64 figure is the PNG of the same split
    import base64

    embedded = base64.b64decode(text.split("data:image/png;base64,")[1].split('"')[0])
    assert embedded[:8] == b"\x89PNG\r\n\x1a\n"
    # written atomically: no temporary file is left, and a second report replaces the first
    assert [p.name for p in page.parent.iterdir()] == ["report.html"]
    assert run_cli(capsys, "report", str(real_run), "--to", str(page))[0] == 0
    assert "test split" in page.read_text(encoding="utf-8")


def test_text_from_files_is_escaped(tmp_path, capsys):
    frame = random_frame(seed=1, valid_dates=0, test_dates=25)
    frame["split"] = "<i>oos&"
    run = write_run(tmp_path / 'run<b>&"$x$', frame)
    page = tmp_path / "page.html"
    code, _out, err = run_cli(capsys, "report", str(run), "--to", str(page), "--split", "<i>oos&")
    assert code == 0, err
    text = page.read_text(encoding="utf-8")
    assert "<b>" not in text and "<i>" not in text
    assert "run&lt;b&gt;&amp;&quot;$x$" in text and "&lt;i&gt;oos&amp; split" in text
    assert run_cli(capsys, "report", str(run), "--to", str(tmp_path / "x.png"), "--split", "<i>oos&")[0] == 0


def broken(tmp_path: Path, source: Path, name: str, content: bytes | None) -> Path:
    run = tmp_path / "run"
    shutil.copytree(source, run)
    if content is None:
        (run / name).unlink()
    else:
        (run / name).write_bytes(content)
    return run


@pytest.mark.parametrize("name, content, expected", [
    ("predictions.parquet", None, "predictions.parquet: no such file"),
    ("predictions.parquet", b"not parquet at all", "predictions.parquet: cannot read it as Parquet"),
    ("daily.csv", None, "daily.csv: no such file"),
    ("daily.csv", b"date,split\n2021-01-04,test\n", "daily.csv: no column ic, rank_ic"),
    ("config.json", b"{not json", "config.json: not JSON"),
    ("config.json", None, "config.json: no such file"),
])
def test_unusable_files_are_one_line_naming_the_file(tmp_path, hand_made, capsys, name, content, expected):
    run = broken(tmp_path, hand_made, name, content)
    out_file = tmp_path / "r.html"
    code, _out, err = run_cli(capsys, "report", str(run), "--to", str(out_file))
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert expected in err and str(run / name) in err
    assert not out_file.exists()


def test_unusable_runs_splits_and_options_are_one_line(tmp_path, hand_made, capsys):
    cases = [
        (["report", str(tmp_path / "nowhere"), "--to", "r.html"], f"{tmp_path / 'nowhere'}: no such run directory"),
        (["report", str(hand_made), "--to", str(tmp_path / "r.html"), "--split", "holdout"],
         "predictions.parquet: no split 'holdout' (it has test, valid)"),
        (["report", str(hand_made), "--to", str(tmp_path / "r.pdf")], "expects a .html or .png file"),
        (["report", str(hand_made)], "the following arguments are required: --to"),
        (["report", str(hand_made / "config.json"), "--to", "r.png"], "not a run directory (a file)"),
    ]
    one_date = random_frame(valid_dates=10, test_dates=1)
    cases.append((["report", str(write_run(tmp_path / "short", one_date)), "--to", str(tmp_path / "r.png")],
                  "predictions.parquet: the test split has 1 date; a tear sheet needs at least 2"))
    for argv, expected in cases:
        code, _out, err = run_cli(capsys, *argv)
        assert code == 2, argv
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
        assert expected in err, err
    assert not any(tmp_path.glob("r.*"))


def test_the_figure_is_drawn_without_a_display_or_qt(real_run):
    from studio.train.report import figure

    fig = figure(tear_sheet(real_run, "test"))
    titles = [ax.get_title(loc="left") for ax in fig.axes if ax.get_title(loc="left")]
    # 7 and 8: the model against the factor baselines of the run's baselines.json (issue 28)
    assert (real_run / "baselines.json").is_file()
    assert [t.split(".")[0] for t in titles] == ["1", "2", "3", "4", "5", "6", "7", "8"]
    plots = [ax for ax in fig.axes if ax.get_title(loc="left") and not ax.get_title(loc="left").startswith("8.")]
    assert all(ax.get_ylabel() for ax in plots)  # 8. is the baselines' table
    assert math.isclose(fig.get_size_inches()[0], 15)


def test_the_report_button_writes_the_selected_run_s_sheet_and_shows_it(real_run, tmp_path, qtbot, monkeypatch):
    from PySide6.QtGui import QDesktopServices
    from PySide6.QtWidgets import QFileDialog, QMessageBox

    from studio.gui.runs import RunsWidget

    folder = tmp_path / "runs"
    shutil.copytree(real_run, folder / real_run.name)
    widget = RunsWidget(folder)
    qtbot.addWidget(widget)
    widget.refresh()
    told: list[str] = []
    monkeypatch.setattr(QMessageBox, "information", lambda *args: told.append(args[2]))
    assert widget.report_selected() is None and "Select one run" in told[0]  # nothing selected
    widget.table.selectRow(0)
    asked: list[str] = []

    def save_as(parent, title, default, filters):
        asked.append(default)
        return str(tmp_path / "sheet.html"), filters

    opened: list[str] = []
    monkeypatch.setattr(QFileDialog, "getSaveFileName", save_as)
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened.append(url.toLocalFile()))
    dialog = widget.report_selected()
    written = tmp_path / "sheet.html"
    assert asked == [str(folder / real_run.name / "report.html")]
    # shown in the studio, with where it was written; a browser only when asked (there may be none)
    assert dialog.written == written and str(written) in dialog.path_label.text() and opened == []
    dialog.open_file_button.click()
    assert opened == [str(written)]
    dialog.close()
    page = written.read_text(encoding="utf-8")
    test = json.loads((real_run / "metrics.json").read_text())["splits"]["test"]
    assert page.startswith("<!DOCTYPE html>") and f"{test['ic']:.4f}" in page
    (folder / real_run.name / "predictions.parquet").unlink()  # a run the sheet cannot be made of
    warned: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *args: warned.append(args[2]))
    widget.table.selectRow(0)
    assert widget.report_selected() is None and "predictions.parquet" in warned[0]
