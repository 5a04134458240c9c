"""Issue 28: the factor baselines where the figures are read. studio compare's "best baseline IC" and
"incremental IC (t)" columns and its words (a baseline that beats the model, an incremental IC without
evidence, overfitting, a seed group whose IC changes sign with the seed); the Runs table's same columns with
their tooltip and its Ensemble action; the tear sheet's baselines panel."""

from __future__ import annotations

import html
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from studio.cli import main
from tests.test_ensemble import GRAPHS, TRAIN


@pytest.fixture(scope="module")
def seeds(tmp_path_factory) -> list[Path]:
    """Three seeds of one tiny synthetic run (each wrote its baselines.json at its end)."""
    folder = tmp_path_factory.mktemp("baseline-views") / "runs"
    for seed in (0, 1, 2):
        assert main(["train", str(GRAPHS / "default.json"), "--seed", str(seed), "--out", str(folder), *TRAIN]) == 0
    runs = sorted(folder.iterdir())
    assert all((run / "baselines.json").is_file() for run in runs)
    return runs


def _copy(run: Path, to: Path) -> Path:
    target = to / run.name
    shutil.copytree(run, target, ignore=shutil.ignore_patterns("run.lock"))
    return target


def _edit(path: Path, change) -> dict:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))
    return data


def _a_baseline_wins(data: dict) -> None:
    """baselines.json of a weak model: momentum_5d beats it on the same dates and the incremental IC is noise."""
    data["model"]["test"].update(ic=-0.097, ic_t=-0.8)
    for b in data["baselines"]:
        b["test"]["ic"] = 0.062 if b["name"] == "momentum_5d" else 0.01
    data["incremental"].update(ic=0.004, ic_t=1.1)


def _table(out: str) -> tuple[list[str], dict[str, list[str]]]:
    lines = out.splitlines()
    header = lines[1]
    starts = [header.index(h) for h in ("best baseline IC", "incremental IC (t)", "oracle IC")]
    rows = {}
    for line in lines[3:]:
        if not line.strip() or line.startswith(("!", "-", "\n")) or ":" in line.split()[0]:
            break
        rows[line.split()[0]] = [line[starts[0]:starts[1]].strip(), line[starts[1]:starts[2]].strip()]
    return lines, rows


def test_compare_shows_the_baseline_columns_and_says_when_a_baseline_beats_the_model(seeds, tmp_path, capsys):
    weak, plain = _copy(seeds[0], tmp_path), _copy(seeds[1], tmp_path)
    edited = _edit(weak / "baselines.json", _a_baseline_wins)
    kept = json.loads((plain / "baselines.json").read_text())
    capsys.readouterr()
    assert main(["compare", str(weak), str(plain)]) == 0
    lines, rows = _table(capsys.readouterr().out)
    assert rows[weak.name] == ["0.0620", f"{0.004:.4f} (1.1)"]
    best = max(b["test"]["ic"] for b in kept["baselines"])
    assert rows[plain.name] == [f"{best:.4f}", f"{kept['incremental']['ic']:.4f} ({kept['incremental']['ic_t']:.1f})"]
    words = next(line for line in lines if line.startswith(f"{weak.name}: "))
    assert "momentum_5d beats the model (IC 0.062 vs -0.097)" in words
    assert "incremental IC t 1.1: no evidence it adds to the baselines" in words
    assert edited["model"]["test"]["ic"] == -0.097
    # the two-run diff under the table compares the baseline figures too
    assert any(line.strip().startswith("best baseline IC") for line in lines)


def test_a_run_without_baselines_json_shows_dashes_and_how_to_make_it(seeds, tmp_path, capsys):
    old = _copy(seeds[0], tmp_path)
    (old / "baselines.json").unlink()
    capsys.readouterr()
    assert main(["compare", str(old)]) == 0
    lines, rows = _table(capsys.readouterr().out)
    assert rows[old.name] == ["-", "-"]
    assert "studio baselines RUN makes it" in lines[-1]
    # studio baselines writes it, and the row reads it
    assert main(["baselines", str(old)]) == 0
    capsys.readouterr()
    assert main(["compare", str(old)]) == 0
    lines, rows = _table(capsys.readouterr().out)
    assert rows[old.name][0] != "-" and not any("studio baselines RUN" in line for line in lines)


