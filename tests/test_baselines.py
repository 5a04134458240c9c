"""Factor baselines (issue 28): every factor of studio.data.factors recomputed with pandas from the bars, with no
look-ahead; each baseline's IC on a run's own dates against a pandas correlation; the incremental IC against a
per-date OLS done with numpy.linalg.lstsq; close-only data leaving the volume and range factors out; a finished run
writing baselines.json and `studio baselines` writing it for an older run."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from studio.cli import main
from studio.data.factors import FACTORS, available, by_name, last_hour_bars
from studio.data.importer import ImportConfig
from studio.data.labels import panel_labels
from studio.data.load import load_bars
from studio.data.synthetic import FEATURES, SyntheticConfig, generate
from studio.train.baselines import judge, residual_scores
from tests.conftest import GRAPHS, SHARED_DATA

US = SHARED_DATA / "us_stocks_5min"
MIN_STOCKS = 10


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("STUDIO_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def panel():
    """Bars with every field, suspensions and listings (NaN before a listing, filled closes while suspended)."""
    return generate(SyntheticConfig(stocks=30, days=60, bars_per_day=8, sectors=3, seed=5, features=FEATURES,
                                    suspension_rate=0.03)).panel


def long_bars(panel) -> pd.DataFrame:
    """The panel's bars of the days each symbol traded, one row per bar: what an importer read."""
    s, d, p = panel.n_symbols, panel.n_days, panel.bars_per_day
    columns = {f: panel.values[:, :, i].astype(np.float64).ravel() for i, f in enumerate(panel.features)}
    frame = pd.DataFrame({"symbol": np.repeat(panel.symbols, d * p),
                          "date": np.tile(np.repeat(np.asarray(panel.dates), p), s),
                          "bar": np.tile(np.arange(p), s * d), **columns})
    traded = np.repeat(panel.traded.ravel(), p)
    return frame[traded].reset_index(drop=True)


def pandas_factors(panel) -> dict[str, pd.DataFrame]:
    """Each factor recomputed from the bars with groupby / shift / rolling: (date x symbol) frames."""
    bars = long_bars(panel)
    day = bars.groupby(["date", "symbol"])
    grid = pd.MultiIndex.from_product([panel.dates, panel.symbols], names=["date", "symbol"])

    def wide(series: pd.Series) -> pd.DataFrame:  # every date and symbol; NaN where the symbol did not trade
        return series.reindex(grid).unstack("symbol")[list(panel.symbols)]

    close = wide(day["close"].last())
    k = last_hour_bars(panel.bars_per_day)
    out = {"reversal_1d": -(close / close.shift(1) - 1),
           "momentum_5d": close / close.shift(5) - 1,
           "momentum_20d": close / close.shift(20) - 1,
           "intraday_volatility": wide(day["close"].apply(lambda c: c.pct_change().std())),
           "last_hour_return": wide(day["close"].apply(lambda c: c.iloc[-1] / c.iloc[-1 - k] - 1)),
           "overnight_gap": (wide(day["open"].first()) if "open" in bars else wide(day["close"].first()))
           / close.shift(1) - 1}
    if "volume" in bars:
        volume = wide(day["volume"].sum())
        out["volume_surprise"] = volume / volume.shift(1).rolling(20, min_periods=10).mean()
    if "turnover" in bars:
        out["turnover"] = np.log(wide(day["turnover"].sum()))
    if "high" in bars and "low" in bars:
        out["intraday_range"] = (wide(day["high"].max()) - wide(day["low"].min())) / close
    return {name: frame.replace([np.inf, -np.inf], np.nan) for name, frame in out.items()}


def check_factors_match_pandas(panel) -> None:
    expected = pandas_factors(panel)
    factors, _ = available(panel)
    assert {f.name for f in factors} == set(expected)
    for factor in factors:
        got = factor.compute(panel)
        assert got.shape == (panel.n_days, panel.n_symbols)
        want = expected[factor.name].to_numpy(dtype=np.float64)
        assert np.isfinite(got).sum() > 0.25 * want.size, factor.name  # most dates and stocks have a value
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12, equal_nan=True, err_msg=factor.name)


