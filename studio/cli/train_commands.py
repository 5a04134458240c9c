"""Commands that train and compare: ``studio train`` and ``studio compare``."""

from __future__ import annotations

import argparse
import json
import math
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from studio.cli.data_commands import add_option_flags, add_source_flags, option_values, read_settings
from studio.cli.errors import CliError, disk_full_line
from studio.cli.output import control
from studio.cli.table import format_table
from studio.core.text import printable, status_line
from studio.metric_specs import BY_KEY, COMPARE, MLFLOW, SEEDS, shown_in
from studio.train.config import LOSSES, OPTIMIZERS

#: (metrics.json key, header, format) of the tables of studio compare and studio train
COMPARE_COLUMNS = [(spec.key, spec.label, spec.format) for spec in shown_in(COMPARE)]
#: the same of the figures logged to MLflow (studio compare --mlflow)
MLFLOW_COLUMNS = [(spec.key, spec.label, spec.format) for spec in shown_in(MLFLOW)]


def few_dates_note() -> str:
    """What a "!" beside the date count means (printed under every table that shows one)."""
    from studio.metrics import MIN_DATES

    return (f"! fewer than {MIN_DATES} dates: the figures of that row mean little (IC t = mean IC / "
            "(std / sqrt(dates)); |t| < 2 is no evidence of skill)")


def _figure_cells(figures: dict) -> tuple[list[str], bool]:
    """The COMPARE_COLUMNS cells of one split's figures, and whether they rest on too few dates."""
    from studio.metrics import sample_size

    dates, t, few = sample_size(figures)
    values = {**figures, "ic_t": t, "dates": dates}
    cells = [BY_KEY[k].cell(values) if BY_KEY[k].t_key else _fmt(values.get(k), f) for k, _, f in COMPARE_COLUMNS]
    if few:
        cells[[k for k, _, _ in COMPARE_COLUMNS].index("dates")] += " !"
    return cells, few


