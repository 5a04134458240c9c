"""Resource budgets of a graph (issue 25 item 5): validation reports the parameters' bytes and an estimate of
a training step's activations per stock; the commands that allocate a model refuse one over the parameter
budget (--max-params) in one line naming its largest node, before anything is allocated."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from studio.cli import main
from studio.core.graph_file import load_graph
from studio.core.validation import AUTOGRAD_FACTOR, DEFAULT_MAX_PARAMS, validate
from studio.nodes import default_registry
from tests.conftest import GRAPHS


def huge_gru(tmp_path: Path) -> Path:
    # the attack: the default graph with gru_1.hidden_size = 25000 validates (1.9 billion parameters), and
    # export --to g.py used to fill 6 GB of memory in 17 s
    doc = json.loads((GRAPHS / "default.json").read_text(encoding="utf-8"))
    doc["nodes"]["gru_1"]["params"]["hidden_size"] = 25000
    path = tmp_path / "g.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_validation_reports_parameter_bytes_and_activations_per_stock():
    v = validate(load_graph(GRAPHS / "default.json"), default_registry())
    assert v.param_bytes == 8705 * 4
    # the GRU's gates at each of its 60 steps dominate its one output sequence
    assert v.activation_counts["gru_1"] > 60 * 32 * 3
    assert v.activation_bytes_per_stock == v.activation_count * 4 * AUTOGRAD_FACTOR
    big = validate(load_graph(GRAPHS / "transformer" / "transformer_6x6.json"), default_registry())
    assert big.activation_bytes_per_stock > 100 * v.activation_bytes_per_stock  # attention over every pair of steps


def test_the_gallery_stays_far_under_the_parameter_budget():
    counts = []
    for path in sorted(GRAPHS.rglob("*.json")):
        graph = load_graph(path)
        if graph.kind == "model":
            counts.append(validate(graph, default_registry()).total_params)
    assert len(counts) > 50 and max(counts) * 100 < DEFAULT_MAX_PARAMS


@pytest.mark.parametrize("name", ["default.json", "transformer/transformer_1x1.json", "cells/convgru_10.json",
                                  "daily_view/cnn1d_15_per_day.json"])
def test_the_activation_estimate_covers_what_autograd_saves(name):
    import torch

    from studio.torchgraph.builder import build_model

    graph = load_graph(GRAPHS / name)
    v = validate(graph, default_registry())
    model = build_model(graph, default_registry()).train()
    stocks = 8
    x = torch.randn(1, stocks, graph.input.days * graph.input.bars_per_day, len(graph.input.features))
    saved: dict[int, int] = {}

    def pack(tensor):
        saved[tensor.untyped_storage().data_ptr()] = tensor.untyped_storage().nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        model(x, torch.ones(1, stocks, dtype=torch.bool))
    per_stock = sum(saved.values()) / stocks
    # an estimate, on the safe side: never under what the forward saves, and not wildly over it
    assert 0.1 * v.activation_bytes_per_stock < per_stock <= v.activation_bytes_per_stock, (per_stock, v)


def test_validate_reports_the_huge_model_and_export_refuses_it_in_one_line(tmp_path, capsys):
    path = huge_gru(tmp_path)
    assert main(["validate", str(path)]) == 0
    assert "1,877,577,337 parameters; 7.5 GB of weights" in capsys.readouterr().out
    started = time.monotonic()
    code = main(["export", str(path), "--to", str(tmp_path / "g.py")])
    err = capsys.readouterr().err
    assert code == 2 and time.monotonic() - started < 5
    assert one_line(err) == (f"studio: {path}: gru_1 has 1.88G parameters (7.5 GB of weights); the model's 1.88G "
                             "are over the budget of 50M (--max-params N raises it)")
    assert not (tmp_path / "g.py").exists() and not (tmp_path / "g.pt").exists()


def test_train_refuses_the_huge_model_before_any_data_loads(tmp_path, capsys):
    code = main(["train", str(huge_gru(tmp_path)), "--out", str(tmp_path / "runs"), "--synthetic", "stocks=30",
                 "--synthetic", "days=60", "--epochs", "1", "-q"])
    line = one_line(capsys.readouterr().err)
    assert code == 2 and "gru_1 has 1.88G parameters" in line and "--max-params" in line
    assert not (tmp_path / "runs").exists()


def test_max_params_sets_the_budget(tmp_path, capsys):
    default = str(GRAPHS / "default.json")
    code = main(["export", default, "--to", str(tmp_path / "m.py"), "--max-params", "8000"])
    assert code == 2 and "gru_1 has 6.34k parameters" in one_line(capsys.readouterr().err)
    code = main(["train", default, "--max-params", "8000", "--out", str(tmp_path / "runs"), "-q"])
    assert code == 2 and "over the budget of 8k" in one_line(capsys.readouterr().err)
    assert main(["export", default, "--to", str(tmp_path / "m.py"), "--max-params", "8705"]) == 0


def test_a_sweep_of_the_huge_model_is_refused_when_its_spec_is_read(tmp_path, capsys):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"graphs": [str(huge_gru(tmp_path))], "seeds": 1,
                                "training": {"epochs": 1}}), encoding="utf-8")
    code = main(["sweep", str(spec), "--out", str(tmp_path / "sweeps"), "-q"])
    line = one_line(capsys.readouterr().err)
    assert code == 2 and "g.json: gru_1 has 1.88G parameters" in line and "training.max_params" in line
    assert not (tmp_path / "sweeps").exists()
