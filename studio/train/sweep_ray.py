"""The ``ray`` executor of sweeps: the same trials on Ray, locally or on a cluster.

Imported only when a sweep asks for it (``pip install -e '.[scale]'`` brings Ray and Optuna). Without
``--address`` it starts a local Ray of its own (``ray.init(address="local")``); with one it joins that
cluster. Each pending trial of a grid is one Ray task over the sweep's own trial record (so trial
identity, resume and the tables stay the sweep's), asking for ``resources.cpu`` CPUs and
``resources.gpu`` GPUs (fractions allowed: several small models share a GPU); the sweep takes each
record as it comes back. Tasks, not Tune trials: on a
2-core machine Tune's controller cost 25 % more time for the same 8 trials, and a grid needs nothing of
Tune. A search runs on Ray Tune with Optuna as its search, and a Tune callback takes each seed's
record. Ctrl-C sets a flag held by a small Ray actor; every running trial polls it and stops cleanly
(its best epoch kept), as on the local executor.

Run directories are written where the sweep directory is: on a cluster it must be on storage every node
sees (the trial's ``run_dir`` says where each went).
"""

from __future__ import annotations

import json
import math
import os
import threading

import ray

from studio.train.ray_board import Board, Flag, RemoteBoard, RemoteEvent, take_record
from studio.train.sweep import ProgressRelay, Sweep, SweepError, Trial, run_trial


def _trial_task(spec: dict, trial: dict, out: str, threads: int, flag, board) -> dict:
    """One trial as a Ray task: its record. A trial that begins after Ctrl-C returns at once, pending."""
    if ray.get(flag.is_set.remote()):
        return trial
    return run_trial(spec, trial, out, threads, RemoteEvent(flag), RemoteBoard(board) if board is not None else None)


def _capacity(cpus: float, gpus: float) -> int:
    """How many trials of ``cpus`` CPUs and ``gpus`` GPUs the cluster holds at once (at least one)."""
    total = ray.cluster_resources()
    fits = [math.floor(total.get(name, 0.0) / need + 1e-9) for name, need in (("CPU", cpus), ("GPU", gpus))
            if need > 0]
    return max(1, min(fits)) if fits else 1_000_000


def _run_tasks(sweep: Sweep, todo: list[Trial], take, cancel, flag, board, resources: dict, limit: int | None,
               threads: int) -> None:
    """The grid's trials as Ray tasks, at most ``limit`` at once (None: as many as the cluster's resources
    allow); each record is taken as it comes back. A task whose worker died is a failed trial."""
    task = ray.remote(**resources, max_retries=0)(_trial_task)
    spec, out = sweep.spec.to_json(), str(sweep.runs_dir.resolve())
    waiting, running = list(todo), {}
    while waiting or running:
        stopping = cancel is not None and cancel.is_set()
        # a task waiting on the cancel flag (ray.get) lends Ray its CPUs, and Ray would start a third trial
        # on two CPUs: the sweep starts no more than the cluster holds (read again as nodes come and go)
        room = _capacity(resources["num_cpus"], resources["num_gpus"])
        if limit is not None:
            room = min(room, limit)
        while waiting and not stopping and len(running) < room:
            trial = waiting.pop(0)
            trial.status = "queued"
            running[task.remote(spec, trial.to_json(), out, threads, flag, board)] = trial
        if stopping:
            waiting.clear()  # never begun: they stay pending
        if not running:
            break
        ready, _ = ray.wait(list(running), num_returns=1, timeout=0.5)
        for ref in ready:
            trial = running.pop(ref)
            try:
                record = ray.get(ref)
            except ray.exceptions.RayError as exc:  # its worker died (killed, out of memory): the others go on
                record = {**trial.to_json(), "status": "failed",
                          "message": f"the Ray trial failed ({type(exc).__name__})"}
            if record.get("status") == "queued":  # began after Ctrl-C: not run
                record = {**record, "status": "pending"}
            take(record)


def run_on_ray(sweep: Sweep, address: str | None = None, workers: int = 0, on_trial=None,
               cancel: threading.Event | None = None, num_cpus: int | None = None,
               on_progress=None) -> list[Trial]:
    import logging

    todo = sweep.pending()
    points_done = len({json.dumps(t.point, sort_keys=True, default=str) for t in sweep.trials})
    samples_left = max(0, sweep.spec.samples - points_done) if sweep.spec.search else 0
    if not todo and not samples_left:
        return sweep.trials
    started_here = not ray.is_initialized()
    if started_here:
        try:
            if address:
                ray.init(address=address, include_dashboard=False, log_to_driver=False,
                         logging_level=logging.WARNING)
            else:
                # "local": a Ray of its own, never one found running on this machine or in RAY_ADDRESS
                # (ray.init() alone joins those: a stray cluster would take the sweep's trials)
                ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, log_to_driver=False,
                         logging_level=logging.WARNING)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            # Ray never turns token authentication on by itself for an explicit address
            hint = ("; a cluster with token authentication needs RAY_AUTH_MODE=token and its token "
                    "(RAY_AUTH_TOKEN or ~/.ray/auth_token)") if address and not os.environ.get("RAY_AUTH_MODE") else ""
            raise SweepError(f"ray: cannot {'join ' + address if address else 'start a local Ray'} "
                             f"({str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__})"
                             f"{hint}") from None
    by_id = {t.id: t for t in sweep.trials}
    resources = sweep.spec.resources or {}
    cpus, gpus = float(resources.get("cpu", 1)), float(resources.get("gpu", 0))
    total = ray.cluster_resources()
    for name, need in (("CPU", cpus), ("GPU", gpus)):
        if need > total.get(name, 0.0):  # Ray would wait for it for ever
            if started_here:
                ray.shutdown()
            raise SweepError(f"resources: each trial asks for {need:g} {name}, and the Ray cluster has "
                             f"{total.get(name, 0.0):g}")
    flag = ray.remote(num_cpus=0)(Flag).remote()
    board = ray.remote(num_cpus=0)(Board).remote() if on_progress is not None else None
    relay = ProgressRelay(on_progress)

    watcher_done = threading.Event()

    def watch_cancel() -> None:
        beat = 0
        while not watcher_done.wait(0.2):
            if cancel is not None and cancel.is_set():
                flag.set.remote()
                return
            beat += 1
            if board is not None and beat % 3 == 0:  # progress: a round trip every 0.6 s
                try:
                    snapshot = ray.get(board.snapshot.remote(), timeout=5)
                except Exception:  # Ray is going away: progress is a view, the sweep goes on
                    continue
                relay.relay(snapshot)

    watcher = threading.Thread(target=watch_cancel, daemon=True)
    watcher.start()
    threads = max(1, int(cpus))
    concurrent = workers or sweep.spec.workers or None

    try:
        if todo:  # the grid's trials, or the unfinished seeds of a search's points (on resume)
            _run_tasks(sweep, todo, lambda record: take_record(sweep, by_id, on_trial, relay, board, record), cancel,
                       flag, board, {"num_cpus": cpus, "num_gpus": gpus}, concurrent, threads)
        if samples_left and not (cancel is not None and cancel.is_set()):
            from studio.train.sweep_tune import run_search

            run_search(sweep, by_id, on_trial, relay, board, flag, {"cpu": cpus, "gpu": gpus}, concurrent, threads,
                       samples_left, points_done)
    finally:
        watcher_done.set()
        for t in sweep.trials:
            if t.status == "queued":
                t.status = "pending"
        sweep.save()
        sweep.write_tables()
        if started_here:
            ray.shutdown()
    return sweep.trials