def add_train_commands(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "train", help="train one or more graphs in turn; writes a run directory for each",
        description="Train graphs one after another (a queue) on the synthetic market or imported bars. "
                    "Each run writes runs/<time>-<name>/ with the frozen graph, config, per-epoch and final "
                    "metrics, daily figures, predictions, the best weights and a PnL chart. Ctrl-C stops "
                    "the current run cleanly (its best epoch is kept); a second Ctrl-C quits.")
    p.add_argument("graphs", nargs="*", metavar="GRAPH")
    add_source_flags(p)
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--lr", type=float, default=None, help="learning rate")
    p.add_argument("--loss", choices=LOSSES, default=None)
    p.add_argument("--optimizer", choices=OPTIMIZERS, default=None)
    p.add_argument("--dates-per-batch", type=_dates_per_batch, default=None, metavar="auto|N",
                   help="whole cross-sections of N dates per step (default auto: the most, up to 4, whose step "
                        "fits half the free memory of the device; a number that cannot fit is refused)")
    p.add_argument("--patience", type=int, default=None, help="early stopping on validation IC (0: off)")
    p.add_argument("--device", default=None, help="auto (default), cpu, cuda or cuda:N")
    p.add_argument("--amp", action="store_true", help="mixed precision: bfloat16 autocast (CUDA)")
    p.add_argument("--compile-steps", action="store_true",
                   help="compile each recurrent cell's per-step update with torch.compile (docs/training.md)")
    p.add_argument("--feed", choices=("auto", "host", "prefetch", "device"), default=None,
                   help="how batches reach the device (default auto: resident on a GPU when they fit)")
    p.add_argument("--sync-every", type=int, default=None, metavar="K",
                   help="read the loss back from the device every K steps (default: 16 on CUDA, 1 on the CPU)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: one per core)")
    p.add_argument("--max-minutes", type=float, default=None, help="stop each run after this long")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--normalize", choices=("robust", "cs_zscore", "cs_rank", "none"), default=None,
                   help="feature scaling after the per-bar normalisation (docs/data.md)")
    p.add_argument("--days", type=int, default=None, metavar="N",
                   help="train with an N-day window instead of the graph's (the run records the changed graph)")
    p.add_argument("--bars-per-day", type=int, default=None, metavar="N",
                   help="train with N bars per day instead of the graph's (imported bars are resampled to it)")
    p.add_argument("--lag", type=int, default=None, help="label entry lag in days (default 1)")
    p.add_argument("--horizon", type=int, default=None, help="label horizon in days (default 1)")
    p.add_argument("--config", metavar="JSON", help="training settings from a JSON file (options override)")
    p.add_argument("--out", default="runs", metavar="DIR", help="where run directories go (default runs/)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from its checkpoint")
    p.add_argument("--walk-forward", type=int, default=None, metavar="K",
                   help="train one model per fold of K walk-forward folds and judge them on their test dates "
                        "together (docs/research.md)")
    p.add_argument("--expanding", action="store_true",
                   help="walk-forward folds train on every date before their validation window (default: a "
                        "window as long as the first fold's)")
    p.add_argument("--fold-dates", type=int, default=None, metavar="N",
                   help="validation and test dates per walk-forward fold (default: usable dates / (K + 3))")
    p.add_argument("--mlflow", nargs="?", const="", default=None, metavar="URI",
                   help="also log each run to MLflow (default store: sqlite:///mlruns/mlflow.db; "
                        "pip install -e '.[track]')")
    p.add_argument("--max-params", type=int, default=None, metavar="N",
                   help="refuse a model with more parameters than N (default 50,000,000)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar, only the final table")
    add_option_flags(p, cache_flag=False)
    p.set_defaults(run=train_command)

    p = commands.add_parser("reproduce", help="train a run again and check that every figure comes out the same",
                            description="Re-run RUN_DIR from its recorded graph, settings, seed and data "
                                        "(with its thread count) and compare every figure of every split, "
                                        "exactly on the CPU. Refused, with the reason, when the data, the "
                                        "studio's or torch's version differ, the run was stopped (by hand or "
                                        "by its time limit) or interrupted, or it is still running. Exit 0 "
                                        "when all match, 1 when any differs, 2 when it cannot be reproduced "
                                        "here.")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--out", metavar="DIR", help="where the re-run's directory goes (default: a temporary folder)")
    p.add_argument("--data", metavar="PATH", help="the run's data at this path (default: the absolute path "
                                                  "the run recorded, else the path as it was typed)")
    p.set_defaults(run=reproduce_command)

    p = commands.add_parser("compare", help="the comparison table of runs (IC, RankIC, ICIR, return, Sharpe)",
                            description="One row per run: IC, RankIC, ICIR, annualised long-short return, "
                                        "Sharpe, max drawdown of a split. RUN_DIR may also be a folder "
                                        "of runs.")
    p.add_argument("runs", nargs="*", metavar="RUN_DIR")
    p.add_argument("--mlflow", nargs="?", const="", default=None, metavar="URI",
                   help="the runs logged to MLflow (train --mlflow) instead of run directories")
    p.add_argument("--split", choices=("train", "valid", "test"), default="test")
    p.add_argument("--sort", default=None, metavar="COLUMN", help="sort by a column (ic, sharpe, ...)")
    p.add_argument("--csv", metavar="FILE", help="also write the table as CSV")
    p.add_argument("--markdown", metavar="FILE", help="also write the table as Markdown")
    p.set_defaults(run=compare_command)


# ---- train ----------------------------------------------------------------------------------------

