"""Issue 26: the metrics, losses and optimisers are declared once (studio.metric_specs, studio.train.config)
and every table, the tear sheet's headline, run diffs, sweep objectives, the CLI flags and the GUI's
combo boxes read their lists from there; the text and order they show stay what they were."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from studio import metric_specs
from studio.metric_specs import METRICS, PLACES
from tests.test_gui_training import window  # noqa: F401  (the fixture: a real window)

ROOT = Path(__file__).resolve().parents[1]


def test_the_readers_show_what_they_showed_before_the_declaration():
    from studio.cli.train_commands import COMPARE_COLUMNS, MLFLOW_COLUMNS
    from studio.cli.train_commands import SEED_COLUMNS as CLI_SEED_COLUMNS
    from studio.gui.runs import COLUMNS, SEED_COLUMNS, _figure_text
    from studio.train.report import HEADLINE
    from studio.train.run_diff import FIGURES
    from studio.train.sweep import OBJECTIVES

    assert COMPARE_COLUMNS == [
        ("ic", "IC", "{:.4f}"), ("rank_ic", "RankIC", "{:.4f}"), ("icir", "ICIR", "{:.3f}"),
        ("rank_icir", "RankICIR", "{:.3f}"), ("annual_return", "LS ann. return", "{:.2%}"),
        ("sharpe", "Sharpe", "{:.2f}"), ("max_drawdown", "max DD", "{:.2%}"), ("turnover", "turnover", "{:.2f}"),
        # issue 28: the factor baselines of baselines.json (studio.train.run_figures reads them)
        ("best_baseline_ic", "best baseline IC", "{:.4f}"), ("incremental_ic", "incremental IC (t)", "{:.4f}"),
        ("oracle_ic", "oracle IC", "{:.4f}"), ("ic_t", "IC t", "{:.2f}"), ("dates", "dates", "{}")]
    assert MLFLOW_COLUMNS == COMPARE_COLUMNS[:10] == FIGURES
    assert CLI_SEED_COLUMNS == [("ic", "IC"), ("rank_ic", "RankIC"), ("icir", "ICIR"),
                                ("annual_return", "LS ann. return"), ("sharpe", "Sharpe")]
    assert HEADLINE == [
        ("ic", "IC", "{:.4f}"), ("icir", "ICIR", "{:.3f}"), ("rank_ic", "RankIC", "{:.4f}"),
        ("rank_icir", "RankICIR", "{:.3f}"), ("ic_t", "IC t", "{:.2f}"), ("annual_return", "LS ann. return", "{:.2%}"),
        ("sharpe", "Sharpe", "{:.2f}"), ("net_annual_return", "net ann. return", "{:.2%}"),
        ("net_sharpe", "net Sharpe", "{:.2f}"), ("max_drawdown", "max DD", "{:.2%}"),
        ("turnover", "turnover", "{:.2f}"), ("dates", "dates", "{}")]
    assert COLUMNS == [("run", "run"), ("graph", "graph"), ("status", "status"), ("ic", "IC"), ("rank_ic", "RankIC"),
                       ("icir", "ICIR"), ("annual_return", "LS ann. ret."), ("sharpe", "Sharpe"),
                       ("max_drawdown", "max DD"), ("best_baseline_ic", "best base. IC"),
                       ("incremental_ic", "incr. IC (t)"), ("oracle_ic", "oracle IC"), ("ic_t", "IC t"),
                       ("dates", "dates")]
    assert SEED_COLUMNS == [("graph", "graph"), ("seeds", "seeds"), ("ic", "IC"), ("rank_ic", "RankIC"),
                            ("icir", "ICIR"), ("annual_return", "LS ann. ret."), ("sharpe", "Sharpe")]
    assert OBJECTIVES == ("ic", "rank_ic", "icir", "rank_icir", "annual_return", "sharpe")
    # the Runs table's formats: ICIR narrower than compare's, returns as percentages
    assert [_figure_text(key, 0.123456) for key in ("ic", "icir", "annual_return", "max_drawdown", "ic_t",
                                                    "sharpe", "oracle_ic")] == [
        "0.1235", "0.12", "12.35%", "12.35%", "0.12", "0.12", "0.1235"]


def test_the_declaration_is_consistent():
    keys = [spec.key for spec in METRICS]
    assert len(keys) == len(set(keys))
    assert all(spec.shows <= set(PLACES) for spec in METRICS)
    places = [spec.headline for spec in METRICS if spec.headline is not None]
    assert sorted(places) == list(range(len(places)))
    # a sweep maximises its objective (sweep_tune's mode="max"; the local sweep keeps the highest)
    assert all(spec.higher_is_better for spec in METRICS if spec.objective)


#: run in a fresh interpreter: a metric declared before any reader is imported, then looked for in each
_NEW_METRIC = """
import dataclasses, json
from studio import metric_specs
spec = metric_specs.MetricSpec("hit_rate", "hit rate", "{:.1%}", True, objective=True,
                               shows=frozenset(metric_specs.PLACES), headline=len(metric_specs.headline()),
                               runs_label="hits")
