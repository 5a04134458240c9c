"""Blocks: the shape rule of every block file under graphs/blocks/ for several windows, the per-day node
(folding days into the dates axis, build, validation problems, edits) and the two modes of the seed's daily
view against hand-computed numbers."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from studio.core.document import BlockEntry, Graph, InputSpec
from studio.core.edits import copy_selection, expand_block, paste
from studio.core.graph_file import load_graph
from studio.core.shapes import TensorShape
from studio.core.validation import validate
from studio.torchgraph.builder import build_model
from tests.conftest import GRAPHS

BLOCKS = GRAPHS / "blocks"
BLOCK_FILES = sorted(BLOCKS.glob("*.json"))
WINDOWS = (2, 5, 10)  # days of 24 bars
BARS = 24

#: the output length (or channels) each block's description promises, from the input length L
RULES = {
    "base": lambda n: TensorShape.seq(n // 2 // 2, 16),
    "bert_encoder": lambda n: TensorShape.vec(16),
    "bottleneck1": lambda n: TensorShape.seq(n, 16),
    "bottleneck2": lambda n: TensorShape.seq(math.ceil(n / 2), 16),
    "conv_relu": lambda n: TensorShape.seq(n, 16),
    "daily_view_mean": lambda n: TensorShape.vec(1),
    "daily_view_per_day": lambda n: TensorShape.vec(1),
    "day_conv": lambda n: TensorShape.vec(1),
    "downsample": lambda n: TensorShape.seq(math.ceil(n / 2), 16),
    "multibox_head": lambda n: TensorShape.vec(16),
    "multigrid": lambda n: TensorShape.seq(n, 16),
    "multigrid_aspp": lambda n: TensorShape.seq(n, 16),
    "multigrid_batchnorm": lambda n: TensorShape.seq(n, 16),
    "upsample": lambda n: TensorShape.seq(2 * n, 16),
}


def node(graph: Graph, node_id: str, type_id: str, **params):
    from studio.nodes import default_registry

    node_type = default_registry()[type_id]
    graph.add_node(type_id, node_type.version, {**node_type.default_params(), **params}, node_id=node_id)


def harness(block_path: Path, days: int, features: int = 3) -> tuple[Graph, str]:
    """A tiny model around one block file: sequence ports get the bar window lifted to 16 channels, vector
    ports a one-value summary of it; a sequence output is reduced over time; then one score."""
    block = load_graph(block_path)
    graph = Graph(name="harness", input=InputSpec([f"f{i}" for i in range(features)], days, BARS))
    graph.blocks["under_test"] = BlockEntry("under_test", block, block_path.name)
    node(graph, "bars", "input")
    node(graph, "lift", "linear", out_features=16)
    graph.connect("bars.bars", "lift.x")
    node(graph, "summary", "reduce_time", mode="last")
    node(graph, "summary_fc", "linear", out_features=1)
    graph.connect("bars.bars", "summary.x")
    graph.connect("summary.y", "summary_fc.x")
    node(graph, "blk", "block", block="under_test")
    for port in block.nodes_of_type("block_input"):
        source = "lift.y" if port.params["kind"] == "seq" else "summary_fc.y"
        graph.connect(source, f"blk.{port.params['name']}")
    (out,) = [n.params["name"] for n in block.nodes_of_type("block_output")]
    node(graph, "head", "linear", out_features=1)
    node(graph, "score", "output")
    graph.connect("head.y", "score.x")
    return graph, out


def test_every_block_file_has_a_rule():
    assert {p.stem for p in BLOCK_FILES} == set(RULES)


@pytest.mark.parametrize("days", WINDOWS)
@pytest.mark.parametrize("path", BLOCK_FILES, ids=lambda p: p.stem)
def test_block_shape_rule_holds_for_several_windows(path, days, registry):
    graph, out = harness(path, days)
    v0 = validate(graph, registry)
    declared = v0.out_shapes["blk"][out] if "blk" in v0.out_shapes else None
    assert declared is not None, [str(p) for p in v0.problems]
    if declared.kind == "seq":
        node(graph, "last", "reduce_time", mode="mean")
        graph.connect(f"blk.{out}", "last.x")
        graph.connect("last.y", "head.x")
    else:
        graph.connect(f"blk.{out}", "head.x")
    v = validate(graph, registry)
    assert v.ok, [str(p) for p in v.errors]
    length = days * BARS
    assert declared == RULES[path.stem](length), f"{path.stem} on {length} bars gives {declared}"
    model = build_model(graph, registry, seed=0, validation=v)
    seen = {}
    model.blk.register_forward_hook(lambda _m, _a, output: seen.setdefault("y", output))
    x = torch.randn(2, 3, length, 3)
    out_scores = model(x, torch.ones(2, 3, dtype=torch.bool))
    assert out_scores.shape == (2, 3)
    assert tuple(seen["y"].shape) == declared.torch_shape(2, 3)
    # the inner parameter count the validator declares is what torch builds
    assert sum(p.numel() for p in model.blk.parameters()) == v.param_counts["blk"]


def test_blocks_nest_block_files(registry):
    """The daily view blocks use day_conv.json from their own block table (a block file inside a block
    file); gallery models use them by path."""
    for name in ("daily_view_mean", "daily_view_per_day"):
        block = load_graph(BLOCKS / f"{name}.json")
        assert block.blocks["day_model"].path == "day_conv.json"
        assert block.blocks["day_model"].graph is not None
    users = [p for p in GRAPHS.rglob("*.json")
             if any(e.get("path", "").endswith("blocks/daily_view_per_day.json")
                    for e in json.loads(p.read_text(encoding="utf-8"))["blocks"].values())]
    assert users


# ---- the per-day node ------------------------------------------------------------------------------

def day_model_block(inner: str = "max") -> Graph:
    """One day's bars -> Linear(1) -> ReLU -> reduce over time (max): a vector per stock."""
    block = Graph(name="day", kind="block")
    node(block, "x", "block_input", name="x", kind="seq")
    node(block, "lin", "linear", out_features=1)
    node(block, "relu", "relu")
    node(block, "pool", "reduce_time", mode=inner)
    node(block, "y", "block_output", name="y")
    for a, b in (("x.y", "lin.x"), ("lin.y", "relu.x"), ("relu.y", "pool.x"), ("pool.y", "y.x")):
        block.connect(a, b)
    return block