def _dates_per_batch(text: str) -> int | str:
    if text == "auto":
        return text
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expects auto or an integer >= 1, gets {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expects auto or an integer >= 1, gets {value}")
    return value


def _key_values(items: list[str], what: str) -> dict[str, Any]:
    out = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise CliError(f"{what}: expects KEY=VALUE, gets {item!r}")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


def _train_config(args: argparse.Namespace):
    from studio.train.config import ConfigError, TrainConfig

    settings: dict[str, Any] = {}
    if args.config:
        try:
            settings = json.loads(Path(args.config).read_text(encoding="utf-8"))
        except OSError as exc:
            raise CliError(f"{args.config}: cannot read ({exc.strerror or exc})") from None
        except json.JSONDecodeError as exc:
            raise CliError(f"{args.config}: not JSON (line {exc.lineno}: {exc.msg})") from None
        if not isinstance(settings, dict):
            raise CliError(f"{args.config}: expects a JSON object of training settings")
    for key in ("epochs", "lr", "loss", "optimizer", "dates_per_batch", "patience", "device", "threads",
                "max_minutes", "seed", "feed", "sync_every", "max_params"):
        value = getattr(args, key)
        if value is not None:
            settings[key] = value
    if args.amp:
        settings["amp"] = True
    if args.compile_steps:
        settings["compile_steps"] = True
    try:
        return TrainConfig.from_json(settings)
    except ConfigError as exc:
        raise CliError(f"{args.config + ': ' if args.config else ''}{exc}") from None
    except TypeError as exc:
        raise CliError(f"training settings: {exc}") from None


def _source(args: argparse.Namespace):
    """The SourceSpec of ``--data`` and the flags of the source it names (studio.train.data_sources)."""
    from studio.train.config import SourceSpec
    from studio.train.data_sources import DATA_SOURCES, source_for_data

    source = source_for_data(args.data)
    path = source.path_of(args.data)
    if path is not None and not Path(path).exists():
        takes = " or ".join([s.name for s in DATA_SOURCES.values() if s.name is not None]
                            + [f"{s.prefix}DIR" for s in DATA_SOURCES.values() if s.prefix] + ["a path"])
        raise CliError(f"{path}: no such file or folder (--data takes {takes})")
    flag = source.settings_flag
    # the option flags override the same settings given as KEY=VALUE
    given = {**_key_values(getattr(args, flag.dest), flag.flag), **option_values(args, source)}
    return SourceSpec.of(source.kind, str(Path(path)) if path is not None else None,
                         read_settings(source, given))


class _Progress:
    """One line per run on a terminal (redrawn), one line per epoch otherwise."""

    def __init__(self, name: str, quiet: bool) -> None:
        self.name, self.quiet = name, quiet
        self.tty = sys.stderr.isatty()
        self.best = None
        self.last_draw = 0.0
        self.valid = ""

    def __call__(self, record: dict) -> None:
        if self.quiet:
            return
        kind = record["kind"]
        if kind == "start":
            oracle = record["oracle_ic"].get("test")
            extra = f", oracle test IC {oracle:.3f}" if oracle is not None else ""
            print(f"[{self.name}] {record['parameters']:,} parameters on {record['device']} "
                  f"({record['threads']} threads), {record['steps_per_epoch']} steps per epoch{extra}; "
                  f"{record['batch']}; run {record['run_dir']}", file=sys.stderr)
        elif kind == "step" and self.tty and time.monotonic() - self.last_draw > 0.1:
            self.last_draw = time.monotonic()
            done = record["step"] / record["steps"]
            bar = "#" * int(done * 20)
            eta = time.strftime("%H:%M:%S", time.gmtime(record["eta"]))
            control("\r")
            print(f"[{self.name}] epoch {record['epoch']} [{bar:<20}] loss {record['loss']:+.4f}"
                  f"{self.valid} | {eta} left ", end="", file=sys.stderr, flush=True)
        elif kind == "epoch":
            ic = record["valid"]["ic"]
            self.valid = f" | valid IC {ic:.4f} (best epoch {record['best_epoch']})" if ic is not None else ""
            line = (f"[{self.name}] epoch {record['epoch']}/{record['epochs']}: train loss "
                    f"{record['train_loss']:+.4f}, valid loss {record['valid_loss']:+.4f}, valid IC "
                    f"{_fmt(ic, '{:.4f}')}, RankIC {_fmt(record['valid']['rank_ic'], '{:.4f}')}, "
                    f"{record['seconds']:.1f} s{' *' if record['improved'] else ''}")
            if self.tty:
                control("\r")
            print(line + " " * 10, file=sys.stderr)
        elif kind == "done":
            print(f"[{self.name}] {status_line(record['status'], record['message'])}", file=sys.stderr)


def _fmt(value: Any, pattern: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return pattern.format(value)


def train_command(args: argparse.Namespace) -> int:
    from studio.data.panel import DataError
    from studio.train.config import ConfigError
    from studio.train.engine import TrainingError
    from studio.train.walk_forward import WalkForwardError

    if not args.graphs and not args.resume:
        raise CliError("train: give one or more GRAPH files, or --resume RUN_DIR")
    if args.walk_forward is None and (args.expanding or args.fold_dates is not None):
        raise CliError("train: --expanding and --fold-dates go with --walk-forward K")
    jobs = _jobs(args)

    tracker = None
    if args.mlflow is not None:  # before anything trains: a missing extra is one line, not a lost run
        from studio.train.tracking import RunTracker, TrackingError

        try:
            tracker = RunTracker(args.mlflow or None)
        except TrackingError as exc:
            raise CliError(str(exc)) from None
    tracking_failed = False
    cancel = threading.Event()
    interrupted = {"count": 0}

    def on_interrupt(signum, frame):
        interrupted["count"] += 1
        if interrupted["count"] > 1:
            raise KeyboardInterrupt
        cancel.set()
        print("\nstudio: stopping the current run (Ctrl-C again to quit)", file=sys.stderr)

    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, on_interrupt) if main_thread else None
    results = []
    try:
        for name, trainer in jobs:
            if cancel.is_set():
                break
            progress = _Progress(name, args.quiet)
            try:
                for record in trainer.run(cancel, resume=bool(args.resume)):
                    progress.name = f"{name} fold {record['fold']}/{record['folds']}" if "fold" in record else name
                    progress(record)
                    if tracker is not None and not tracking_failed:
                        try:
                            tracker(record)
                        except TrackingError as exc:  # the run goes on; its directory has everything
                            tracking_failed = True
                            tracker.close()
                            print(f"studio: {exc} (not logged; the run goes on)", file=sys.stderr)
                    if record["kind"] == "done" and "fold" not in record:
                        results.append((name, record))
            except (TrainingError, DataError, ConfigError, WalkForwardError) as exc:
                raise CliError(str(exc)) from None
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
        if tracker is not None:
            tracker.close()
    _print_results(results)
    if cancel.is_set():
        return 130
    return 1 if tracking_failed or any(r["status"] == "failed" for _, r in results) else 0


def _jobs(args: argparse.Namespace) -> list[tuple[str, Any]]:
    """(name, trainer) of each run: the run --resume continues, or one per GRAPH on the source of --data
    (graphs with the same bar window share one load of its bars)."""
    from studio.core.graph_file import GraphFileError
    from studio.data.panel import DataError
    from studio.train.config import ConfigError
    from studio.train.engine import Trainer, TrainingError
    from studio.train.sources import load_source
    from studio.train.walk_forward import WalkForward, WalkForwardError, is_walk_forward

    try:
        if args.resume:
            resumed = _read_config(Path(args.resume))
            if resumed is not None and is_walk_forward(resumed):
                return [(args.resume, WalkForward.resume(args.resume))]
            if resumed is not None and resumed.get("kind") == "ensemble":
                from studio.train.ensemble_kind import describe

                raise CliError(f"{describe(args.resume, resumed)}; it trains nothing, so there is nothing to resume")
            return [(args.resume, Trainer.resume(args.resume))]
        config, source = _train_config(args), _source(args)
        jobs: list[tuple[str, Any]] = []
        loaded: dict[tuple, Any] = {}
        for path in args.graphs:
            graph = _graph_to_train(args, path)
            data = _data_config(args, graph)
            if args.walk_forward is not None:
                trainer = WalkForward(graph, source, config, data, out_dir=args.out, folds=args.walk_forward,
                                      expanding=args.expanding, fold_dates=args.fold_dates)
            else:
                trainer = Trainer(graph, source, config, data, out_dir=args.out)
            key = (tuple(graph.input.features), graph.input.bars_per_day)
            if key not in loaded:  # graphs with the same window share one load of the data
                loaded[key] = load_source(source, graph.input)
            trainer.loaded = loaded[key]
            jobs.append((Path(path).stem, trainer))
        return jobs
    except (GraphFileError, TrainingError, DataError, ConfigError, WalkForwardError) as exc:
        raise CliError(str(exc)) from None


def _graph_to_train(args: argparse.Namespace, path: str):
    """The graph at ``path`` with the bar window of --days / --bars-per-day."""
    from studio.core.graph_file import load_graph

    graph = load_graph(path)
    if graph.input is not None and (args.days or args.bars_per_day):
        if args.days:
            graph.input.days = args.days
        if args.bars_per_day:
            graph.input.bars_per_day = args.bars_per_day
    return graph


def _data_config(args: argparse.Namespace, graph):
    """The graph's data settings with --normalize, --lag and --horizon over them (None: no input)."""
    from studio.train.engine import data_config_for

    data = data_config_for(graph) if graph.input is not None else None
    if data is not None:
        overrides = {k: getattr(args, k) for k in ("normalize", "lag", "horizon") if getattr(args, k) is not None}
        if overrides:
            from studio.data.dataset import DataConfig

            data = DataConfig(**{**data.to_json(), **overrides, "split": tuple(data.split)})
    return data


def _read_config(run_dir: Path) -> dict | None:
    from studio.core.owned_dir import read_json

    try:  # inside the run folder only: config.json -> /dev/zero is refused, not read until memory runs out
        config = read_json(run_dir / "config.json")
    except (OSError, ValueError):
        return None  # Trainer.resume says what is wrong with it
    return config if isinstance(config, dict) else None


def _print_results(results: list[tuple[str, dict]]) -> None:
    rows, any_few = [], False
    from studio.train.run_figures import split_figures

    for name, record in results:
        # the baselines' figures too: a finished run wrote its baselines.json
        test = split_figures(record["run_dir"], record.get("metrics"), "test") if record.get("run_dir") else \
            ((record.get("metrics") or {}).get("splits") or {}).get("test", {})
        cells, few = _figure_cells(test)
        any_few |= few
        if record.get("walk_forward"):  # one row for the whole, then one per fold (its own test dates)
            rows.append([f"{name} (walk-forward)", record["status"], "-", *cells, record["run_dir"]])
            for fold in (record.get("metrics") or {}).get("folds") or []:
                fold_cells, fold_few = _figure_cells(fold["test"])
                any_few |= fold_few
                rows.append([f"  fold {fold['fold']}", fold["status"], str(fold["best_epoch"] or "-"), *fold_cells,
                             f"  {fold['first']} .. {fold['last']}"])
            continue
        rows.append([name, record["status"], str(record["best_epoch"] or "-"), *cells, record["run_dir"]])
    print(format_table(["graph", "status", "best", *(h for _, h, _ in COMPARE_COLUMNS), "run"], rows,
                       align="lll" + "r" * len(COMPARE_COLUMNS) + "l"))
    if any_few:
        print(few_dates_note())


# ---- reproduce ------------------------------------------------------------------------------------

def reproduce_command(args: argparse.Namespace) -> int:
    from studio.core.text import printable
    from studio.train.reproduce import ReproduceError, reproduce

    try:
        result = reproduce(args.run_dir, args.out, data=args.data)
    except ReproduceError as exc:
        raise CliError(str(exc)) from None
    how = "exactly, on the CPU" if result.exact else "within 1e-6, on a GPU"
    print(f"{printable(args.run_dir)}: re-run in {printable(str(result.rerun_dir))} ({how})")
    differences = result.differences
    if not differences:
        best = {k: b for k, _, b in result.course}
        splits = len({what.split(".")[0] for what, _, _ in result.figures})
        print(f"every figure matches: {len(result.figures)} figures of {splits} splits, best epoch "
              f"{best.get('best_epoch')} of {best.get('epochs_run')}")
        return 0
    print(f"{len(differences)} of {len(result.figures) + len(result.course)} differ:")
    for what, recorded, again in differences:
        print(f"  {printable(what)}: recorded {recorded!r}, re-run {again!r}")
    return 1


# ---- compare --------------------------------------------------------------------------------------

def _run_dirs(paths: list[str]) -> list[Path]:
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if (path / "config.json").is_file():
            found.append(path)
        elif path.is_dir():
            inner = sorted(p for p in path.iterdir() if (p / "config.json").is_file())
            if not inner:
                raise CliError(f"{path}: neither a run directory nor a folder of runs")
            found.extend(inner)
        else:
            raise CliError(f"{path}: no such run directory")
    return found


def compare_table(paths: list[str], split: str = "test", sort: str | None = None):
    """The comparison table as a pandas DataFrame (one row per run)."""
    import pandas as pd

    from studio.metrics import sample_size
    from studio.train.records import read_run, seed_group
    from studio.train.run_figures import baseline_words, overfit_words, split_figures

    rows = []
    for path in _run_dirs(paths):
        try:
            run = read_run(path)
        except (OSError, ValueError) as exc:
            raise CliError(f"{path}: cannot read the run ({exc})") from None
        figures = split_figures(path, run["metrics"], split)
        dates, t, few = sample_size(figures)
        splits = (run["metrics"] or {}).get("splits") or {}
        words = baseline_words(figures)
        if split == "test" and (overfit := overfit_words(splits.get("train") or {}, splits.get("test") or {})):
            words.append(overfit)
        rows.append({"run": path.name, "graph": run["config"].get("graph", {}).get("name", ""),
                     "status": run["status"],
                     **{key: figures.get(key) for key, _, _ in COMPARE_COLUMNS},
                     "incremental_ic_t": figures.get("incremental_ic_t"), "best_baseline": figures.get("best_baseline"),
                     "has_baselines": "best_baseline_ic" in figures or "incremental_ic" in figures,
                     "notes": "; ".join(words),
                     "ic_t": t, "dates": dates, "few_dates": few,
                     "seed": run["config"].get("seed"), "group": seed_group(run["config"]),
                     "kind": run["config"].get("kind", "run"), "path": str(path)})
    frame = pd.DataFrame(rows)
    if sort:
        if sort not in frame.columns:
            raise CliError(f"--sort: no column {sort!r} (columns: {', '.join(frame.columns)})")
        frame = frame.sort_values(sort, ascending=False, na_position="last", kind="stable")
    return frame


SEED_COLUMNS = [(spec.key, spec.label) for spec in shown_in(SEEDS)]


def seed_table(frame):
    """Per group of runs that differ only in their seed: the seed count and mean and std (across seeds,
    n - 1) of the main figures, as Qlib's benchmark tables report them. Failed runs are left out."""
    import pandas as pd

    rows = []
    # failed runs have no figures; an ensemble is not one more seed of its members' experiment
    usable = frame[(frame["status"] != "failed") & (frame["kind"] != "ensemble")] if len(frame) else frame
    for group, runs in usable.groupby("group", sort=False) if len(usable) else []:
        row = {"graph": runs["graph"].iloc[0], "group": group, "seeds": int(runs["seed"].nunique()),
               "runs": len(runs)}
        for key, _ in SEED_COLUMNS:
            values = pd.to_numeric(runs[key], errors="coerce").dropna()
            row[f"{key}_mean"] = float(values.mean()) if len(values) else None
            row[f"{key}_std"] = float(values.std(ddof=1)) if len(values) > 1 else None
        rows.append(row)
    return pd.DataFrame(rows)


def _mean_std(mean, std, pattern: str) -> str:
    if mean is None or (isinstance(mean, float) and not math.isfinite(mean)):
        return "-"
    text = pattern.format(mean)
    return text + (" +- " + pattern.format(std) if std is not None and math.isfinite(std) else "")


def _mlflow_table(args: argparse.Namespace) -> int:
    from studio.train.tracking import DEFAULT_URI, TrackingError, read_runs

    try:
        rows = read_runs(args.mlflow or DEFAULT_URI, split=args.split)
    except TrackingError as exc:
        raise CliError(str(exc)) from None
    headers = ["run", "graph", "status", *(h for _, h, _ in MLFLOW_COLUMNS)]
    cells = [[printable(str(r["run"])), printable(str(r["graph"])), printable(str(r["status"])),
              *(pattern.format(r[key]) if isinstance(r.get(key), float) else "-"
                for key, _, pattern in MLFLOW_COLUMNS)] for r in rows]
    print(f"{args.split} split, from MLflow ({len(rows)} run{'s' if len(rows) != 1 else ''})")
    print(format_table(headers, cells, align="lll" + "r" * len(MLFLOW_COLUMNS)))
    return 0


def _member_rows(run_dir: Path, split: str) -> tuple[str, list[list[str]]]:
    """How an ensemble combined its members, and each member as a row of its figures of ``split`` as its own
    metrics.json has them (a member moved or deleted since is said so)."""
    from studio.train.ensemble_kind import member_paths
    from studio.train.records import read_run

    try:
        config = read_run(run_dir)["config"]
    except (OSError, ValueError):
        return "?", []
    combine = printable(str((config.get("ensemble") or {}).get("combine", "?")))
    rows = []
    for path in member_paths(config):
        try:
            run = read_run(path)
        except (OSError, ValueError):
            rows.append([f"  = {printable(path.name)}", "", "missing", *["-"] * len(COMPARE_COLUMNS)])
            continue
        figures = ((run["metrics"] or {}).get("splits") or {}).get(split, {})
        rows.append([f"  = {printable(path.name)}", printable(str(run["config"].get("graph", {}).get("name", ""))),
                     run["status"], *_figure_cells(figures)[0]])
    return combine, rows


def _print_row_words(records: list[dict], split: str) -> None:
    """Under the table: each run's words (a baseline that beats it, an incremental IC without evidence,
    overfitting), and how a run without baselines.json gets one."""
    for r in records:
        if r["notes"]:
            print(f"{printable(r['run'])}: {printable(r['notes'])}")
    # a walk-forward is judged fold by fold (each fold's baselines.json), never as its top folder
    if split in ("test", "train") and any(not r["has_baselines"] and r["status"] != "failed"
                                          and r["kind"] != "walk_forward" for r in records):
        from studio.train.run_figures import NO_BASELINES_NOTE

        print(NO_BASELINES_NOTE)


def compare_command(args: argparse.Namespace) -> int:
    if args.mlflow is not None:
        return _mlflow_table(args)
    if not args.runs:
        raise CliError("compare: give RUN_DIR folders, or --mlflow [URI]")
    frame = compare_table(args.runs, args.split, args.sort)
    headers = ["run", "graph", "status", *(h for _, h, _ in COMPARE_COLUMNS)]
    records = frame.to_dict("records")
    rows = []
    for r in records:
        rows.append([r["run"], r["graph"], r["status"], *_figure_cells(r)[0]])
        if r["kind"] == "walk_forward":  # one run with its folds: each fold's own figures below it
            from studio.train.walk_forward import fold_rows

            rows[-1][0] += " (walk-forward)"
            for fold in fold_rows(Path(r["path"]), args.split):
                rows.append([f"  {fold['path'].name}", "", fold["status"], *_figure_cells(fold["figures"])[0]])
        if r["kind"] == "ensemble":  # one run made of others: each member's own figures below it
            combine, members = _member_rows(Path(r["path"]), args.split)
            rows[-1][0] += f" (ensemble of {len(members)}, {combine})"
            rows += members
    print(f"{args.split} split")
    print(format_table(headers, rows, align="lll" + "r" * len(COMPARE_COLUMNS)))
    if any(r["few_dates"] for r in records):
        print(few_dates_note())
    _print_row_words(records, args.split)
    runs = _run_dirs(args.runs)
    if len(runs) == 2:  # two runs: what changed between them, beside the change in every figure
        from studio.train.run_diff import RunDiffError, diff_runs

        try:
            diff = diff_runs(runs[0], runs[1], split=args.split)
        except RunDiffError as exc:
            raise CliError(str(exc)) from None
        print()
        print("\n".join(diff.lines()))
    seeds = seed_table(frame)
    if len(seeds) and (seeds["runs"] > 1).any():
        formats = dict((k, f) for k, _, f in COMPARE_COLUMNS)
        print(f"\nacross seeds ({args.split} split; mean +- std of runs that differ only in their seed)")
        named = seeds["graph"].value_counts()
        for r in (seed_records := seeds.to_dict("records")):  # graphs of one name but other parameters: tagged
            r["graph"] = r["graph"] + (f" #{r['group'][:6]}" if named[r["graph"]] > 1 else "")
        # the group id names the group's runs to studio ensemble
        seed_rows = [[r["graph"], r["group"], str(r["seeds"]),
                      *(_mean_std(r[f"{k}_mean"], r[f"{k}_std"], formats[k]) for k, _ in SEED_COLUMNS)]
                     for r in seed_records]
        print(format_table(["graph", "group", "seeds", *(h for _, h in SEED_COLUMNS)], seed_rows,
                           align="llr" + "r" * len(SEED_COLUMNS)))
        from studio.train.run_figures import seed_spread_words

        for r in seed_records:  # a seed group whose IC changes sign with the seed: overfitting in words
            if r["runs"] > 1 and (spread := seed_spread_words(r.get("ic_mean"), r.get("ic_std"))):
                print(f"{r['graph']} ({r['group']}): {spread}")
    from studio.core.files import atomic_write

    try:  # each written whole or not at all
        if args.csv:
            atomic_write(args.csv, frame.drop(columns="path").to_csv(index=False))  # the run column names it
            print(f"wrote {args.csv}")
        if args.markdown:
            lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
            lines += ["| " + " | ".join(row) + " |" for row in rows]
            atomic_write(args.markdown, "\n".join(lines) + "\n")
            print(f"wrote {args.markdown}")
    except OSError as exc:
        raise CliError(disk_full_line(exc) or f"cannot write the table ({exc.strerror or exc})") from None
    return 0