def test_every_factor_matches_a_pandas_recomputation_from_the_bars(panel):
    assert {f.name for f in available(panel)[0]} == {f.name for f in FACTORS}
    assert not panel.traded.all()  # suspensions: a day that did not trade gives NaN, never a filled value
    check_factors_match_pandas(panel)


@pytest.mark.usefixtures("shared_data")
def test_every_factor_matches_pandas_on_real_us_bars(tmp_path):
    folder = tmp_path / "us"
    folder.mkdir()
    for path in sorted(US.glob("*_5min.csv.gz"))[:12]:
        (folder / path.name).symlink_to(path)
    real = load_bars(folder, ImportConfig())
    assert real.bars_per_day == 78 and "open" in real.features and "high" in real.features
    check_factors_match_pandas(real)


def test_no_factor_reads_bars_after_the_close_of_its_date(panel):
    d = 40
    changed = panel.values.copy()
    rng = np.random.default_rng(0)
    after = slice((d + 1) * panel.bars_per_day, None)
    changed[:, after] *= rng.uniform(0.5, 1.5, changed[:, after].shape).astype(np.float32)
    later = type(panel)(panel.symbols, panel.dates, panel.features, panel.bars_per_day, changed,
                        panel.traded.copy())
    later.traded[:, d + 1:] = rng.random(later.traded[:, d + 1:].shape) > 0.3
    for factor in FACTORS:
        before, after_change = factor.compute(panel), factor.compute(later)
        np.testing.assert_array_equal(before[:d + 1], after_change[:d + 1], err_msg=factor.name)
        assert not np.array_equal(before[d + 1:], after_change[d + 1:], equal_nan=True), factor.name


def run_frame(panel, seed: int = 1) -> pd.DataFrame:
    """predictions.parquet of a made-up run: train dates 25..44, test dates 46..57, a score for most stocks
    (a noisy mix of two factors, so the baselines explain part of it)."""
    rng = np.random.default_rng(seed)
    labels = panel_labels(panel)
    mix = np.nan_to_num(by_name("reversal_1d").compute(panel)) + np.nan_to_num(by_name("momentum_5d").compute(panel))
    rows = []
    for split, dates in (("train", range(25, 45)), ("test", range(46, 58))):
        for d in dates:
            for s, symbol in enumerate(panel.symbols):
                if panel.traded[s, d] and rng.random() > 0.1:
                    rows.append((panel.dates[d], symbol, split, mix[d, s] + rng.normal(0, 0.02), labels[d, s]))
    frame = pd.DataFrame(rows, columns=["date", "symbol", "split", "score", "label"])
    frame["date"] = pd.to_datetime(frame["date"])
    return frame


def test_each_baseline_ic_is_the_pandas_correlation_on_the_runs_own_stocks(panel):
    frame = run_frame(panel)
    result = judge(panel, frame, MIN_STOCKS)
    expected = pandas_factors(panel)
    assert result["split_dates"] == {"test": 12, "train": 20}
    for baseline in result["baselines"]:
        values = expected[baseline["name"]].stack(future_stack=True).rename("factor")
        joined = frame.join(values, on=["date", "symbol"])
        for split in ("test", "train"):
            part = joined[joined["split"] == split].dropna(subset=["factor", "label"])
            by_date = part.groupby("date")
            usable = by_date.size() >= MIN_STOCKS
            ic = by_date.apply(lambda g: g["factor"].corr(g["label"]))[usable].dropna()
            rank_ic = by_date.apply(lambda g: g["factor"].corr(g["label"], method="spearman"))[usable].dropna()
            got = baseline[split]
            assert got["dates"] == len(ic) > 0
            assert got["ic"] == pytest.approx(ic.mean(), abs=1e-12), (baseline["name"], split)
            assert got["rank_ic"] == pytest.approx(rank_ic.mean(), abs=1e-12)
            assert got["ic_t"] == pytest.approx(ic.mean() / ic.std(ddof=1) * math.sqrt(len(ic)), rel=1e-9)
        test = joined[joined["split"] == "test"].dropna(subset=["factor", "score"]).groupby("date")
        corr = test.apply(lambda g: g["score"].corr(g["factor"]))[test.size() >= MIN_STOCKS]
        assert baseline["corr"] == pytest.approx(corr.mean(), abs=1e-12)
    model = frame[frame["split"] == "test"].dropna().groupby("date").apply(lambda g: g["score"].corr(g["label"]))
    assert result["model"]["test"]["ic"] == pytest.approx(model.mean(), abs=1e-12)
    best = max(result["baselines"], key=lambda b: b["test"]["ic"])
    assert result["best"] == {"name": best["name"], "ic": best["test"]["ic"]}


