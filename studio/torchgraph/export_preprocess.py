"""Exports that carry a run's preprocessing (``studio export GRAPH --to OUT --run RUN_DIR``).

A model's input is normalised windows; a user holds raw bars. With ``--run`` an export also carries what
turns the one into the other, exactly as the run's training did, with the run's statistics (its
``preprocess.json``, read by studio.data.preprocess_spec):

- ``.py``: beside the module, the copied source of studio/data/preprocess.py (numpy only; its
  ``preprocess`` renamed ``preprocess_bars``), the run's spec as the literal ``SPEC`` and its raw fields as
  ``FIELDS``, ``preprocess(bars, traded=None)`` -> (x, mask) and ``score(bars, traded=None)`` -> (S,) scores.
- ``.pt2`` / ``.onnx``: for ``robust``, ``cs_zscore`` and ``none`` the steps are tensor operations and the
  program itself takes raw bars (``RawBarsModel``); ``cs_rank`` (ranks with shared ties: a sort and a search
  per bar, or S x S comparisons, neither fit for a program over thousands of stocks) is not put in the
  program: it takes (x, mask) as a plain export does, and ``NAME.preprocess.json`` beside it holds every
  constant and the formula of every step.
"""

from __future__ import annotations

import ast
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from studio.core.document import Graph
from studio.core.graph_file import GraphFileError, load_graph
from studio.core.registry import Registry
from studio.core.text import printable
from studio.data import preprocess as preprocess_module
from studio.data.errors import DataError
from studio.data.preprocess import FLOW_FEATURES, PRICE_FEATURES, RANK_SCALE, history_days
from studio.data.preprocess_spec import load_spec, spec_path

#: normalisations the .pt2 / ONNX program computes itself (the others need the whole cross-section)
IN_PROGRAM = ("robust", "cs_zscore", "none")
#: the name the copied preprocess() takes in a .py export (its own preprocess(bars, traded) calls it)
COPIED_NAME = "preprocess_bars"


class RunError(Exception):
    """A one-line reason why a run's preprocessing cannot go with this export."""


@dataclass
class RunPreprocessing:
    run_dir: Path
    spec: dict

    @property
    def fields(self) -> list[str]:
        return list(self.spec["fields"])

    @property
    def history(self) -> int:
        """Whole days of bars that give every number training saw."""
        return history_days(self.spec)

    @property
    def in_program(self) -> bool:
        return self.spec["normalize"] in IN_PROGRAM


def read_run(run_dir: str | Path, graph: Graph, registry: Registry | None) -> RunPreprocessing:
    """The run's checked preprocessing, refused in one line when the run's frozen graph computes
    something else than ``graph`` (its name, description and positions aside) or its spec does not fit."""
    run_dir = Path(run_dir)
    where = printable(str(run_dir))
    if not run_dir.is_dir():
        raise RunError(f"{where}: not a run directory")
    try:
        trained = load_graph(run_dir / "graph.json")
    except GraphFileError as exc:
        raise RunError(f"{where}: its graph.json cannot be read ({exc})") from None
    from studio.core.graph_diff import diff_graphs

    changes = [c for c in diff_graphs(trained, graph, registry).changes if c.kind != "graph"]
    if changes:
        shown = "; ".join(str(c) for c in changes[:3]) + (f" (+{len(changes) - 3} more)" if len(changes) > 3 else "")
        raise RunError(f"{where}: the run trained another model than {printable(str(graph.path or graph.name))} "
                       f"(run -> graph: {shown}); export the run's graph.json")
    folds = sorted((p for p in (run_dir / "folds").glob("fold-*") if p.is_dir()),
                   key=lambda p: (len(p.name), p.name)) if (run_dir / "folds").is_dir() else []
    if folds and not spec_path(run_dir).exists():
        raise RunError(f"{where}: a walk-forward run has one model per fold: export a fold's graph.json "
                       f"with --run {printable(str(folds[-1]))} (the last fold is the newest model)")
    try:
        spec = load_spec(spec_path(run_dir))
    except DataError as exc:
        raise RunError(str(exc)) from None
    spec_input = graph.input
    assert spec_input is not None
    for name, theirs in (("features", list(spec_input.features)), ("days", spec_input.days),
                         ("bars_per_day", spec_input.bars_per_day)):
        if spec[name] != theirs:
            raise RunError(f"{printable(str(spec_path(run_dir)))}: {name} is {spec[name]!r}, the graph's input "
                           f"has {theirs!r}")
    return RunPreprocessing(run_dir, spec)


