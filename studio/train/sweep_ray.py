"""The ``ray`` executor of sweeps: the same trials on Ray Tune, locally or on a cluster.

Imported only when a sweep asks for it (``pip install -e '.[scale]'`` brings Ray and Optuna). Without
``--address`` it starts a local Ray (``ray.init``); with one it joins that cluster. Each pending trial is
one Tune trial (a ``grid_search`` over the sweep's own trial records, so trial identity, resume and the
tables stay the sweep's), asking for ``resources.cpu`` CPUs and ``resources.gpu`` GPUs (fractions
allowed: several small models share a GPU). A Tune callback writes each trial's record into
``trials.json`` as it arrives. Ctrl-C sets a flag held by a small Ray actor; every running trial
polls it and stops cleanly (its best epoch kept), as on the local executor.

Run directories are written where the sweep directory is: on a cluster it must be on storage every node
sees (the trial's ``run_dir`` says where each went).
"""

from __future__ import annotations

import json
import math
import os
import threading
from typing import Any

# Tune's own progress tables would interleave with the sweep's lines: the sweep reports its trials
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
# Ctrl-C is the sweep's: Tune's own handler would end the run abruptly (trials killed, exit 1) instead of
# stopping every trial after its batch through the flag below
os.environ.setdefault("TUNE_DISABLE_SIGINT_HANDLER", "1")

import ray
from ray import tune

from studio.train.sweep import ProgressRelay, Sweep, SweepError, Trial, run_trial

#: the sweeps running in this process, by key: (sweep, trials by id, on_trial, cancel event). Tune pickles its
#: callbacks with the experiment's state, so they hold only this key (and are module-level
#: classes, pickled by reference)
_RUNS: dict[int, tuple] = {}


class _Recorder(tune.Callback):
    """A Tune callback that writes each trial's record into its sweep as it arrives."""

    def __init__(self, key: int) -> None:
        self.key = key

    def on_trial_result(self, iteration: int, trials: list, trial, result: dict, **info: Any) -> None:
        if self.key not in _RUNS:
            return
        sweep, by_id, on_trial, relay, board = _RUNS[self.key]
        record = json.loads(result["record"])
        relay.finished(record["id"])
        if board is not None:
            board.drop.remote(record["id"])
        ours = by_id.get(record["id"])
        if ours is None:  # a point the search sampled
            ours = by_id[record["id"]] = Trial(**record)
            sweep.trials.append(ours)
        ours.__dict__.update(record)
        if ours.status == "cancelled":
            ours.status = "pending"  # runs again on resume
        sweep.save()
        sweep.write_tables()
        if on_trial is not None:
            on_trial(ours)


class _Flag:
    """Set once, read from every trial (a Ray actor)."""

    def __init__(self) -> None:
        self.value = False

    def set(self) -> None:
        self.value = True

    def is_set(self) -> bool:
        return self.value


class _Board:
    """The running trials' progress, by trial id (a Ray actor): trials put, the sweep process reads."""

    def __init__(self) -> None:
        self.progress: dict[str, dict] = {}

    def put(self, trial_id: str, info: dict) -> None:
        self.progress[trial_id] = info

    def drop(self, trial_id: str) -> None:
        self.progress.pop(trial_id, None)

    def snapshot(self) -> dict[str, dict]:
        return dict(self.progress)


class _RemoteBoard:
    """What TrialProgress needs of a board (``board[trial_id] = info``), backed by the board actor: a call
    it does not wait for."""

    def __init__(self, board) -> None:
        self.board = board

    def __setitem__(self, trial_id: str, info: dict) -> None:
        self.board.put.remote(trial_id, info)


class _RemoteEvent:
    """What run_trial needs of an event (``wait(timeout) -> bool``), backed by the Ray flag actor."""

    def __init__(self, flag) -> None:
        self.flag = flag

    def wait(self, timeout: float) -> bool:
        import time

        import ray

        time.sleep(max(timeout, 0.5))  # a cluster round trip per half second, not per 0.2 s
        return bool(ray.get(self.flag.is_set.remote()))


def _search_trainable(config: dict, spec: dict, out: str, threads: int, flag, board=None) -> None:
    """One point of a search: every seed in turn; the mean objective so far is reported after each."""
    from ray import tune

    from studio.train.sweep import SweepSpec

    sweep_spec = SweepSpec(**spec)
    point = {key: config[key] for key in sweep_spec.search}
    values: list[float] = []
    for seed in sweep_spec.seeds:
        if ray.get(flag.is_set.remote()):  # cancelled: the seeds left are not begun
            return
        trial = SweepSpec.trial_for(sweep_spec.graphs[0], point, seed)
        record = run_trial(spec, trial.to_json(), out, threads, _RemoteEvent(flag),
                           _RemoteBoard(board) if board is not None else None)
        if record["objective"] is not None:
            values.append(record["objective"])
        mean = sum(values) / len(values) if values else math.nan
        tune.report({"objective": mean, "record": json.dumps(record)})
        if record["status"] == "cancelled":
            return


def _distribution(tune, domain: dict):
    kind, values = next(iter(domain.items()))
    if kind == "loguniform":
        return tune.loguniform(*values)
    if kind == "uniform":
        return tune.uniform(*values)
    if kind == "int":
        return tune.randint(int(values[0]), int(values[1]) + 1)  # both bounds included
    return tune.choice(list(values))


