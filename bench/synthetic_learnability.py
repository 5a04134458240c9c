"""Is the synthetic market's planted alpha learnable? Train graphs/default.json on it for a fixed time and
read its test IC against the oracle IC.

Per market seed: generate the default synthetic market, build ``CrossSectionData(panel, DataConfig())``
(robust normalisation, z-scored labels, 60/20/20 split with a gap), build graphs/default.json with
``build_model(..., seed=model_seed)``, and train on 2 threads with Adam on batches of a few shuffled
training dates, with an IC loss: minus the mean over the batch's dates of the Pearson correlation of the
scores and the (z-scored) labels of the stocks that have a label. After each epoch (the last one cut at
the time budget) the validation IC (studio.metrics.daily_ic on raw labels, mean over the valid dates) is
measured; the model of the best epoch is scored on the test dates and compared with
``market.oracle_ic(test dates)``, the IC of the true expected label on the same dates.

The budget (``--seconds``, default 60) counts training and the validation passes, not data preparation.
One line is printed per epoch; the LAST line is JSON: {"test_ic", "oracle_ic", "share_of_oracle",
"seconds"} (with several seeds: the mean over seeds, and "runs" with each seed's figures).

    python bench/synthetic_learnability.py [--seconds 60] [--seeds 0 1 2] [--lr 0.002] [--dates-per-batch 2]
                                           [--set alpha_volume=0.001 ...]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from studio.core.graph_file import load_graph
from studio.data.dataset import CrossSectionData, DataConfig
from studio.data.synthetic import COMPONENTS, SyntheticConfig, generate
from studio.metrics import daily_ic
from studio.torchgraph.builder import build_model

GRAPH = Path(__file__).resolve().parent.parent / "graphs" / "default.json"


def ic_loss(scores: torch.Tensor, label: torch.Tensor, has_label: torch.Tensor) -> torch.Tensor:
    """Minus the mean over dates of the Pearson correlation of scores and labels over has_label."""
    w = has_label.float()
    n = w.sum(dim=1).clamp(min=1.0)
    s = scores - (scores * w).sum(dim=1, keepdim=True) / n[:, None]
    y = label - (label * w).sum(dim=1, keepdim=True) / n[:, None]
    s, y = s * w, y * w
    corr = (s * y).sum(dim=1) / ((s * s).sum(dim=1).sqrt() * (y * y).sum(dim=1).sqrt() + 1e-8)
    return -corr[n > 2].mean()


@torch.no_grad()
def predict(model: torch.nn.Module, data: CrossSectionData, dates: np.ndarray, chunk: int = 16) -> np.ndarray:
    """(D, S) scores on ``dates`` (NaN elsewhere and where a stock is not a sample)."""
    model.eval()
    out = np.full(data.raw_label.shape, np.nan)
    for i in range(0, len(dates), chunk):
        batch = data.batch(dates[i:i + chunk])
        scores = model(torch.from_numpy(batch.x), torch.from_numpy(batch.mask)).numpy()
        out[batch.dates] = np.where(batch.mask, scores, np.nan)
    model.train()
    return out


def mean_ic(scores: np.ndarray, data: CrossSectionData, dates: np.ndarray) -> float:
    ic = daily_ic(scores, data.raw_label)[dates]
    ic = ic[np.isfinite(ic)]
    return float(ic.mean()) if len(ic) else float("nan")


def _mean_corr(scores: np.ndarray, reference: np.ndarray, dates: np.ndarray) -> float:
    ic = daily_ic(scores, reference)[dates]
    ic = ic[np.isfinite(ic)]
    return float(ic.mean()) if len(ic) else float("nan")


def run(seed: int, seconds: float, lr: float, dates_per_batch: int, model_seed: int,
        overrides: dict | None = None, report=print) -> dict:
    t0 = time.perf_counter()
    market = generate(SyntheticConfig(seed=seed), **(overrides or {}))
    data = CrossSectionData(market.panel, DataConfig())
    splits = data.splits
    model = build_model(load_graph(GRAPH), seed=model_seed)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    rng = np.random.default_rng(model_seed)
    report(f"seed {seed}: data ready in {time.perf_counter() - t0:.1f} s; train / valid / test dates "
           f"{len(splits.train)} / {len(splits.valid)} / {len(splits.test)}")

    start = time.perf_counter()
    best = (-np.inf, None, 0)
    epoch, validation_s = 0, 0.0
    # training stops early enough for the last validation pass to end within the budget
    while time.perf_counter() - start + validation_s < seconds:
        epoch += 1
        losses = []
        for batch in data.batches("train", dates_per_batch=dates_per_batch, shuffle=True, rng=rng):
            scores = model(torch.from_numpy(batch.x), torch.from_numpy(batch.mask))
            loss = ic_loss(scores, torch.from_numpy(batch.label), torch.from_numpy(batch.has_label))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            losses.append(-loss.item())
            if time.perf_counter() - start + validation_s > seconds:
                break
        t_valid = time.perf_counter()
        valid = mean_ic(predict(model, data, splits.valid), data, splits.valid)
        validation_s = time.perf_counter() - t_valid
        if valid > best[0]:
            best = (valid, {k: v.clone() for k, v in model.state_dict().items()}, epoch)
        report(f"  epoch {epoch}: {len(losses)} batches, train IC {np.mean(losses):.4f}, "
               f"valid IC {valid:.4f}, {time.perf_counter() - start:.1f} s")
    elapsed = time.perf_counter() - start
    model.load_state_dict(best[1])
    scores = predict(model, data, splits.test)
    test = mean_ic(scores, data, splits.test)
    oracle = market.oracle_ic(splits.test)
    valid_oracle = market.oracle_ic(splits.valid)
    # how much of each planted component the model picked up: mean daily correlation of the test scores
    # with each component's part of the oracle
    parts = {c: _mean_corr(scores, market.expected_label(components=c), splits.test) for c in COMPONENTS}
    parts["per-stock"] = _mean_corr(scores, market.expected_label(components=COMPONENTS[:3]), splits.test)
    parts["all"] = _mean_corr(scores, market.expected_label(), splits.test)
    report("  correlation of the test scores with the oracle's parts: "
           + ", ".join(f"{k} {v:.2f}" for k, v in parts.items()))
    result = {"seed": seed, "test_ic": test, "oracle_ic": oracle, "share_of_oracle": test / oracle,
              "valid_ic": best[0], "best_epoch": best[2], "epochs": epoch, "seconds": elapsed}
    report(f"seed {seed}: best epoch {best[2]} (valid IC {best[0]:.4f}, oracle {valid_oracle:.4f}); "
           f"test IC {test:.4f}, oracle IC {oracle:.4f}, share {test / oracle:.2f}")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="training budget per seed (default 60)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="market seeds (default 0)")
    parser.add_argument("--model-seed", type=int, default=0)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--dates-per-batch", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="override a SyntheticConfig field (a number), e.g. --set alpha_volume=0.001")
    args = parser.parse_args(argv)
    overrides = {}
    for item in args.set:
        name, _, value = item.partition("=")
        overrides[name] = float(value)
    torch.set_num_threads(args.threads)
    runs = [run(seed, args.seconds, args.lr, args.dates_per_batch, args.model_seed, overrides)
            for seed in args.seeds]
    if len(runs) == 1:
        summary = {k: runs[0][k] for k in ("test_ic", "oracle_ic", "share_of_oracle", "seconds")}
    else:
        summary = {k: float(np.mean([r[k] for r in runs])) for k in ("test_ic", "oracle_ic",
                                                                     "share_of_oracle", "seconds")}
        summary["min_share_of_oracle"] = min(r["share_of_oracle"] for r in runs)
        summary["runs"] = [{k: r[k] for k in ("seed", "test_ic", "oracle_ic", "share_of_oracle", "best_epoch",
                                              "epochs")} for r in runs]
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