# ---- .py ------------------------------------------------------------------------------------------

def copied_source() -> tuple[list[str], str]:
    """studio/data/preprocess.py as (its import lines, the rest of its source from its first definition),
    its ``preprocess`` renamed COPIED_NAME. The module is self-contained by contract; a change that breaks
    the contract is refused here (an internal error, never a file's fault)."""
    source = Path(preprocess_module.__file__).read_text(encoding="utf-8")
    tree = ast.parse(source)
    lines = source.splitlines(keepends=True)
    imports, first = [], None
    for stmt in tree.body:
        is_docstring = (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)
                        and isinstance(stmt.value.value, str))
        if isinstance(stmt, ast.Import | ast.ImportFrom):
            if first is not None:
                raise RunError("internal error: studio/data/preprocess.py imports after its first definition")
            module = stmt.module if isinstance(stmt, ast.ImportFrom) else stmt.names[0].name
            top = (module or "").split(".")[0]
            if getattr(stmt, "level", 0) or (top != "numpy" and top not in sys.stdlib_module_names):
                raise RunError(f"internal error: studio/data/preprocess.py imports {module}: only numpy and the "
                               "standard library can go into an export")
            if top != "__future__":  # the export makes that import itself, at its top
                imports.append(ast.get_source_segment(source, stmt))
        elif not is_docstring and first is None:
            first = stmt
    defined = {s.name for s in tree.body if isinstance(s, ast.FunctionDef)}
    if "preprocess" not in defined or COPIED_NAME in defined:
        raise RunError(f"internal error: studio/data/preprocess.py must define preprocess and not {COPIED_NAME}")
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id == "preprocess"]
    if calls:  # a call inside the module would reach the export's own preprocess() after the rename
        raise RunError("internal error: studio/data/preprocess.py calls preprocess itself")
    definition = next(s for s in tree.body if isinstance(s, ast.FunctionDef) and s.name == "preprocess")
    index = definition.lineno - 1 + len(definition.decorator_list)
    lines[index] = lines[index].replace("def preprocess(", f"def {COPIED_NAME}(", 1)
    assert first is not None
    return imports, "".join(lines[first.lineno - 1:])


def python_parts(run: RunPreprocessing, literal) -> list[str]:
    """The constants and functions a .py export with ``--run`` adds after load_model()."""
    spec, fields = run.spec, run.fields
    constants = "\n".join([
        "# The run's preprocessing (its preprocess.json, as written by the run; see preprocess()).",
        f"RUN_DIR = {literal(str(run.run_dir), 'run directory')}",
        f"FIELDS = {literal(tuple(fields), 'preprocess.json fields')}",
        f"SPEC = {literal(spec, 'preprocess.json')}",
        f"HISTORY_DAYS = {literal(run.history, 'history days')}",
    ])
    functions = f'''def preprocess(bars, traded=None):
    """Raw bars -> (x, mask), the model's input exactly as the run's training made it (SPEC's statistics,
    never refitted).

    bars: (S stocks, D x {spec["bars_per_day"]} bars, {len(fields)} fields in the order of FIELDS), whole days
    ending at the decision date, a numpy array or a tensor; D >= {spec["days"]} (HISTORY_DAYS = {run.history}
    days give every number training saw: the previous close and the volume reference).
    traded: (S,) bool, traded on the decision day (None: every stock whose decision-day bars are finite).
    Returns x float32 (S, {spec["days"] * spec["bars_per_day"]}, {len(spec["features"])}), zeros where mask is False,
    and mask bool (S,).
    """
    if isinstance(bars, torch.Tensor):
        bars = bars.detach().cpu().numpy()
    if isinstance(traded, torch.Tensor):
        traded = traded.detach().cpu().numpy()
    return {COPIED_NAME}(bars, FIELDS, SPEC, traded)


def score(bars, traded=None, model=None):
    """(S,) float64 scores of raw bars (see preprocess()): NaN where mask is False. ``model``: a loaded
    model to reuse (default: load_model(), the weights beside this file)."""
    x, mask = preprocess(bars, traded)
    model = load_model() if model is None else model
    with torch.no_grad():
        out = model(torch.from_numpy(x)[None], torch.from_numpy(mask)[None])[0].float()
    scores = out.double().numpy()
    scores[~mask] = np.nan
    return scores
'''
    return [constants, functions]


