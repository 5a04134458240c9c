"""studio export --run: exports that carry the run's preprocessing. Raw bars of a test date through the
.py export's score() (in a process that imports only torch and numpy), through a .pt2 that takes raw bars,
and through an ONNX program fed from its preprocess.json alone, give the run's predictions.parquet."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from studio.cli import main
from studio.core.graph_file import load_graph
from studio.train.config import SourceSpec
from studio.train.sources import load_source
from tests.conftest import ROOT

GRAPH = ROOT / "graphs" / "default.json"
#: the model scored predictions.parquet a few dates per batch (dates_per_batch); the same window scored
#: alone goes through matrix products of another shape, whose sums run in another order: the scores move
#: in their last float32 bits (seen: 1.5e-8). Scored in the run's batches they are equal bit for bit.
BATCH_SHAPE_TOLERANCE = 1e-6


def _train(folder: Path, normalize: str) -> Path:
    code = main(["train", str(GRAPH), "--synthetic", "stocks=30", "--synthetic", "days=60", "--epochs", "1",
                 "--threads", "1", "--normalize", normalize, "--out", str(folder), "--quiet"])
    assert code == 0
    (run,) = folder.iterdir()
    return run


@pytest.fixture(scope="module")
def robust_run(tmp_path_factory) -> Path:
    return _train(tmp_path_factory.mktemp("robust"), "robust")


def _panel_and_test_dates(run: Path):
    """The run's bars as its source makes them again, and its test predictions by date."""
    spec = json.loads((run / "preprocess.json").read_text())
    panel = load_source(SourceSpec.from_json(spec["source"]), load_graph(run / "graph.json").input).panel
    predictions = pd.read_parquet(run / "predictions.parquet")
    test = predictions[predictions["split"] == "test"]
    dates = sorted(test["date"].unique())
    index = [int(np.flatnonzero(panel.dates == np.datetime64(pd.Timestamp(d).date()))[0]) for d in dates]
    return spec, panel, test, dates, index


def _raw_bars(panel, spec: dict, day: int, days: int) -> np.ndarray:
    """(S, days x P, fields) raw bars of the ``days`` days ending with ``day``, in the order of the spec's fields."""
    per_day = spec["bars_per_day"]
    columns = [panel.features.index(name) for name in spec["fields"]]
    return np.ascontiguousarray(panel.values[:, (day - days + 1) * per_day:(day + 1) * per_day][:, :, columns])


def _compare(scores: np.ndarray, symbols: list[str], want: pd.DataFrame, tolerance: float) -> float:
    got = pd.Series(scores.astype(np.float64), index=symbols).dropna()
    expected = want.set_index("symbol")["score"]
    assert sorted(got.index) == sorted(expected.index)  # the same stocks are samples
    gap = float(np.abs(got[expected.index].to_numpy() - expected.to_numpy()).max())
    assert gap <= tolerance, gap
    return gap


_SCORING = textwrap.dedent("""
    import importlib.util, json, sys
    import numpy as np
    import torch

    path, data, out = sys.argv[1:4]
    spec = importlib.util.spec_from_file_location("exported", path)
    exported = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(exported)
    arrays = np.load(data)
    model = exported.load_model()
    # each date alone, as a user scores a new day
    alone = np.stack([exported.score(bars, traded, model=model)
                      for bars, traded in zip(arrays["bars"], arrays["traded"])])
    # the same windows scored in the run's batches of dates
    xs, masks = zip(*(exported.preprocess(torch.from_numpy(bars), traded)
                      for bars, traded in zip(arrays["bars"], arrays["traded"])))
    step = int(arrays["dates_per_batch"])
    batched = []
    with torch.no_grad():
        for i in range(0, len(xs), step):
            x, mask = torch.from_numpy(np.stack(xs[i:i + step])), torch.from_numpy(np.stack(masks[i:i + step]))
            scores = model(x, mask).float()
            batched.append(torch.where(mask, scores, torch.full_like(scores, float("nan"))).double().numpy())
    np.savez(out, alone=alone, batched=np.concatenate(batched))
    print(json.dumps(sorted(name for name in sys.modules if name.split(".")[0] in ("studio", "pandas", "scipy"))))
""")