def test_the_incremental_ic_is_the_ic_of_a_per_date_lstsq_residual(panel):
    frame = run_frame(panel)
    result = judge(panel, frame, MIN_STOCKS)
    names = result["incremental"]["on"]
    assert names == [b["name"] for b in result["baselines"]] and len(names) == len(FACTORS) - 1
    # this market opens where it closed: a gap of 0 for every stock ranks nothing, and is said so
    assert result["left_out"] == [{"name": "overnight_gap",
                                   "reason": "the same value for every stock on every test date (no IC)"}]
    values = {name: by_name(name).compute(panel) for name in names}
    test = frame[frame["split"] == "test"]
    index = {s: i for i, s in enumerate(panel.symbols)}
    ics = []
    for date, part in test.groupby("date"):
        d = int(np.flatnonzero(panel.dates == np.datetime64(date.date()))[0])
        s = part["symbol"].map(index).to_numpy()
        x = np.column_stack([np.ones(len(s))] + [values[n][d, s] for n in names])
        y, label = part["score"].to_numpy(), part["label"].to_numpy()
        ok = np.isfinite(x).all(axis=1) & np.isfinite(y)
        if ok.sum() < MIN_STOCKS:
            continue
        beta = np.linalg.lstsq(x[ok], y[ok], rcond=None)[0]
        residual = y[ok] - x[ok] @ beta
        known = np.isfinite(label[ok])
        if known.sum() >= MIN_STOCKS:
            ics.append(np.corrcoef(residual[known], label[ok][known])[0, 1])
    inc = result["incremental"]
    assert inc["dates"] == len(ics) == 12
    assert inc["ic"] == pytest.approx(np.mean(ics), abs=1e-10)
    assert inc["ic_t"] == pytest.approx(np.mean(ics) / np.std(ics, ddof=1) * math.sqrt(len(ics)), rel=1e-8)
    assert inc["singular_dates"] == 0
    # the score is mostly two baselines: what is left of it predicts little, and the verdict says so
    assert abs(inc["ic"]) < abs(result["model"]["test"]["ic"])


def test_a_date_whose_baselines_are_collinear_is_left_out_and_counted():
    rng = np.random.default_rng(3)
    scores = rng.normal(size=(4, 30))
    a = rng.normal(size=(4, 30))
    b = rng.normal(size=(4, 30))
    b[2] = 2 * a[2] + 1  # the same baseline twice on date 2
    residual, dropped = residual_scores(scores, [a, b], MIN_STOCKS)
    assert dropped == {"singular": 1, "few": 0}
    assert np.isnan(residual[2]).all() and np.isfinite(residual[[0, 1, 3]]).all()
    x = np.column_stack([np.ones(30), a[0], b[0]])
    expected = scores[0] - x @ np.linalg.lstsq(x, scores[0], rcond=None)[0]
    np.testing.assert_allclose(residual[0], expected, atol=1e-12)


def test_close_only_data_leaves_the_volume_turnover_and_range_factors_out_with_notes():
    close_only = generate(SyntheticConfig(stocks=20, days=30, bars_per_day=8, seed=2, features=("close",))).panel
    factors, left_out = available(close_only)
    assert dict(left_out) == {"volume_surprise": "the data has no volume",
                              "turnover": "the data has no turnover",
                              "intraday_range": "the data has no high or low"}
    assert {f.name for f in factors} == {"reversal_1d", "momentum_5d", "momentum_20d", "intraday_volatility",
                                         "last_hour_return", "overnight_gap"}
    check_factors_match_pandas(close_only)  # the gap from the first bar's close where there is no open


def train_small(out_dir) -> None:
    from studio.core.graph_file import load_graph
    from studio.train.config import SourceSpec, TrainConfig
    from studio.train.engine import train

    source = SourceSpec(synthetic={"stocks": 30, "days": 80, "features": FEATURES})
    done = train(load_graph(GRAPHS / "default.json"), source, TrainConfig(epochs=1, patience=0, threads=1),
                 out_dir=out_dir)
    assert done["status"] == "finished", done["message"]