def test_overfitting_and_a_seed_group_whose_ic_changes_sign_are_said_in_words(qtbot, seeds, tmp_path, capsys):
    copies = [_copy(run, tmp_path) for run in seeds]
    for run, ic in zip(copies, (0.08, -0.03, -0.02), strict=True):
        def change(metrics, ic=ic):
            metrics["splits"]["test"].update(ic=ic, ic_t=2.3 if ic > 0 else -0.8)
            metrics["splits"]["train"].update(ic=0.07, ic_t=4.4)
        _edit(run / "metrics.json", change)
    capsys.readouterr()
    assert main(["compare", *map(str, copies)]) == 0
    out = capsys.readouterr().out
    overfit = [line for line in out.splitlines() if "overfitting?" in line]
    # seeds 1 and 2: training IC t 4.4, test not significant; seed 0 (t 2.3) is not called overfit
    assert sorted(line.split(":")[0] for line in overfit) == sorted(run.name for run in copies[1:])
    assert "training IC t 4.4 but test IC t -0.8: overfitting?" in overfit[0]
    spread = float(np.std([0.08, -0.03, -0.02], ddof=1))
    mean = float(np.mean([0.08, -0.03, -0.02]))
    assert f"IC std over its seeds {spread:.3f} > |mean| {abs(mean):.3f}: the seed decides the sign" in out

    # the Runs table's Across seeds view says the same on the group's IC
    from studio.gui.runs import RunsWidget

    runs = RunsWidget(tmp_path)
    qtbot.addWidget(runs)
    runs.by_seed.setChecked(True)
    assert runs.table.rowCount() == 1
    assert runs.table.item(0, 2).toolTip() == (
        f"IC std over its seeds {spread:.3f} > |mean| {abs(mean):.3f}: the seed decides the sign")


def test_the_runs_table_shows_the_baseline_columns_with_every_baseline_in_the_tooltip(qtbot, seeds, tmp_path):
    from studio.gui.runs import RunsWidget

    folder = tmp_path / "runs"
    folder.mkdir()
    weak, old = _copy(seeds[0], folder), _copy(seeds[1], folder)
    data = _edit(weak / "baselines.json", _a_baseline_wins)
    (old / "baselines.json").unlink()
    runs = RunsWidget(folder)
    qtbot.addWidget(runs)
    runs.refresh()
    headers = [runs.table.horizontalHeaderItem(c).text() for c in range(runs.table.columnCount())]
    names = [runs.table.item(r, 0).text() for r in range(runs.table.rowCount())]
    best = runs.table.item(names.index(weak.name), headers.index("best base. IC"))
    incremental = runs.table.item(names.index(weak.name), headers.index("incr. IC (t)"))
    assert (best.text(), incremental.text()) == ("0.0620", "0.0040 (1.1)")
    tip = incremental.toolTip()
    assert tip == best.toolTip()
    for b in data["baselines"]:  # each baseline: test IC (t) | train IC | corr with the model
        assert (f"{b['name']}: {b['test']['ic']:.3f} ({b['test']['ic_t']:.1f}) | {b['train']['ic']:.3f} | "
                f"{b['corr']:.2f}") in tip
    for verdict in data["verdicts"]:
        assert verdict in tip
    missing = [runs.table.item(names.index(old.name), headers.index(h)) for h in ("best base. IC", "incr. IC (t)")]
    assert [item.text() for item in missing] == ["-", "-"]
    assert "studio baselines RUN makes it" in missing[0].toolTip()


