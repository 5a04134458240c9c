"""``studio sweep``: many graphs x settings x seeds on a local process pool or on Ray (studio.train.sweep),
with the running trials shown as they go."""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import threading
import time

from studio.cli.errors import CliError
from studio.cli.output import control
from studio.cli.table import format_table
from studio.core.text import columns, cut_to_columns, printable
from studio.train.sweep import EXECUTORS


def add_sweep_commands(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "sweep", help="run a sweep: graphs x settings x seeds, each trial a run directory",
        description="Run every trial of a sweep SPEC (JSON or TOML; docs/sweeps.md) on a local process pool, "
                    "or on Ray (--executor ray, --address). "
                    "The sweep directory holds spec.json, trials.json / trials.csv and summary.csv (mean and "
                    "std across seeds). Ctrl-C stops every trial; --resume DIR runs the ones that did not "
                    "finish.")
    p.add_argument("spec", nargs="?", metavar="SPEC")
    p.add_argument("--workers", type=int, default=None, help="trials at once (default: one per two cores)")
    p.add_argument("--out", default="sweeps", metavar="DIR", help="where sweep directories go (default sweeps/)")
    p.add_argument("--resume", metavar="SWEEP_DIR", help="run the trials of a sweep that did not finish")
    p.add_argument("--executor", choices=tuple(EXECUTORS), default=None,
                   help="where trials run (default: the spec's executor, else local)")
    p.add_argument("--address", metavar="RAY_ADDRESS",
                   help="join this Ray cluster (implies --executor ray; default: start a local Ray)")
    p.add_argument("--quiet", "-q", action="store_true", help="only the summary table")
    p.add_argument("--events", action="store_true",
                   help="for programs (the studio's queue): stdout carries one JSON object a line, each running "
                        "trial's progress and each trial's end; the summary goes to stderr. The sweep stops its "
                        "trials cleanly when the program that started it is gone")
    p.set_defaults(run=sweep_command)


def sweep_command(args: argparse.Namespace) -> int:
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
    if args.resume:  # said before anything else (Sweep.run refuses it too, holding the lock while it runs)
        from studio.train.run_lock import RunInUse, held_by

        owner = held_by(sweep.path)
        if owner is not None:
            raise CliError(str(RunInUse(sweep.path, owner, "sweep")))
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

    lines = SweepLines(sweep, args.quiet)
    on_trial, on_progress = lines.trial_ended, None if args.quiet else lines.progress
    if args.events:
        events = SweepEvents(cancel)
        on_trial, on_progress = events.wrap(on_trial, "trial"), events.wrap(on_progress, "progress")

    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, on_interrupt) if main_thread else None
    try:
        sweep.run(args.workers or 0, on_trial, cancel, executor=executor, address=args.address,
                  on_progress=on_progress)
    except SweepError as exc:
        raise CliError(str(exc)) from None
    finally:
        lines.close()
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
    out = sys.stderr if args.events else sys.stdout  # with --events, stdout is the events' alone
    print(format_table(["graph", *(c[5:] for c in grid_cols), "seeds done", "failed", f"{objective} mean +- std"],
                       rows, align="l" * (1 + len(grid_cols)) + "rrr"), file=out)
    print(f"sweep directory: {sweep.path}", file=out)
    if cancel.is_set():
        return 130
    return 0 if all(t.status in FINISHED for t in sweep.trials) else 1


def epoch_line(info: dict) -> str:
    """A trial's epoch, for a log: 'epoch 3/10 · 30% · valid IC 0.0512 (best epoch 2) · ~1m 05s left'."""
    from studio.train.sweep import time_left

    parts = [f"epoch {info['epochs_done']}/{info['epochs']}", f"{info['fraction']:.0%}"]
    if info.get("valid_ic") is not None:
        parts.append(f"valid IC {info['valid_ic']:.4f} (best epoch {info['best_epoch']})")
    if time_left(info.get("eta")):
        parts.append(time_left(info["eta"]))
    return " · ".join(parts)


