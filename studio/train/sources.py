"""Loading the bars a graph trains on, shaped to the graph's input spec."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from studio.core.document import Graph, InputSpec
from studio.data.panel import BarPanel, DataError
from studio.train.config import SourceSpec


@dataclass
class LoadedData:
    panel: BarPanel
    #: the synthetic market (it knows the oracle), or None for imported bars
    market: Any = None

    def oracle_ic(self, dates: np.ndarray, lag: int, horizon: int) -> float | None:
        if self.market is None or len(dates) == 0:
            return None
        return float(self.market.oracle_ic(dates, lag=lag, horizon=horizon))

    def fingerprint(self) -> str:
        """A hash of the bars and trading flags (recorded with every run)."""
        return self.panel.fingerprint()


def load_source(spec: SourceSpec, spec_of_graph: InputSpec) -> LoadedData:
    """Bars for a graph: the synthetic market is generated with the graph's bars per day and
    features; imported bars are resampled to the graph's bars per day when it divides theirs."""
    if spec.kind == "synthetic":
        from studio.data.synthetic import SyntheticConfig, generate

        known = {f.name for f in fields(SyntheticConfig)}
        unknown = sorted(set(spec.synthetic) - known)
        if unknown:
            raise DataError(f"synthetic: unknown setting {unknown[0]!r} (known: {', '.join(sorted(known))})")
        options = dict(spec.synthetic)
        options.setdefault("bars_per_day", spec_of_graph.bars_per_day)
        wanted = list(dict.fromkeys([*options.get("features", ()), *spec_of_graph.features]))
        options["features"] = tuple(wanted) or ("close", "volume", "turnover")
        from studio.data import store
        from studio.data.synthetic import generate_on_disk

        try:
            config = SyntheticConfig(**options)
            size = config.stocks * config.days * config.bars_per_day * len(config.features) * 4
            market = (generate_on_disk if size > store.on_disk_above() else generate)(config)
        except (TypeError, ValueError) as exc:
            raise DataError(f"synthetic: {exc}") from None
        return LoadedData(fit_panel(market.panel, spec_of_graph, "the synthetic market"), market)
    from studio.data.importer import import_config_from_options
    from studio.data.load import load_bars

    try:
        config = import_config_from_options({}, base=spec.importer)
    except DataError as exc:
        raise DataError(f"{spec.path}: {exc}") from None
    panel = load_bars(spec.path, config)
    return LoadedData(fit_panel(panel, spec_of_graph, str(spec.path)))


def fit_panel(panel: BarPanel, spec: InputSpec, source: str) -> BarPanel:
    missing = [f for f in spec.features if f not in panel.features]
    if missing:
        raise DataError(f"{source}: the graph needs feature {missing[0]!r}, the data has "
                        f"{', '.join(panel.features)}")
    have, want = panel.bars_per_day, spec.bars_per_day
    if have == want:
        return panel
    if want < have and have % want == 0:
        return panel.resample(want)
    fits = [d for d in range(have, 0, -1) if have % d == 0]
    raise DataError(f"{source}: the graph expects {want} bars per day, the data has {have} "
                    f"(train with --bars-per-day N, N one of {', '.join(map(str, fits))})")


def graph_fingerprint(graph: Graph) -> str:
    from studio.core.graph_file import dumps_graph

    return hashlib.sha256(dumps_graph(graph).encode()).hexdigest()[:16]