def test_the_ensemble_action_of_a_seed_group_makes_an_ensemble_that_appears_in_the_table(qtbot, seeds, tmp_path):
    from studio.gui.runs import RunsWidget

    folder = tmp_path / "runs"
    folder.mkdir()
    copies = [_copy(run, folder) for run in seeds]
    runs = RunsWidget(folder)
    qtbot.addWidget(runs)
    runs.refresh()
    assert not runs.ensemble_button.isEnabled()  # a run, not a group: nothing to combine
    runs.by_seed.setChecked(True)
    assert runs.table.rowCount() == 1
    runs.table.selectRow(0)
    assert runs.ensemble_button.isEnabled()
    qtbot.mouseClick(runs.ensemble_button, qtbot_button())
    qtbot.waitUntil(lambda: runs.ensemble_task is None, timeout=60_000)
    assert runs.ensemble_error is None
    made = [p for p in folder.iterdir() if p not in copies]
    assert len(made) == 1 and json.loads((made[0] / "config.json").read_text())["kind"] == "ensemble"
    assert {m["path"] for m in json.loads((made[0] / "config.json").read_text())["ensemble"]["members"]} == {
        str(p) for p in copies}
    # the table shows the runs again, with the ensemble marked and selected
    assert not runs.by_seed.isChecked()
    names = [runs.table.item(r, 0).text() for r in range(runs.table.rowCount())]
    assert f"{made[0].name} (ensemble of 3, rank)" in names
    assert runs.selected_paths() == [made[0]]
    # an ensemble predicts (each member, combined) but has no single model to export
    assert runs.predict_button.isEnabled()
    assert not runs.export_model_button.isEnabled()
    assert "is an ensemble: it has no single model to export" in runs.export_model_button.toolTip()
    # the across-seeds view leaves it out, as studio compare's table does
    runs.by_seed.setChecked(True)
    assert runs.table.rowCount() == 1 and runs.table.item(0, 1).text() == "3"


def qtbot_button():
    from PySide6.QtCore import Qt

    return Qt.MouseButton.LeftButton


def test_the_tear_sheet_has_the_baselines_panel(seeds, tmp_path):
    import pandas as pd

    from studio.train.report import write_report

    run = _copy(seeds[2], tmp_path)
    data = json.loads((run / "baselines.json").read_text())
    sheet = write_report(run, tmp_path / "sheet.html")
    panel = sheet.baselines
    assert list(panel.table.index) == ["model", *(b["name"] for b in data["baselines"])]
    for b in data["baselines"]:
        row = panel.table.loc[b["name"]]
        assert (row["corr (model)"], row["test IC"], row["train IC"]) == pytest.approx(
            (b["corr"], b["test"]["ic"], b["train"]["ic"]), nan_ok=True)
    assert panel.verdicts[:len(data["verdicts"])] == data["verdicts"]
    # the model's curve is the tear sheet's own long-short, from its predictions: the same dates, the same sums
    assert list(panel.curves.columns) == ["model", *(b["name"] for b in data["baselines"])]
    assert panel.curves.index.equals(pd.DatetimeIndex(sheet.dates))
    assert panel.curves["model"].to_numpy() == pytest.approx(sheet.long_short["gross_cumulative"].to_numpy())
    page = (tmp_path / "sheet.html").read_text()
    assert "<h2 id='baselines'>Model vs baselines" in page
    for verdict in data["verdicts"]:
        assert html.escape(verdict) in page
    # the legs come from baselines.json (no data loaded again): one written before it kept them draws no curves
    _edit(run / "baselines.json", lambda d: d.pop("long_short"))
    sheet = write_report(run, tmp_path / "older.png")
    assert sheet.baselines.curves is None and len(sheet.baselines.table) == len(data["baselines"]) + 1
    assert any("baselines.json has no daily legs (studio baselines RUN writes them)" in n for n in sheet.notes)
    # a run without baselines.json says how to make it
    (run / "baselines.json").unlink()
    sheet = write_report(run, tmp_path / "again.html")
    assert sheet.baselines is None and any("studio baselines RUN makes it" in n for n in sheet.notes)
