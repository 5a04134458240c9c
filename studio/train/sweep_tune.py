"""Searches on Ray Tune with Optuna as the search (the ``ray`` executor's ``search`` specs).

Imported only when a search runs, so the grid's Ray tasks (studio.train.sweep_ray) do not import Tune in
every worker. Each sampled point is one Tune trial that trains every seed in turn and reports the mean
objective so far after each; a Tune callback takes each seed's record into the sweep as it arrives.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from typing import Any

import ray
from ray import tune

from studio.train.ray_board import RemoteBoard, RemoteEvent, take_record
from studio.train.sweep import ProgressRelay, Sweep, Trial, run_trial

#: the searches running in this process, by key: (sweep, trials by id, on_trial, relay, board). Tune pickles its
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
        take_record(*_RUNS[self.key], json.loads(result["record"]))


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
        record = run_trial(spec, trial.to_json(), out, threads, RemoteEvent(flag),
                           RemoteBoard(board) if board is not None else None)
        if record["objective"] is not None:
            values.append(record["objective"])
        mean = sum(values) / len(values) if values else math.nan
        tune.report({"objective": mean, "record": json.dumps(record)})
        if record["status"] == "stopped":
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


#: the environment Tune reads when a search starts (not at import): Tune's own progress tables would
#: interleave with the sweep's lines (the sweep reports its trials), and Ctrl-C is the sweep's: Tune's own
#: handler would end the run abruptly (trials killed, exit 1) instead of stopping every trial after its
#: batch through the flag
TUNE_ENVIRONMENT = {"RAY_AIR_NEW_OUTPUT": "0", "TUNE_DISABLE_SIGINT_HANDLER": "1"}


@contextlib.contextmanager
def _tune_environment():
    """TUNE_ENVIRONMENT for the search's length (a value the user set is kept), restored after."""
    added = [name for name in TUNE_ENVIRONMENT if name not in os.environ]
    for name in added:
        os.environ[name] = TUNE_ENVIRONMENT[name]
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


def run_search(sweep: Sweep, by_id: dict[str, Trial], on_trial, relay: ProgressRelay, board, flag,
               resources: dict[str, float], concurrent: int | None, threads: int, samples_left: int,
               points_done: int) -> None:
    """Sample and train the ``samples_left`` points still to try (a resumed search tells Optuna of the
    points already judged)."""
    from ray.tune.search.optuna import OptunaSearch

    key = id(sweep)
    _RUNS[key] = (sweep, by_id, on_trial, relay, board)
    cpus, gpus = resources["cpu"], resources["gpu"]
    out = str(sweep.runs_dir.resolve())

    def fit(trainable, param_space: dict, name: str, **tune_config: Any):
        tuner = tune.Tuner(
            tune.with_resources(trainable, {"cpu": cpus, "gpu": gpus}), param_space=param_space,
            tune_config=tune.TuneConfig(max_concurrent_trials=concurrent, reuse_actors=True,
                                        trial_dirname_creator=lambda trial: f"trial-{trial.trial_id}", **tune_config),
            run_config=tune.RunConfig(name=name, storage_path=str((sweep.path / "ray").resolve()),
                                      callbacks=[_Recorder(key)], verbose=0))
        with _tune_environment():
            return tuner.fit()

    try:
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