class SweepLines:
    """What ``studio sweep`` prints while its trials run: a line as each trial ends and, meanwhile, on a
    terminal one status line of the running trials, redrawn; in a log, a line per trial per epoch. Called
    from the sweep's threads (on Ray the progress comes from another thread than the trials' ends)."""

    def __init__(self, sweep, quiet: bool, stream=None) -> None:
        self.sweep, self.quiet, self.stream = sweep, quiet, stream
        self.tty = (stream if stream is not None else sys.stderr).isatty()
        self.running: dict[str, dict] = {}
        self.epochs_told: dict[str, int] = {}
        self.started, self.ended_before = time.monotonic(), self._ended()
        self.status = ""
        self.lock = threading.Lock()

    def _out(self):
        return self.stream if self.stream is not None else sys.stderr

    def _print(self, text: str) -> None:
        self._clear()
        print(text, file=self._out(), flush=True)

    def _clear(self) -> None:
        if self.status:
            control("\r" + " " * columns(self.status) + "\r", self._out())
            self.status = ""

    def _ended(self) -> int:
        from studio.train.sweep import FINISHED

        return sum(t.status in FINISHED or t.status == "failed" for t in self.sweep.trials)

    def _draw(self) -> None:
        from studio.train.sweep import sweep_time_left, time_left

        self._clear()
        if not self.running:
            return
        ended = self._ended()
        done = ended - self.ended_before + sum(info["fraction"] for info in self.running.values())
        left = time_left(sweep_time_left(time.monotonic() - self.started, done,
                                         len(self.sweep.trials) - self.ended_before))
        parts = []
        for info in sorted(self.running.values(), key=lambda i: i["trial"]):
            name = f"{info['graph']}-s{info['seed']}"
            parts.append(f"{name} {max(1, info['epoch'])}/{info['epochs']} {info['fraction']:.0%}" if info["epochs"]
                         else f"{name} starting")
        text = printable(f"{ended}/{len(self.sweep.trials)} ended" + (f" · {left}" if left else "")
                         + " · running " + " | ".join(parts))
        # one line that never wraps, or the carriage return could not redraw it
        self.status = cut_to_columns(text, shutil.get_terminal_size((100, 24)).columns - 1)
        print(self.status, end="", file=self._out(), flush=True)

    def progress(self, info: dict) -> None:
        """A running trial's progress (TrialProgress's dict)."""
        if self.quiet:
            return
        with self.lock:
            self.running[info["trial"]] = info
            if self.tty:
                self._draw()
            elif info.get("epochs_done", 0) > self.epochs_told.get(info["trial"], 0):
                self.epochs_told[info["trial"]] = info["epochs_done"]
                self._print(printable(f"[{info['trial']}] " + epoch_line(info)))

    def trial_ended(self, trial) -> None:
        with self.lock:
            self.running.pop(trial.id, None)
            if self.quiet:
                return
            if trial.status == "pending":
                self._print(f"[{printable(trial.id)}] stopped; it runs again with --resume {self.sweep.path}")
            else:
                figure = f"{trial.objective:.4f}" if trial.objective is not None else "-"
                self._print(f"[{printable(trial.id)}] {trial.status}: {self.sweep.spec.objective} {figure}"
                            + (f" ({printable(trial.message)})" if trial.status == "failed" else ""))
            if self.tty:
                self._draw()

    def close(self) -> None:
        """The status line goes before the summary table is printed."""
        with self.lock:
            self.running.clear()
            self._clear()


class SweepEvents:
    """``studio sweep --events``: each running trial's progress and each trial's end as a JSON line on
    stdout, ``{"event": "progress", "info": {...}}`` and ``{"event": "trial", "trial": {...}}``, for the
    program that started the sweep. When that program is gone (its pipe closed, or this process was
    handed to another parent), the sweep's trials are stopped cleanly, as by Ctrl-C."""

    def __init__(self, cancel: threading.Event) -> None:
        import os

        self.cancel, self.lock, self.parent = cancel, threading.Lock(), os.getppid()
        threading.Thread(target=self._watch_parent, daemon=True).start()

    def _watch_parent(self) -> None:
        import os

        while not self.cancel.wait(1.0):
            if os.getppid() != self.parent:
                self.cancel.set()

    def emit(self, event: dict) -> None:
        import json

        with self.lock:
            try:
                sys.stdout.write(json.dumps(event) + "\n")
                sys.stdout.flush()
            except (BrokenPipeError, ValueError, OSError):  # the reader is gone: stop, keep what is done
                self.cancel.set()

    def wrap(self, then, kind: str):
        def passed_on(item) -> None:
            if kind == "trial":
                self.emit({"event": "trial", "trial": item.to_json()})
            else:
                self.emit({"event": "progress", "info": item})
            if then is not None:
                then(item)

        return passed_on