metric_specs.METRICS = (*metric_specs.METRICS, spec)
metric_specs.BY_KEY = {s.key: s for s in metric_specs.METRICS}
from studio.cli import train_commands
from studio.gui import runs
from studio.train import report, run_diff, sweep
print(json.dumps({
    "compare": train_commands.COMPARE_COLUMNS[-1], "mlflow": train_commands.MLFLOW_COLUMNS[-1],
    "cli_seeds": train_commands.SEED_COLUMNS[-1], "headline": report.HEADLINE[-1], "diff": run_diff.FIGURES[-1],
    "runs": runs.COLUMNS[-1], "runs_seeds": runs.SEED_COLUMNS[-1], "runs_text": runs._figure_text("hit_rate", 0.5),
    "objective": sweep.OBJECTIVES[-1]}))
"""


def test_a_declared_metric_reaches_every_reader_its_flags_name():
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", _NEW_METRIC], capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    entry = ["hit_rate", "hit rate", "{:.1%}"]
    assert seen == {"compare": entry, "mlflow": entry, "cli_seeds": ["hit_rate", "hit rate"], "headline": entry,
                    "diff": entry, "runs": ["hit_rate", "hits"], "runs_seeds": ["hit_rate", "hits"],
                    "runs_text": "50.0%", "objective": "hit_rate"}


def test_a_metric_without_a_place_stays_out_of_it():
    assert "net_sharpe" not in [spec.key for place in PLACES for spec in metric_specs.shown_in(place)]
    assert "net_sharpe" in [spec.key for spec in metric_specs.headline()]
    assert "oracle_ic" not in metric_specs.objectives()


def test_losses_and_optimisers_are_listed_once():
    from studio.cli import build_parser
    from studio.train.config import LOSSES, OPTIMIZERS
    from studio.train.engine import OPTIMIZER_FACTORIES
    from studio.train.losses import LOSS_FUNCTIONS

    assert list(LOSS_FUNCTIONS) == list(LOSSES)
    assert list(OPTIMIZER_FACTORIES) == list(OPTIMIZERS)
    train = build_parser()._subparsers._group_actions[0].choices["train"]
    choices = {action.dest: action.choices for action in train._actions}
    assert choices["loss"] == LOSSES
    assert choices["optimizer"] == OPTIMIZERS


def test_each_optimiser_name_makes_its_torch_optimiser():
    import torch

    from studio.train.config import TrainConfig
    from studio.train.engine import OPTIMIZER_FACTORIES

    params = [torch.nn.Parameter(torch.zeros(2))]
    config = TrainConfig(lr=0.01, weight_decay=0.001)
    made = {name: make(params, config) for name, make in OPTIMIZER_FACTORIES.items()}
    assert {name: type(opt) for name, opt in made.items()} == {
        "adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}
    assert all(opt.defaults["lr"] == 0.01 and opt.defaults["weight_decay"] == 0.001 for opt in made.values())
    assert made["sgd"].defaults["momentum"] == 0.9


def test_the_training_panel_offers_every_loss_and_optimiser_with_the_default_first(window):  # noqa: F811
    from studio.train.config import LOSSES, OPTIMIZERS, TrainConfig

    panel = window.training
    losses = [panel.loss.itemText(i) for i in range(panel.loss.count())]
    optimisers = [panel.optimizer.itemText(i) for i in range(panel.optimizer.count())]
    assert losses == ["ic", "mse", "rank"] and sorted(losses) == sorted(LOSSES)
    assert optimisers == ["adam", "adamw", "sgd"] and sorted(optimisers) == sorted(OPTIMIZERS)
    assert (panel.loss.currentText(), panel.optimizer.currentText()) == (TrainConfig.loss, TrainConfig.optimizer)
