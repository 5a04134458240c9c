"""A run's figures of one split as every table reads them: metrics.json's, and the baselines' figures of
baselines.json (studio.train.baselines) under the keys studio.metric_specs declares with source
BASELINES_FILE. studio compare, the GUI's Runs table, run diffs and MLflow read them here, so a figure means
the same wherever it shows. Plain JSON reading (inside the run folder only: a link there is refused)."""

from __future__ import annotations

import math
import os
from pathlib import Path

from studio.metric_specs import BASELINES_FILE

#: what a table says under it when a run has no baselines.json
NO_BASELINES_NOTE = "- in the baseline columns: the run has no baselines.json (studio baselines RUN makes it)"
#: |t| under this is no evidence (as studio.train.baselines.T_EVIDENCE; docs/metrics.md "Small samples")
T_EVIDENCE = 2.0
#: a training IC with t above this that does not carry over to the test dates reads as overfitting
T_OVERFIT = 3.0


def _number(value) -> float | None:
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def read_baselines(run_dir: str | os.PathLike[str]) -> dict | None:
    """RUN/baselines.json, or None where the run has none or it cannot be read."""
    from studio.core.owned_dir import read_json

    path = Path(run_dir) / BASELINES_FILE
    if not os.path.lexists(path):
        return None
    try:
        data = read_json(path)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def baseline_figures(baselines: dict | None, split: str = "test") -> dict:
    """The baselines' figures of ``split``: the best baseline's IC and name on that split (a baseline's sign
    is its definition's, so its train IC is a figure too) and, on the test dates, the incremental IC and its
    t. Empty where the run has no baselines.json or the split has none."""
    if not baselines or split not in ("test", "train"):
        return {}
    entries = [b for b in baselines.get("baselines") or [] if isinstance(b, dict)]
    scored = [(ic, b) for b in entries if (ic := _number((b.get(split) or {}).get("ic"))) is not None]
    out: dict = {}
    if scored:
        ic, best = max(scored, key=lambda pair: pair[0])
        out.update(best_baseline_ic=ic, best_baseline=str(best.get("name", "?")))
    # the model's IC on exactly the baselines' cross-sections, which the words compare the best one with
    out["baselines_model_ic"] = _number(((baselines.get("model") or {}).get(split) or {}).get("ic"))
    if split == "test":
        incremental = baselines.get("incremental") or {}
        out.update(incremental_ic=_number(incremental.get("ic")), incremental_ic_t=_number(incremental.get("ic_t")))
    return out


def split_figures(run_dir: str | os.PathLike[str], metrics: dict | None, split: str = "test") -> dict:
    """metrics.json's figures of ``split`` with the baselines' beside them (see the module's docstring)."""
    figures = dict(((metrics or {}).get("splits") or {}).get(split) or {})
    figures.update(baseline_figures(read_baselines(run_dir), split))
    return figures


def baseline_words(figures: dict) -> list[str]:
    """What a table row says in words about the baselines (split_figures' keys): a baseline that beats the
    model on the same dates, an incremental IC without evidence."""
    out = []
    ic = _number(figures.get("baselines_model_ic", figures.get("ic")))
    best = _number(figures.get("best_baseline_ic"))
    if ic is not None and best is not None and best > ic:
        out.append(f"{figures.get('best_baseline')} beats the model (IC {best:.3f} vs {ic:.3f})")
    if "incremental_ic" in figures:
        t = _number(figures.get("incremental_ic_t"))
        if t is None or abs(t) < T_EVIDENCE:
            shown = "n/a" if t is None else f"{t:.1f}"
            out.append(f"incremental IC t {shown}: no evidence it adds to the baselines")
    return out


def overfit_words(train: dict, test: dict) -> str | None:
    """A run's training IC significant (t > T_OVERFIT) and its test IC not (t < T_EVIDENCE), in words."""
    train_t, test_t = _number(train.get("ic_t")), _number(test.get("ic_t"))
    if train_t is not None and train_t > T_OVERFIT and (test_t is None or test_t < T_EVIDENCE):
        shown = "n/a" if test_t is None else f"{test_t:.1f}"
        return f"training IC t {train_t:.1f} but test IC t {shown}: overfitting?"
    return None


def seed_spread_words(mean: float | None, std: float | None) -> str | None:
    """A seed group whose test IC varies across seeds more than its mean, in words."""
    mean, std = _number(mean), _number(std)
    if mean is not None and std is not None and std > abs(mean):
        return f"IC std over its seeds {std:.3f} > |mean| {abs(mean):.3f}: the seed decides the sign"
    return None
