"""Loading the bars a graph trains on, shaped to the graph's input spec."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from studio.core.document import Graph, InputSpec
from studio.data.panel import BarPanel, DataError, missing_features
from studio.train.config import SourceSpec
from studio.train.data_sources import DATA_SOURCES


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
    """Bars for a graph from the source its kind declares (studio.train.data_sources): the synthetic
    market is generated with the graph's bars per day and features; imported bars are resampled to the
    graph's bars per day when it divides theirs."""
    bars = DATA_SOURCES[spec.kind].load(spec.path, spec.source_settings, spec_of_graph)
    return LoadedData(fit_panel(bars.panel, spec_of_graph, bars.name), bars.market)


class BarsPerDayMismatch(DataError):
    """Bars per day that neither equal the graph's nor are a multiple of them. The message advises
    training; ``source``, ``have`` and ``want`` let another command (predict) give its own."""

    def __init__(self, source: str, have: int, want: int) -> None:
        self.source, self.have, self.want = source, have, want
        fits = [d for d in range(have, 0, -1) if have % d == 0]
        super().__init__(f"{source}: the graph expects {want} bars per day, the data has {have} "
                         f"(train with --bars-per-day N, N one of {', '.join(map(str, fits))})")


def fit_panel(panel: BarPanel, spec: InputSpec, source: str) -> BarPanel:
    missing = missing_features(list(spec.features), list(panel.features), panel.notes)
    if missing:
        raise DataError(f"{source}: {missing}")
    have, want = panel.bars_per_day, spec.bars_per_day
    if have == want:
        return panel
    if want < have and have % want == 0:
        return panel.resample(want)
    raise BarsPerDayMismatch(source, have, want)


def graph_fingerprint(graph: Graph) -> str:
    from studio.core.graph_file import dumps_graph

    return hashlib.sha256(dumps_graph(graph).encode()).hexdigest()[:16]