# ---- .pt2 and ONNX --------------------------------------------------------------------------------

class RawBarsModel(nn.Module):
    """A model behind the run's preprocessing (robust, cs_zscore or none) as tensor operations, in the steps and
    float64 -> float32 order of studio/data/preprocess.py, for a fixed number of days (the run's
    history): forward(bars (S, HISTORY x P, len(fields)) float32, traded (S,) bool) -> (S,) float32
    scores, NaN where a stock is not a sample."""

    def __init__(self, model: nn.Module, run: RunPreprocessing):
        super().__init__()
        spec = run.spec
        if not run.in_program:
            raise ValueError(f"{spec['normalize']} is not computed in the program")
        self.model = model
        self.fields = run.fields
        self.features = list(spec["features"])
        self.days, self.per_day = int(spec["days"]), int(spec["bars_per_day"])
        self.volume_days, self.total_days = int(spec["volume_days"]), run.history
        self.normalize = spec["normalize"]
        if self.normalize == "robust":
            # as preprocess.py makes them: float64 of the file's numbers, then float32
            self.register_buffer("median", torch.tensor(spec["median"], dtype=torch.float64).float())
            self.register_buffer("mad", torch.tensor(spec["mad"], dtype=torch.float64).float())

    def _reference(self, daily: torch.Tensor) -> torch.Tensor:
        """(S, days): mean of the finite day totals of the previous volume_days days, nearest first."""
        valid = torch.isfinite(daily)
        values = torch.where(valid, daily, torch.zeros_like(daily))
        first = self.total_days - self.days
        total = torch.zeros_like(values[:, first:])
        count = torch.zeros_like(total)
        for back in range(1, self.volume_days + 1):  # the history holds volume_days days before the window
            lo = first - back
            total = total + values[:, lo:lo + self.days]
            count = count + valid[:, lo:lo + self.days].double()
        return torch.where(count > 0, total / count, torch.full_like(total, float("nan")))

    def forward(self, bars: torch.Tensor, traded: torch.Tensor) -> torch.Tensor:
        stocks = bars.shape[0]
        day_bars = bars.reshape(stocks, self.total_days, self.per_day, len(self.fields))
        close = day_bars[:, :, :, self.fields.index("close")].double()
        nan = float("nan")
        prev_close = torch.cat([torch.full_like(close[:, :1, -1], nan), close[:, :-1, -1]], dim=1)
        window = slice(self.total_days - self.days, self.total_days)
        columns = []
        for name in self.features:
            raw = day_bars[:, :, :, self.fields.index(name)].double()
            if name in PRICE_FEATURES:
                value = (raw / prev_close[:, :, None] - 1.0)[:, window]
            elif name in FLOW_FEATURES:
                per_bar = self._reference(raw.sum(dim=2)) / self.per_day
                value = torch.log1p(raw[:, window] / per_bar[:, :, None])
            else:
                value = raw[:, window]
            value = torch.where(torch.isfinite(value), value, torch.full_like(value, nan))
            columns.append(value.reshape(stocks, self.days * self.per_day).float())
        x = torch.stack(columns, dim=-1)
        mask = torch.isfinite(x).all(dim=2).all(dim=1) & traded
        if self.normalize == "cs_zscore":
            x = _cs_zscore(x)
        elif self.normalize == "robust":
            x = torch.clamp((x - self.median) / self.mad, -3.0, 3.0)
        x = torch.where(mask[:, None, None], x, torch.zeros_like(x))
        scores = self.model(x[None], mask[None])[0].float()
        return torch.where(mask, scores, torch.full_like(scores, nan))

    def example_inputs(self, stocks: int = 7, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """Plausible raw bars (positive prices and volumes) of the program's shape; one stock not traded."""
        gen = torch.Generator().manual_seed(seed)
        bars = 10.0 + torch.rand(stocks, self.total_days * self.per_day, len(self.fields), generator=gen)
        traded = torch.ones(stocks, dtype=torch.bool)
        traded[-1] = False
        return bars, traded


def _cs_zscore(x: torch.Tensor) -> torch.Tensor:
    """(S, L, F) float32 -> the z-score across the stocks of each bar and feature, in float64 over the
    finite values (population std; 0 where it is 0; NaN stays NaN), then float32 (preprocess.cross_section)."""
    values = x.double()
    finite = torch.isfinite(values)
    zero = torch.zeros_like(values)
    count = finite.sum(dim=0, keepdim=True).double()
    mean = torch.where(finite, values, zero).sum(dim=0, keepdim=True) / count
    std = torch.sqrt((torch.where(finite, values - mean, zero) ** 2).sum(dim=0, keepdim=True) / count)
    scaled = torch.where(std > 0, (values - mean) / std, zero)
    return (scaled * torch.where(torch.isnan(values), torch.full_like(values, float("nan")), zero + 1)).float()


def raw_bars_shapes():
    stocks = torch.export.Dim("stocks", min=2, max=100_000)
    return {"bars": {0: stocks}, "traded": {0: stocks}}


# ---- preprocess.json beside a program that takes (x, mask) ----------------------------------------

def _normalise_step(spec: dict) -> str:
    """Step 5 in words, for the normalisations a program does not compute (IN_PROGRAM's others)."""
    assert spec["normalize"] == "cs_rank", spec["normalize"]
    return ("5. normalize cs_rank: for each bar and feature, across the stocks given (all of them, samples "
            "or not) whose value is finite, in float64: (rank / n - 0.5) * " + repr(RANK_SCALE) + ", rank 1..n "
            "in ascending order with ties sharing the mean of their ranks, n the number of finite values; "
            "NaN stays NaN; then float32.")


def description(run: RunPreprocessing, program: str) -> dict:
    """preprocess.json beside a program that takes (x, mask): the run's spec and the steps in words."""
    spec = run.spec
    per_day, days = spec["bars_per_day"], spec["days"]
    steps = [
        f"1. bars: float32 array (S stocks, D x {per_day} bars, fields in the order of 'fields'), whole days "
        f"ending at the decision date, D >= {days} ('history_days' = {run.history} days give every number "
        "training saw); compute in float64 from here.",
        "2. prev_close[s, d]: the close of the last bar of day d - 1 (NaN for the first day given).",
        "3. for each feature, in the order of 'features': open, high, low, close: v = bar / prev_close[s, d] - 1; "
        "volume, turnover: total[s, d] = the sum of the day's bars; ref[s, d] = the mean of the finite "
        f"total[s, d - k] for k = 1..volume_days ({spec['volume_days']}) that exist (NaN when none), added nearest "
        f"day first; v = log(1 + bar / (ref[s, d] / {per_day})); any other field: v = the bar as it is. A value "
        "that is not finite becomes NaN; then float32.",
        f"4. window: the last {days} days ({days * per_day} bars) of each feature, x (S, {days * per_day}, "
        f"{len(spec['features'])}); mask[s]: every value of x[s] is finite and the stock traded on the decision "
        "day (when that is not known: every used field of every decision-day bar is finite).",
        _normalise_step(spec),
        "6. x[s] = 0 where mask[s] is False.",
        f"7. the program ({program}) takes x[None] (1, S, L, F) float32 and mask[None] (1, S) bool and gives "
        "score (1, S): the stocks' scores where mask is True (ignore the others).",
    ]
    return {**spec, "history_days": run.history, "program": program, "program_input": "(x, mask), not raw bars",
            "steps": steps}


def description_text(run: RunPreprocessing, program: str) -> str:
    return json.dumps(description(run, program), indent=1, ensure_ascii=True) + "\n"