def daily_model(mode: str, days: int = 2, bars: int = 3) -> Graph:
    """minute path: last bar -> Linear(1); daily path (mode "mean"): day means -> day block; (mode
    "per_day"): the day block on each day, concatenated -> Linear(1); the two added."""
    graph = Graph(name=f"daily_{mode}", input=InputSpec(["close"], days, bars))
    graph.blocks["day"] = BlockEntry("day", day_model_block())
    node(graph, "bars", "input")
    node(graph, "last", "reduce_time", mode="last")
    node(graph, "minute", "linear", out_features=1)
    graph.connect("bars.bars", "last.x")
    graph.connect("last.y", "minute.x")
    if mode == "mean":
        node(graph, "days", "day_mean", bars_per_day=None)
        node(graph, "daily", "block", block="day")
        graph.connect("bars.bars", "days.x")
        graph.connect("days.y", "daily.x")
    else:
        node(graph, "each_day", "per_day", block="day", bars_per_day=None, output="concat")
        node(graph, "daily", "linear", out_features=1)
        graph.connect("bars.bars", "each_day.x")
        graph.connect("each_day.y", "daily.x")
    node(graph, "join", "add")
    node(graph, "score", "output")
    graph.connect("minute.y", "join.x1")
    graph.connect("daily.y", "join.x2")
    graph.connect("join.y", "score.x")
    return graph


