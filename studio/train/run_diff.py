"""Two runs side by side: the graph diff (studio.core.graph_diff) of their frozen graphs, the settings
that differ (training, data, seed, metrics, data fingerprint, versions) and the change in every figure of
a split. ``studio compare RUN_A RUN_B`` prints it; the GUI's runs table shows it for two selected runs.
Reads the run directories only (config.json, metrics.json, graph.json): no torch.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from studio.core.graph_diff import GraphDiff, diff_graphs, same_value
from studio.core.text import printable
from studio.metric_specs import DIFF, shown_in

#: (metrics.json key, label, format) of the figures compared
FIGURES = [(spec.key, spec.label, spec.format) for spec in shown_in(DIFF)]

#: config.json entries that say how a run was made (not when or where it ran)
_SETTINGS = ("kind", "walk_forward", "ensemble", "training", "seed", "data", "metrics", "versions")
_LEFT_OUT = {"data.panel", "data.splits", "training.device", "training.threads", "training.feed",
             "seed",  # the seed is training.seed too
             "walk_forward.plan", "data.given_splits",  # date lists; their sizes are the settings shown
             "ensemble.notes", "ensemble.members", "ensemble.splits"}  # the graph line names the members


class RunDiffError(Exception):
    """A run directory that cannot be compared (one line, naming it)."""


@dataclass
class RunDiff:
    a: Path
    b: Path
    split: str
    graph: GraphDiff | None
    #: why the graphs could not be compared, when they could not
    graph_error: str = ""
    #: (dotted key, value in A, value in B)
    settings: list[tuple[str, Any, Any]] = field(default_factory=list)
    #: (key, label, format, A, B)
    figures: list[tuple[str, str, str, float | None, float | None]] = field(default_factory=list)

    def figure_lines(self) -> list[str]:
        """The figures as a small table: A, B and the change."""
        table = [["", "A", "B", "change"]]
        for _key, label, pattern, x, y in self.figures:
            delta = "" if x is None or y is None else _signed(pattern, y - x)
            table.append([label, _show(pattern, x), _show(pattern, y), delta])
        widths = [max(len(row[i]) for row in table) for i in range(4)]
        return ["  ".join(cell.rjust(w) if i else cell.ljust(w)
                          for i, (cell, w) in enumerate(zip(row, widths, strict=True))).rstrip() for row in table]

    def lines(self) -> list[str]:
        out = [f"A: {printable(str(self.a))}", f"B: {printable(str(self.b))}"]
        if self.graph is None:
            out.append(f"graph: cannot compare ({self.graph_error})")
        elif self.graph.equal:
            out.append("graph: the same model")
        else:
            count = len(self.graph.changes)
            out.append(f"graph: {count} change{'s' if count != 1 else ''}")
            out += [f"  {line}" for line in self.graph.lines()]
        if self.settings:
            out.append(f"settings: {len(self.settings)} differ{'s' if len(self.settings) == 1 else ''}")
            out += [f"  {printable(k)}: {_json(x)} -> {_json(y)}" for k, x, y in self.settings]
        else:
            out.append("settings: the same")
        out.append(f"figures ({self.split} split):")
        out += [f"  {line}" for line in self.figure_lines()]
        return out


def _json(value: Any) -> str:
    return "(none)" if value is _NONE else printable(json.dumps(value, sort_keys=True, default=str))


_NONE = object()


def _show(pattern: str, value: float | None) -> str:
    return "-" if value is None else pattern.format(value)


def _signed(pattern: str, value: float) -> str:
    text = pattern.format(value)
    return text if text.startswith("-") else "+" + text


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(
        value) else None


def _flatten(value: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for key in sorted(value):
            _flatten(value[key], f"{prefix}.{key}" if prefix else str(key), out)
    else:
        out[prefix] = value


def _read(path: Path) -> tuple[dict, dict | None]:
    from studio.core.owned_dir import read_json

    config_file = path / "config.json"
    if not os.path.lexists(config_file):
        raise RunDiffError(f"{path}: not a run directory (no config.json)")
    try:  # inside the run folder only: a link or a special file there is refused (ForeignEntry)
        config = read_json(config_file)
        metrics_file = path / "metrics.json"
        metrics = read_json(metrics_file) if os.path.lexists(metrics_file) else None
    except (OSError, ValueError) as exc:
        raise RunDiffError(f"{path}: cannot read the run ({str(exc).splitlines()[0][:120]})") from None
    if not isinstance(config, dict) or (metrics is not None and not isinstance(metrics, dict)):
        raise RunDiffError(f"{path}: config.json or metrics.json is not a JSON object")
    return config, metrics


def diff_runs(a: str | Path, b: str | Path, registry=None, split: str = "test") -> RunDiff:
    """Run A against run B (``registry``: node defaults for the graph diff; None: the studio's nodes)."""
    from studio.core.graph_file import GraphFileError, load_graph

    a, b = Path(a), Path(b)
    (config_a, metrics_a), (config_b, metrics_b) = _read(a), _read(b)
    if registry is None:
        from studio.nodes import default_registry

        registry = default_registry()
    graph, error = None, ""
    ensembles = [(path, config) for path, config in ((a, config_a), (b, config_b)) if config.get("kind") == "ensemble"]
    if ensembles:  # its graph.json is a member's, only there to load the data: not a model of its own
        from studio.train.ensemble_kind import describe

        error = "; ".join(describe(path, config) for path, config in ensembles)
    else:
        try:
            graph = diff_graphs(load_graph(a / "graph.json"), load_graph(b / "graph.json"), registry)
        except GraphFileError as exc:
            error = str(exc)
    flat_a: dict[str, Any] = {}
    flat_b: dict[str, Any] = {}
    for key in _SETTINGS:
        if key == "training" and ensembles:  # an ensemble trains nothing: a run's training settings differ from
            continue                         # nothing of it
        default = "run" if key == "kind" else None  # a plain run's config.json has no kind
        for config, flat in ((config_a, flat_a), (config_b, flat_b)):
            if key in config or default is not None:
                _flatten(config.get(key, default), key, flat)
    settings = []
    for key in sorted(set(flat_a) | set(flat_b)):
        if any(key == gone or key.startswith(gone + ".") for gone in _LEFT_OUT):
            continue
        x, y = flat_a.get(key, _NONE), flat_b.get(key, _NONE)
        if x is _NONE or y is _NONE or not same_value(x, y):
            settings.append((key, x, y))

    from studio.train.run_figures import split_figures

    fig_a, fig_b = split_figures(a, metrics_a, split), split_figures(b, metrics_b, split)
    rows = [(key, label, pattern, _number(fig_a.get(key)), _number(fig_b.get(key))) for key, label, pattern in FIGURES]
    return RunDiff(a, b, split, graph, error, settings, rows)