def test_score_of_the_py_export_on_raw_bars_equals_the_runs_predictions(robust_run, tmp_path, capsys):
    out = tmp_path / "model.py"
    assert main(["export", str(GRAPH), "--to", str(out), "--weights", str(robust_run / "model.pt"),
                 "--run", str(robust_run)]) == 0
    said = capsys.readouterr().out
    assert "preprocess(bars) and score(bars) take raw bars" in said and "needs numpy" in said
    source = out.read_text()
    assert "needs torch and numpy" in source.splitlines()[0]
    spec, panel, test, dates, index = _panel_and_test_dates(robust_run)
    history = spec["days"] + spec["volume_days"]
    np.savez(tmp_path / "bars.npz", bars=np.stack([_raw_bars(panel, spec, d, history) for d in index]),
             traded=np.stack([panel.traded[:, d] for d in index]),
             dates_per_batch=json.loads((robust_run / "config.json").read_text())["training"]["dates_per_batch"])
    script = tmp_path / "score.py"
    script.write_text(_SCORING)
    done = subprocess.run([sys.executable, str(script), str(out), str(tmp_path / "bars.npz"),
                           str(tmp_path / "scores.npz")], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == []  # the export needed neither the studio nor pandas
    scores = np.load(tmp_path / "scores.npz")
    for row, date in enumerate(dates):
        want = test[test["date"] == date]
        _compare(scores["alone"][row], panel.symbols, want, BATCH_SHAPE_TOLERANCE)
        assert _compare(scores["batched"][row], panel.symbols, want, 0.0) == 0.0  # bit for bit


def test_a_pt2_export_with_a_robust_run_takes_raw_bars(robust_run, tmp_path, capsys):
    import torch

    out = tmp_path / "model.pt2"
    assert main(["export", str(GRAPH), "--to", str(out), "--run", str(robust_run)]) == 0  # weights: the run's
    said = capsys.readouterr().out
    assert "preprocessing is inside it" in said and not (tmp_path / "model.preprocess.json").exists()
    program = torch.export.load(str(out)).module()
    spec, panel, test, dates, index = _panel_and_test_dates(robust_run)
    history = spec["days"] + spec["volume_days"]
    for date, day in zip(dates, index, strict=True):
        with torch.no_grad():
            scores = program(torch.from_numpy(_raw_bars(panel, spec, day, history)),
                             torch.from_numpy(panel.traded[:, day].copy())).numpy()
        # besides the batch shape (above), the day totals of volume are float64 sums in torch's order
        _compare(scores, panel.symbols, test[test["date"] == date], BATCH_SHAPE_TOLERANCE)


def _rebuild_from_description(description: dict, bars: np.ndarray, traded: np.ndarray):
    """The program's (x, mask) from raw bars, written from the steps of preprocess.json alone (no studio
    code): the per-bar features, the window and mask, the cross-section rank (pandas' average rank)."""
    per_day, days = description["bars_per_day"], description["days"]
    fields, volume_days = description["fields"], description["volume_days"]
    stocks, total_days = bars.shape[0], bars.shape[1] // per_day
    by_day = bars.astype(np.float64).reshape(stocks, total_days, per_day, len(fields))
    close = by_day[:, :, :, fields.index("close")]
    prev_close = np.concatenate([np.full((stocks, 1), np.nan), close[:, :-1, -1]], axis=1)
    columns = []
    for name in description["features"]:
        raw = by_day[:, :, :, fields.index(name)]
        if name in ("open", "high", "low", "close"):
            value = raw / prev_close[:, :, None] - 1
        else:
            totals = raw.sum(axis=2)
            reference = np.full((stocks, total_days), np.nan)
            for day in range(total_days):
                before = totals[:, max(0, day - volume_days):day][:, ::-1]  # nearest day first
                finite = np.isfinite(before)
                added = np.zeros(stocks)
                for k in range(before.shape[1]):
                    added = added + np.where(finite[:, k], before[:, k], 0.0)
                with np.errstate(invalid="ignore", divide="ignore"):
                    reference[:, day] = np.where(finite.sum(axis=1) > 0, added / finite.sum(axis=1), np.nan)
            with np.errstate(invalid="ignore", divide="ignore"):
                value = np.log(1 + raw / (reference / per_day)[:, :, None])
        value[~np.isfinite(value)] = np.nan
        columns.append(value[:, -days:].reshape(stocks, days * per_day).astype(np.float32))
    x = np.stack(columns, axis=-1)
    mask = np.isfinite(x).all(axis=(1, 2)) & traded
    assert description["normalize"] == "cs_rank"
    ranked = np.empty_like(x)
    for bar in range(x.shape[1]):
        table = pd.DataFrame(x[:, bar, :].astype(np.float64))  # stocks x features
        ranked[:, bar, :] = ((table.rank(method="average") / table.notna().sum() - 0.5) * 3.46).to_numpy()
    ranked[~mask] = 0.0
    return ranked, mask


def test_an_onnx_export_of_a_cs_rank_run_writes_the_steps_that_rebuild_its_input(tmp_path, capsys):
    import onnxruntime

    run = _train(tmp_path / "runs", "cs_rank")
    out = tmp_path / "model.onnx"
    assert main(["export", str(GRAPH), "--to", str(out), "--run", str(run)]) == 0
    said = capsys.readouterr().out
    beside = tmp_path / "model.preprocess.json"
    assert f"wrote {beside}" in said and "not put in the program" in said
    description = json.loads(beside.read_text())
    assert description["normalize"] == "cs_rank" and any("cs_rank" in step for step in description["steps"])
    spec, panel, test, dates, index = _panel_and_test_dates(run)
    session = onnxruntime.InferenceSession(str(out))
    for date, day in zip(dates, index, strict=True):
        bars = _raw_bars(panel, spec, day, description["history_days"])
        x, mask = _rebuild_from_description(description, bars, panel.traded[:, day])
        (scores,) = session.run(None, {"x": x[None], "mask": mask[None]})
        # onnxruntime's kernels (and the batch shape, above) differ from torch's in the last bits
        _compare(np.where(mask, scores[0], np.nan), panel.symbols, test[test["date"] == date],
                 BATCH_SHAPE_TOLERANCE)


def test_the_run_spec_is_a_literal_in_the_export_whatever_its_text(robust_run, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    for name in ("graph.json", "model.pt", "config.json"):
        (run / name).write_bytes((robust_run / name).read_bytes())
    spec = json.loads((robust_run / "preprocess.json").read_text())
    spec["source"]["note"] = '"""\nimport os; os.system("echo owned")  # \'\'\' \x00 \u2028'
    (run / "preprocess.json").write_text(json.dumps(spec))
    out = tmp_path / "model.py"
    assert main(["export", str(GRAPH), "--to", str(out), "--run", str(run)]) == 0
    tree = ast.parse(out.read_text())
    assigned = {node.targets[0].id: node.value for node in tree.body
                if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)}
    assert ast.literal_eval(assigned["SPEC"]) == spec  # the text stays data
    assert ast.literal_eval(assigned["FIELDS"]) == tuple(spec["fields"])
    assert "import os" not in [line.strip() for line in out.read_text().splitlines()]


def _edited_run(robust_run: Path, tmp_path: Path, edit) -> Path:
    run = tmp_path / "edited"
    run.mkdir()
    for name in ("graph.json", "model.pt", "config.json", "preprocess.json"):
        (run / name).write_bytes((robust_run / name).read_bytes())
    edit(run)
    return run


def _set_spec_field(name, value):
    def edit(run: Path) -> None:
        spec = json.loads((run / "preprocess.json").read_text())
        spec[name] = value
        (run / "preprocess.json").write_text(json.dumps(spec))
    return edit


def _as_walk_forward(run: Path) -> None:
    """A walk-forward run's top folder: folds, no preprocess.json of its own."""
    (run / "preprocess.json").unlink()
    for k in (2, 10):
        (run / "folds" / f"fold-{k}").mkdir(parents=True)


def _retrain_graph(run: Path) -> None:
    graph = json.loads((run / "graph.json").read_text())
    graph["nodes"]["conv_1"]["params"]["kernel_size"] = 3
    (run / "graph.json").write_text(json.dumps(graph))


@pytest.mark.parametrize(("edit", "message"), [
    (_retrain_graph, "the run trained another model than"),
    (lambda run: (run / "preprocess.json").unlink(), "preprocess.json: missing"),
    (lambda run: (run / "preprocess.json").write_text("{not json"), "preprocess.json: cannot be read"),
    (_set_spec_field("mad", [1.0]), "field 'mad' expects 3 finite numbers"),
    (_set_spec_field("days", 5), "preprocess.json: days is 5, the graph's input has 10"),
    (lambda run: (run / "model.pt").write_bytes(b"not a state dict"), "model.pt"),
    (_as_walk_forward,
     "a walk-forward run has one model per fold: export a fold's graph.json with --run "),
    (_as_walk_forward,
     "folds/fold-10 (the last fold is the newest model)"),
])
def test_a_run_that_does_not_fit_the_export_is_refused_in_one_line(robust_run, tmp_path, capsys, edit, message):
    run = _edited_run(robust_run, tmp_path, edit)
    out = tmp_path / "model.py"
    assert main(["export", str(GRAPH), "--to", str(out), "--run", str(run)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and str(run) in err and "\n" not in err and "Traceback" not in err
    assert not out.exists()


def test_a_graph_renamed_but_computing_the_same_model_exports_with_the_run(robust_run, tmp_path):
    graph = json.loads(GRAPH.read_text())
    graph["name"], graph["description"] = "tomorrow", "the same model under another name"
    graph["nodes"]["conv_1"]["pos"] = [1, 2]
    renamed = tmp_path / "renamed.json"
    renamed.write_text(json.dumps(graph))
    assert main(["export", str(renamed), "--to", str(tmp_path / "model.py"), "--run", str(robust_run)]) == 0


def _raw_market(stocks: int, days: int, per_day: int, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Raw close, volume, turnover bars with the faults real data has: stocks listed late, a missing
    bar, a stock suspended on the decision day (NaN bars, not traded)."""
    rng = np.random.default_rng(seed)
    close = 20 * np.exp(np.cumsum(rng.normal(0, 0.002, (stocks, days * per_day)), axis=1))
    volume = rng.lognormal(8, 1, (stocks, days * per_day))
    bars = np.stack([close, volume, close * volume], axis=-1).astype(np.float32)
    bars[0, :15 * per_day] = np.nan  # listed on day 15: a shorter volume reference in the window
    bars[3, :25 * per_day] = np.nan  # listed inside the window
    bars[1, 17 * per_day + 3] = np.nan  # a bar missing before the window: its day total is left out
    bars[4, 22 * per_day + 3] = np.nan  # a bar missing inside the window
    bars[2, -per_day:] = np.nan  # suspended on the decision day
    traded = np.isfinite(bars[:, -per_day:]).all(axis=(1, 2))
    return bars, traded


@pytest.mark.parametrize("normalize", ["robust", "cs_zscore", "none"])
def test_the_program_computes_the_preprocessing_of_studio_data_preprocess(normalize):
    """RawBarsModel (what .pt2 and ONNX exports trace) against preprocess() and the model, eagerly."""
    import torch

    from studio.data.preprocess import preprocess
    from studio.torchgraph.builder import build
    from studio.torchgraph.export_preprocess import RawBarsModel, RunPreprocessing

    graph = load_graph(GRAPH)
    spec = {"format": 1, "features": ["close", "volume", "turnover"], "days": 10, "bars_per_day": 24,
            "volume_days": 20, "normalize": normalize, "median": [0.001, 0.4, 0.5] if normalize == "robust" else None,
            "mad": [0.01, 0.3, 0.35] if normalize == "robust" else None, "lag": 1, "horizon": 1,
            "fields": ["close", "volume", "turnover"], "source": {"kind": "synthetic"}}
    module = build(graph, seed=0).module.eval()
    program = RawBarsModel(module, RunPreprocessing(Path("run"), spec)).eval()
    bars, traded = _raw_market(12, 30, 24)
    x, mask = preprocess(bars, spec["fields"], spec, traded)
    assert mask.tolist() == [True, True, False, False, False] + [True] * 7
    with torch.no_grad():
        want = module(torch.from_numpy(x)[None], torch.from_numpy(mask)[None])[0].float()
        want = torch.where(torch.from_numpy(mask), want, torch.full_like(want, float("nan"))).numpy()
        got = program(torch.from_numpy(bars), torch.from_numpy(traded)).numpy()
    assert np.isnan(got[~mask]).all()
    # the day totals of volume (and cs_zscore's sums over stocks) are float64 sums in torch's order
    np.testing.assert_allclose(got[mask], want[mask], rtol=0, atol=1e-6)
