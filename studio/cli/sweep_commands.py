"""``studio sweep``: many graphs x settings x seeds on a local process pool (studio.train.sweep)."""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from studio.cli.errors import CliError
from studio.cli.table import format_table


def add_sweep_commands(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "sweep", help="run a sweep: graphs x settings x seeds, each trial a run directory",
        description="Run every trial of a sweep SPEC (JSON or TOML; docs/sweeps.md) on a local process pool. "
                    "The sweep directory holds spec.json, trials.json / trials.csv and summary.csv (mean and "
                    "std across seeds). Ctrl-C stops every trial; --resume DIR runs the ones that did not "
                    "finish.")
    p.add_argument("spec", nargs="?", metavar="SPEC")
    p.add_argument("--workers", type=int, default=None, help="trials at once (default: one per two cores)")
    p.add_argument("--out", default="sweeps", metavar="DIR", help="where sweep directories go (default sweeps/)")
    p.add_argument("--resume", metavar="SWEEP_DIR", help="run the trials of a sweep that did not finish")
    p.add_argument("--executor", choices=("local", "ray"), default=None,
                   help="where trials run (default: the spec's executor, else local)")
    p.add_argument("--address", metavar="RAY_ADDRESS",
                   help="join this Ray cluster (implies --executor ray; default: start a local Ray)")
    p.add_argument("--quiet", "-q", action="store_true", help="only the summary table")
    p.set_defaults(run=sweep_command)


def sweep_command(args: argparse.Namespace) -> int:
    from studio.core.text import printable
    from studio.train.sweep import FINISHED, Sweep, SweepError, load_spec

    if bool(args.spec) == bool(args.resume):
        raise CliError("sweep: give a SPEC file, or --resume SWEEP_DIR")
    if args.workers is not None and args.workers < 1:
        raise CliError(f"--workers: expects an integer >= 1, gets {args.workers}")
    try:
        sweep = Sweep.open(args.resume) if args.resume else Sweep.create(load_spec(args.spec), args.out)
    except SweepError as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:
        raise CliError(f"{args.out}: cannot make the sweep directory ({exc.strerror or exc})") from None
    executor = args.executor or ("ray" if args.address else sweep.spec.executor)
    if executor == "local" and args.address:
        raise CliError("--address is for the ray executor; leave out --executor local")
    todo = sweep.pending()
    if not args.quiet:
        print(f"sweep {sweep.path}: {len(todo)} of {len(sweep.trials)} trials to run", file=sys.stderr)

    cancel = threading.Event()

    def on_interrupt(signum, frame):
        if cancel.is_set():
            raise KeyboardInterrupt
        cancel.set()
        print("\nstudio: stopping every trial (Ctrl-C again to quit)", file=sys.stderr)

    def on_trial(trial) -> None:
        if not args.quiet and trial.status == "pending":
            print(f"[{printable(trial.id)}] stopped; it runs again with --resume {sweep.path}", file=sys.stderr)
        elif not args.quiet:
            figure = f"{trial.objective:.4f}" if trial.objective is not None else "-"
            print(f"[{printable(trial.id)}] {trial.status}: {sweep.spec.objective} {figure}"
                  + (f" ({printable(trial.message)})" if trial.status == "failed" else ""), file=sys.stderr)

    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, on_interrupt) if main_thread else None
    try:
        sweep.run(args.workers or 0, on_trial, cancel, executor=executor, address=args.address)
    except SweepError as exc:
        raise CliError(str(exc)) from None
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    summary = sweep.summary()
    objective = sweep.spec.objective
    grid_cols = [c for c in summary.columns if c.startswith("grid:")]
    rows = []
    for r in summary.to_dict("records"):
        mean, std = r[f"{objective} mean"], r[f"{objective} std"]
        cell = "-" if mean is None or mean != mean else f"{mean:.4f}" + (
            f" +- {std:.4f}" if std is not None and std == std else "")
        rows.append([printable(r["graph"]), *(f"{r[c]:.4g}" if isinstance(r[c], float) else printable(r[c])
                                              for c in grid_cols),
                     f"{r['done']}/{r['seeds']}", str(r["failed"]), cell])
    print(format_table(["graph", *(c[5:] for c in grid_cols), "seeds done", "failed", f"{objective} mean +- std"],
                       rows, align="l" * (1 + len(grid_cols)) + "rrr"))
    print(f"sweep directory: {sweep.path}")
    if cancel.is_set():
        return 130
    return 0 if all(t.status in FINISHED for t in sweep.trials) else 1