def set_weights(model, mode: str) -> None:
    """Day block: lin = 2·x − 3; minute: 0.5·x + 0.1; per-day head: 1·v1 − 2·v2 + 0.25."""
    with torch.no_grad():
        day = model.daily if mode == "mean" else model.each_day.block
        day.lin.weight.fill_(2.0)
        day.lin.bias.fill_(-3.0)
        model.minute.weight.fill_(0.5)
        model.minute.bias.fill_(0.1)
        if mode == "per_day":
            model.daily.weight.copy_(torch.tensor([[1.0, -2.0]]))
            model.daily.bias.fill_(0.25)


# two stocks, two days of three bars, one feature
X = torch.tensor([[[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [-1.0, 0.0, 2.0, 3.0, -3.0, 1.0]]]).unsqueeze(-1)
# by hand (see set_weights):
# mode 1, stock 0: day means 2, 5 -> relu(2·2−3) = 1, relu(2·5−3) = 7 -> max 7; minute 0.5·6+0.1 = 3.1
#         stock 1: day means 1/3, 1/3 -> relu(2/3−3) = 0 -> 0; minute 0.5·1+0.1 = 0.6
# mode 2, stock 0: day 1 relu(2x−3) = 0, 1, 3 -> 3; day 2 = 5, 7, 9 -> 9; 3 − 2·9 + 0.25 = −14.75; +3.1
#         stock 1: day 1 = 0, 0, 1 -> 1; day 2 = 3, 0, 0 -> 3; 1 − 2·3 + 0.25 = −4.75; +0.6
BY_HAND = {"mean": [10.1, 0.6], "per_day": [-11.65, -4.15]}


@pytest.mark.parametrize("mode", ["mean", "per_day"])
def test_daily_view_modes_match_a_hand_computed_example(mode, registry):
    graph = daily_model(mode)
    v = validate(graph, registry)
    assert v.ok, [str(p) for p in v.errors]
    if mode == "mean":
        assert v.out_shapes["days"]["y"] == TensorShape.seq(2, 1)
    else:
        assert v.out_shapes["each_day"]["y"] == TensorShape.vec(2)
    model = build_model(graph, registry, seed=0, validation=v).eval()
    set_weights(model, mode)
    expected = torch.tensor([BY_HAND[mode]])
    with torch.no_grad():
        torch.testing.assert_close(model(X), expected)
        # two dates, the second with the stocks swapped: the days of one date never mix with another's
        two = torch.cat([X, X.flip(1)])
        torch.testing.assert_close(model(two), torch.cat([expected, expected.flip(1)]))
        # an absent stock scores 0 and changes nothing for the other
        mask = torch.tensor([[True, False]])
        torch.testing.assert_close(model(X, mask), torch.tensor([[BY_HAND[mode][0], 0.0]]))


def test_per_day_sequence_output_puts_day_d_at_step_d(registry):
    graph = daily_model("per_day")
    graph.nodes["each_day"].params["output"] = "sequence"
    graph.nodes["daily"].type = "reduce_time"
    graph.nodes["daily"].params = {"mode": "last"}
    v = validate(graph, registry)
    assert v.ok, [str(p) for p in v.errors]
    assert v.out_shapes["each_day"]["y"] == TensorShape.seq(2, 1)
    model = build_model(graph, registry, validation=v).eval()
    with torch.no_grad():
        model.each_day.block.lin.weight.fill_(2.0)
        model.each_day.block.lin.bias.fill_(-3.0)
        days = model.each_day(X)
    torch.testing.assert_close(days, torch.tensor([[[[3.0], [9.0]], [[1.0], [3.0]]]]))


def cross_section_block() -> Graph:
    """A block whose gates convolve across the date's stocks: folding days into the stocks axis would
    change its result."""
    block = Graph(name="xs", kind="block")
    node(block, "x", "block_input", name="x", kind="seq")
    node(block, "cell", "cell_gru", hidden_size=3, gate1_mode="cross_section", gate2_mode="cross_section",
         output="last")
    node(block, "y", "block_output", name="y")
    block.connect("x.y", "cell.x")
    block.connect("cell.y", "y.x")
    return block


def test_per_day_folds_days_into_dates_and_keeps_each_dates_stocks_together(registry):
    graph = Graph(name="xs_daily", input=InputSpec(["a", "b"], 3, 4))
    graph.blocks["xs"] = BlockEntry("xs", cross_section_block())
    node(graph, "bars", "input")
    node(graph, "each_day", "per_day", block="xs", bars_per_day=None)
    node(graph, "pool", "reduce_time", mode="mean")
    node(graph, "head", "linear", out_features=1)
    node(graph, "score", "output")
    for a, b in (("bars.bars", "each_day.x"), ("each_day.y", "pool.x"), ("pool.y", "head.x"),
                 ("head.y", "score.x")):
        graph.connect(a, b)
    v = validate(graph, registry)
    assert v.ok, [str(p) for p in v.errors]
    assert v.out_shapes["each_day"]["y"] == TensorShape.seq(3, 3)
    model = build_model(graph, registry, seed=1, validation=v).eval()
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(2, 5, 12, 2, generator=gen)
    mask = torch.tensor([[True, True, False, True, True], [True, False, True, True, True]])
    with torch.no_grad():
        folded = model.each_day(x, mask)
        # the same block run day by day, each day a whole cross-section of B dates and N stocks
        by_day = torch.stack([model.each_day.block(x[:, :, 4 * d:4 * d + 4], mask) for d in range(3)], dim=2)
    torch.testing.assert_close(folded, by_day)
    assert folded.shape == (2, 5, 3, 3)


def test_per_day_problems_name_the_node(registry, tmp_path):
    graph = daily_model("per_day", days=2, bars=3)
    graph.nodes["each_day"].params["bars_per_day"] = 4
    problems = [str(p) for p in validate(graph, registry).errors]
    assert problems == ["each_day.x: length 6 is not a whole number of days of 4 bars (bars_per_day 4) from "
                        "bars.bars"]

    graph = daily_model("per_day")
    graph.blocks["day"].graph.remove_node("pool")
    graph.blocks["day"].graph.connect("relu.y", "y.x")
    problems = [str(p) for p in validate(graph, registry).errors]
    assert problems == ["each_day.block: block \"day\" gives seq N×3×1 for one day; it must give a vector per "
                        "stock (end it with a reduction such as reduce_time)"]

    graph = daily_model("per_day")
    graph.blocks["two"] = BlockEntry("two", load_graph(BLOCKS / "daily_view_mean.json"), "daily_view_mean.json")
    graph.nodes["each_day"].params["block"] = "two"
    problems = [str(p) for p in validate(graph, registry).errors]
    assert any(p.startswith("each_day.block: block \"two\" must have one sequence input") for p in problems), problems

    graph = daily_model("per_day")
    graph.nodes["each_day"].params["block"] = "nope"
    problems = [str(p) for p in validate(graph, registry).errors]
    assert problems[0].startswith("each_day.block: no block named \"nope\""), problems

    # bars_per_day null inside a block: there is no bar window to take it from
    block = Graph(name="outer", kind="block")
    block.blocks = {}
    node(block, "x", "block_input", name="x", kind="seq")
    node(block, "each_day", "per_day", block="day", bars_per_day=None, output="concat")
    node(block, "y", "block_output", name="y")
    block.connect("x.y", "each_day.x")
    block.connect("each_day.y", "y.x")
    graph = daily_model("mean")
    graph.blocks["outer"] = BlockEntry("outer", block)
    node(graph, "wrapped", "block", block="outer")
    graph.connect("bars.bars", "wrapped.x")
    node(graph, "extra", "linear", out_features=1)
    graph.connect("wrapped.y", "extra.x")
    errors = [str(p) for p in validate(graph, registry).errors]
    assert any("bars_per_day: is null, and there is no bar window" in p for p in errors), errors


def test_a_block_cannot_run_itself_per_day(registry):
    block = Graph(name="loop", kind="block")
    node(block, "x", "block_input", name="x", kind="seq")
    node(block, "each_day", "per_day", block="loop", bars_per_day=3, output="concat")
    node(block, "y", "block_output", name="y")
    block.connect("x.y", "each_day.x")
    block.connect("each_day.y", "y.x")
    graph = daily_model("mean")
    graph.blocks["loop"] = BlockEntry("loop", block)
    node(graph, "wrapped", "per_day", block="loop", bars_per_day=None)
    graph.connect("bars.bars", "wrapped.x")
    errors = [str(p) for p in validate(graph, registry).errors]
    assert any("contains itself" in p for p in errors), errors


def test_copy_paste_carries_the_block_of_a_per_day_node_and_expand_keeps_it(registry):
    source = load_graph(GRAPHS / "daily_view" / "cnn1d_15_per_day.json")
    block = source.blocks["daily_view"].graph
    text = copy_selection(block, ["each_day"])
    assert json.loads(text)["blocks"] == {"day_model": {"path": "day_conv.json"}}
    target = Graph(name="t", kind="block")
    assert paste(target, text) == ["each_day"]
    assert target.blocks["day_model"].path == "day_conv.json"

    # expanding a block instance keeps an inline block that a per-day node still uses
    graph = daily_model("per_day")
    node(graph, "also", "block", block="day")
    graph.connect("bars.bars", "also.x")
    expand_block(graph, "also")
    assert "day" in graph.blocks


def test_the_per_day_block_shows_in_the_summary(capsys):
    from studio.cli import main

    assert main(["summary", str(GRAPHS / "daily_view" / "cnn1d_15_per_day.json")]) == 0
    out = capsys.readouterr().out
    assert "block daily_view" in out


def test_gallery_daily_view_blocks_compute_what_they_describe(registry):
    """The gallery's two daily-view blocks against the same numbers computed step by step from their
    weights (day means or day slices, the day_conv layers by hand, the Linear, the sum)."""
    for name, mode in (("base_18_day_mean", "mean"), ("cnn1d_15_per_day", "per_day")):
        graph = load_graph(GRAPHS / "daily_view" / f"{name}.json")
        model = build_model(graph, registry, seed=0).eval()
        x = torch.randn(2, 4, 240, 3, generator=torch.Generator().manual_seed(0))
        seen = {}
        model.daily.register_forward_hook(lambda _m, args, out, seen=seen: seen.update(args=args, out=out))
        with torch.no_grad():
            model(x)
        minute, bars = seen["args"][0], seen["args"][1]  # ports sorted by name: minute, x
        daily = model.daily
        day = daily.day_model if mode == "mean" else daily.each_day.block

        def day_conv(seq, day=day):  # (B, N, L, C) -> (B, N, 1) by hand: replicate pad, conv, relu, mean, linear
            rows = seq.reshape(-1, seq.shape[-2], seq.shape[-1]).transpose(1, 2)
            y = F.conv1d(F.pad(rows, (1, 1), mode="replicate"), day.conv.weight, day.conv.bias).relu()
            return (y.mean(-1) @ day.fc.weight.t() + day.fc.bias).reshape(*seq.shape[:2], 1)

        with torch.no_grad():
            if mode == "mean":
                expected = minute + day_conv(bars.reshape(2, 4, 10, 24, 3).mean(3))
            else:
                per_day = torch.cat([day_conv(bars[:, :, 24 * d:24 * d + 24]) for d in range(10)], dim=-1)
                expected = minute + per_day @ daily.fc.weight.t() + daily.fc.bias
        torch.testing.assert_close(seen["out"], expected, atol=1e-5, rtol=1e-5)
