"""Every figure of a run that a table, the tear sheet or a sweep shows, declared once (plain data, no numpy).

The readers take their lists from ``METRICS``, in its order (the tear sheet's headline in its own order,
``headline``): ``studio compare`` and ``studio train``'s tables (studio.cli.train_commands), the GUI's Runs
table and its across-seeds view (studio.gui.runs), the tear sheet's headline (studio.train.report), run diffs
(studio.train.run_diff) and sweep objectives (studio.train.sweep). Adding a metric is one entry here plus
its function (studio.metrics.summarize writes the key into metrics.json).
"""

from __future__ import annotations

from dataclasses import dataclass

#: where a metric shows (MetricSpec.shows): studio compare's and studio train's tables
COMPARE = "compare"
#: studio compare --mlflow (the figures logged to MLflow)
MLFLOW = "mlflow"
#: the two-run diff under studio compare (studio.train.run_diff)
DIFF = "diff"
#: the GUI's Runs table
RUNS = "runs"
#: mean +- std across seeds: studio compare's seed table and the Runs table's "group by seed" view
SEEDS = "seeds"
PLACES = (COMPARE, MLFLOW, DIFF, RUNS, SEEDS)
#: where a figure is read from (MetricSpec.source): the run's metrics.json, or its baselines.json (the factor
#: baselines on the run's own dates, studio.train.baselines); studio.train.run_figures reads both for every reader
METRICS_FILE = "metrics.json"
BASELINES_FILE = "baselines.json"


@dataclass(frozen=True)
class MetricSpec:
    """One figure of metrics.json."""

    #: metrics.json key (ic_t and dates come from studio.metrics.sample_size)
    key: str
    label: str
    #: a str.format pattern of the value
    format: str
    #: None where neither (a count of dates)
    higher_is_better: bool | None
    #: a sweep may maximise it (the sweep maximises, so it must be higher-is-better)
    objective: bool = False
    #: the places of PLACES where it shows, besides the headline
    shows: frozenset[str] = frozenset()
    #: its place in the tear sheet's headline (which pairs each IC with its ICIR); None: not there
    headline: int | None = None
    #: the Runs table's narrower header and format, where they differ
    runs_label: str | None = None
    runs_format: str | None = None
    #: the file it comes from (METRICS_FILE or BASELINES_FILE)
    source: str = METRICS_FILE
    #: the key of its t-statistic, shown beside it in brackets ("0.012 (1.1)"), where it has one
    t_key: str | None = None

    def text(self, value) -> str:
        return self.format.format(value)

    @property
    def runs_header(self) -> str:
        return self.runs_label or self.label

    def runs_text(self, value) -> str:
        return (self.runs_format or self.format).format(value)

    def cell(self, figures: dict, runs: bool = False) -> str:
        """Its text in a table from a run's figures: "-" where the run has none, its t in brackets."""
        value = figures.get(self.key)
        if not isinstance(value, int | float) or value != value:
            return "-"
        text = self.runs_text(value) if runs else self.text(value)
        t = figures.get(self.t_key) if self.t_key else None
        return text + (f" ({t:.1f})" if isinstance(t, int | float) and t == t else "")


_ALL_TABLES = frozenset({COMPARE, MLFLOW, DIFF, RUNS, SEEDS})

METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("ic", "IC", "{:.4f}", True, objective=True, shows=_ALL_TABLES, headline=0),
    MetricSpec("rank_ic", "RankIC", "{:.4f}", True, objective=True, shows=_ALL_TABLES, headline=2),
    MetricSpec("icir", "ICIR", "{:.3f}", True, objective=True, shows=_ALL_TABLES, headline=1,
               runs_format="{:.2f}"),
    MetricSpec("rank_icir", "RankICIR", "{:.3f}", True, objective=True, shows=frozenset({COMPARE, MLFLOW, DIFF}),
               headline=3),
    MetricSpec("annual_return", "LS ann. return", "{:.2%}", True, objective=True, shows=_ALL_TABLES, headline=5,
               runs_label="LS ann. ret."),
    MetricSpec("sharpe", "Sharpe", "{:.2f}", True, objective=True, shows=_ALL_TABLES, headline=6),
    MetricSpec("net_annual_return", "net ann. return", "{:.2%}", True, headline=7),
    MetricSpec("net_sharpe", "net Sharpe", "{:.2f}", True, headline=8),
    MetricSpec("max_drawdown", "max DD", "{:.2%}", True, shows=frozenset({COMPARE, MLFLOW, DIFF, RUNS}), headline=9),
    MetricSpec("turnover", "turnover", "{:.2f}", False, shows=frozenset({COMPARE, MLFLOW, DIFF}), headline=10),
    # the factor baselines judged on the run's own dates (baselines.json; docs/metrics.md "Baselines")
    MetricSpec("best_baseline_ic", "best baseline IC", "{:.4f}", None, shows=frozenset({COMPARE, MLFLOW, DIFF, RUNS}),
               runs_label="best base. IC", source=BASELINES_FILE),
    MetricSpec("incremental_ic", "incremental IC (t)", "{:.4f}", True, shows=frozenset({COMPARE, MLFLOW, DIFF, RUNS}),
               runs_label="incr. IC (t)", source=BASELINES_FILE, t_key="incremental_ic_t"),
    MetricSpec("oracle_ic", "oracle IC", "{:.4f}", True, shows=frozenset({COMPARE, RUNS})),
    MetricSpec("ic_t", "IC t", "{:.2f}", True, shows=frozenset({COMPARE, RUNS}), headline=4),
    MetricSpec("dates", "dates", "{}", None, shows=frozenset({COMPARE, RUNS}), headline=11),
)

BY_KEY = {spec.key: spec for spec in METRICS}


def shown_in(place: str) -> tuple[MetricSpec, ...]:
    """The metrics that show in one of PLACES, in the declaration's order."""
    if place not in PLACES:
        raise ValueError(f"no place {place!r} (one of {', '.join(PLACES)})")
    return tuple(spec for spec in METRICS if place in spec.shows)


def headline() -> tuple[MetricSpec, ...]:
    """The tear sheet's headline figures, in its order."""
    return tuple(sorted((spec for spec in METRICS if spec.headline is not None), key=lambda spec: spec.headline))


def objectives() -> tuple[str, ...]:
    """The keys a sweep may maximise."""
    return tuple(spec.key for spec in METRICS if spec.objective)