def _optuna_space(domain: dict):
    """A search domain as Optuna's distribution (warm-starting a study needs Optuna's own space)."""
    from optuna import distributions

    kind, values = next(iter(domain.items()))
    if kind in ("loguniform", "uniform"):
        return distributions.FloatDistribution(float(values[0]), float(values[1]), log=kind == "loguniform")
    if kind == "int":
        return distributions.IntDistribution(int(values[0]), int(values[1]))
    return distributions.CategoricalDistribution(list(values))


def evaluated_points(sweep: Sweep) -> tuple[list[dict], list[float]]:
    """The points a search has tried whose every seed finished, with their mean objective: a resumed search
    tells Optuna of them, so it goes on from what it learnt instead of sampling afresh."""
    by_point: dict[str, list[Trial]] = {}
    for t in sweep.trials:
        by_point.setdefault(json.dumps(t.point, sort_keys=True, default=str), []).append(t)
    points, rewards = [], []
    for trials in by_point.values():
        done = [t.objective for t in trials if t.status in ("finished", "early_stopped", "time_limit")
                and t.objective is not None and math.isfinite(t.objective)]
        if len(done) == len(trials) == len(sweep.spec.seeds) and set(trials[0].point) == set(sweep.spec.search):
            points.append(dict(trials[0].point))
            rewards.append(sum(done) / len(done))
    return points, rewards


def _trainable(config: dict) -> None:
    from ray import tune

    if ray.get(config["flag"].is_set.remote()):  # cancelled before this trial began: it stays pending
        tune.report({"objective": math.nan, "record": json.dumps(config["trial"])})
        return
    board = config.get("board")
    record = run_trial(config["spec"], config["trial"], config["out"], config["threads"],
                       _RemoteEvent(config["flag"]), _RemoteBoard(board) if board is not None else None)
    objective = record["objective"]
    tune.report({"objective": objective if objective is not None else math.nan, "record": json.dumps(record)})


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
                ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False,
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
    flag = ray.remote(num_cpus=0)(_Flag).remote()
    board = ray.remote(num_cpus=0)(_Board).remote() if on_progress is not None else None
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
    key = id(sweep)
    _RUNS[key] = (sweep, by_id, on_trial, relay, board)
    out, threads = str(sweep.runs_dir.resolve()), max(1, int(cpus))
    concurrent = workers or sweep.spec.workers or None

    def fit(trainable, param_space: dict, name: str, **tune_config: Any):
        tuner = tune.Tuner(
            tune.with_resources(trainable, {"cpu": cpus, "gpu": gpus}), param_space=param_space,
            tune_config=tune.TuneConfig(max_concurrent_trials=concurrent, reuse_actors=True,
                                        trial_dirname_creator=lambda trial: f"trial-{trial.trial_id}", **tune_config),
            run_config=tune.RunConfig(name=name, storage_path=str((sweep.path / "ray").resolve()),
                                      callbacks=[_Recorder(key)], verbose=0))
        return tuner.fit()

    try:
        if todo:  # the grid's trials, or the unfinished seeds of a search's points (on resume)
            results = fit(_trainable, {"trial": tune.grid_search([t.to_json() for t in todo]),
                                       "spec": sweep.spec.to_json(), "out": out, "threads": threads, "flag": flag,
                                       "board": board},
                          "grid")
            for result in results:
                if result.error is not None:  # a trial whose process died: recorded, the others went on
                    trial_json = (result.config or {}).get("trial") or {}
                    ours = by_id.get(trial_json.get("id"))
                    if ours is not None and ours.status not in ("finished", "early_stopped", "time_limit"):
                        ours.status = "failed"
                        ours.message = f"the Ray trial failed ({type(result.error).__name__})"
        if samples_left and not (cancel is not None and cancel.is_set()):
            from ray.tune.search.optuna import OptunaSearch

            trainable = tune.with_parameters(_search_trainable, spec=sweep.spec.to_json(), out=out, threads=threads,
                                             flag=flag, board=board)
            points, rewards = evaluated_points(sweep)
            if points:  # resumed: Optuna's study starts from the points already judged
                space = {key: _optuna_space(domain) for key, domain in sweep.spec.search.items()}
                # a sampler seeded as the first run's would draw its first points again
                search = OptunaSearch(space=space, metric="objective", mode="max",
                                      seed=sweep.spec.seeds[0] + points_done,
                                      points_to_evaluate=points, evaluated_rewards=rewards)
                fit(trainable, {}, "search", search_alg=search, num_samples=samples_left)
            else:
                space = {key: _distribution(tune, domain) for key, domain in sweep.spec.search.items()}
                fit(trainable, space, "search", search_alg=OptunaSearch(seed=sweep.spec.seeds[0]),
                    metric="objective", mode="max", num_samples=samples_left)
    finally:
        _RUNS.pop(key, None)
        watcher_done.set()
        for t in sweep.trials:
            if t.status == "queued":
                t.status = "pending"
        sweep.save()
        sweep.write_tables()
        if started_here:
            ray.shutdown()
    return sweep.trials