def test_a_finished_run_writes_baselines_json_and_studio_baselines_writes_it_for_an_older_run(tmp_path, capsys):
    train_small(tmp_path / "runs")
    (run,) = (tmp_path / "runs").iterdir()
    written = json.loads((run / "baselines.json").read_text())
    metrics = json.loads((run / "metrics.json").read_text())
    assert written["format"] == 1 and "notes" not in metrics
    assert written["model"]["test"]["ic"] == pytest.approx(metrics["splits"]["test"]["ic"], abs=1e-12)
    assert written["split_dates"]["test"] == metrics["splits"]["test"]["dates"]
    judged = {b["name"] for b in written["baselines"]} | {b["name"] for b in written["left_out"]}
    assert judged == {f.name for f in FACTORS} and len(written["baselines"]) >= 7
    assert written["verdicts"] and all(isinstance(v, str) for v in written["verdicts"])

    (run / "baselines.json").unlink()  # a run made before runs wrote it
    assert main(["baselines", str(run)]) == 0
    out = capsys.readouterr().out
    assert json.loads((run / "baselines.json").read_text()) == written
    assert "wrote baselines.json" in out and "incremental IC" in out
    lines = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert f"{written['baselines'][0]['test']['ic']:+.4f}" in lines[written["baselines"][0]["name"]]
    for verdict in written["verdicts"]:
        assert verdict in out

    assert main(["baselines", str(run), str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0] == f"studio baselines: {tmp_path / 'nowhere'}: no such run directory"
    assert len(err) == 2 and "Traceback" not in err[1]


def test_a_failure_of_the_baselines_is_a_note_and_the_run_still_finishes(tmp_path, monkeypatch):
    import studio.train.baselines as baselines

    def broken(*args, **kwargs):
        raise ValueError("no factor today")

    monkeypatch.setattr(baselines, "judge", broken)
    train_small(tmp_path / "runs")
    (run,) = (tmp_path / "runs").iterdir()
    assert not (run / "baselines.json").exists()
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["notes"] == ["baselines not computed: no factor today"]
    assert json.loads((run / "config.json").read_text())["status"] == "finished"


def test_a_full_disk_at_baselines_json_fails_the_run_in_one_line_as_at_any_other_output(tmp_path, monkeypatch,
                                                                                          capsys):
    from tests.test_disk_full import TRAIN, assert_whole, fill_the_disk_at, one_line

    hits = fill_the_disk_at(monkeypatch, "baselines.json")
    code = main(["train", str(GRAPHS / "default.json"), *TRAIN, "--out", str(tmp_path / "runs")])
    err = one_line(capsys)
    assert hits and code == 2 and err.startswith("studio: disk full: ") and err.endswith("baselines.json"), err
    (run,) = (tmp_path / "runs").iterdir()
    assert_whole(run)
    assert not (run / "baselines.json").exists()
    assert json.loads((run / "config.json").read_text())["status"] == "failed"


def test_each_walk_forward_fold_writes_its_baselines_and_the_top_folder_is_refused_in_one_line(tmp_path, capsys):
    runs = tmp_path / "runs"
    assert main(["train", str(GRAPHS / "default.json"), "--synthetic", "stocks=30", "--synthetic", "days=120",
                 "--walk-forward", "2", "--epochs", "1", "--patience", "0", "--threads", "1", "-q",
                 "--out", str(runs)]) == 0
    (top,) = runs.iterdir()
    for fold in ("fold-1", "fold-2"):
        written = json.loads((top / "folds" / fold / "baselines.json").read_text())
        metrics = json.loads((top / "folds" / fold / "metrics.json").read_text())
        assert written["model"]["test"]["ic"] == pytest.approx(metrics["splits"]["test"]["ic"], abs=1e-12)
    capsys.readouterr()
    assert main(["baselines", str(top)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0] == (f"studio baselines: {top}: a walk-forward run is judged fold by fold (studio baselines "
                      f"{top / 'folds'}/fold-*; each fold wrote its baselines.json)")
    assert err[1] == "studio: 1 of 1 runs not judged (said above)"
