"""What a sweep's Ray tasks (studio.train.sweep_ray) and its Tune trials (studio.train.sweep_tune) share:
the flag and progress board actors, the trial-side views of them, and taking a finished trial's record
into the sweep."""

from __future__ import annotations

import time

import ray

from studio.train.sweep import ProgressRelay, Sweep, Trial


def take_record(sweep: Sweep, by_id: dict, on_trial, relay: ProgressRelay, board, record: dict) -> None:
    """A trial's record, come back from Ray: into the sweep's trials (a point a search sampled is a new
    one), ``trials.json`` and the tables; its progress is over."""
    relay.finished(record["id"])
    if board is not None:
        board.drop.remote(record["id"])
    ours = by_id.get(record["id"])
    if ours is None:  # a point the search sampled
        ours = by_id[record["id"]] = Trial(**record)
        sweep.trials.append(ours)
    ours.__dict__.update(record)
    if ours.status == "stopped":
        ours.status = "pending"  # runs again on resume
    sweep.save()
    sweep.write_tables()
    if on_trial is not None:
        on_trial(ours)


class Flag:
    """Set once, read from every trial (a Ray actor)."""

    def __init__(self) -> None:
        self.value = False

    def set(self) -> None:
        self.value = True

    def is_set(self) -> bool:
        return self.value


class Board:
    """The running trials' progress, by trial id (a Ray actor): trials put, the sweep process reads."""

    def __init__(self) -> None:
        self.progress: dict[str, dict] = {}

    def put(self, trial_id: str, info: dict) -> None:
        self.progress[trial_id] = info

    def drop(self, trial_id: str) -> None:
        self.progress.pop(trial_id, None)

    def snapshot(self) -> dict[str, dict]:
        return dict(self.progress)


class RemoteBoard:
    """What TrialProgress needs of a board (``board[trial_id] = info``), backed by the board actor: a call
    it does not wait for."""

    def __init__(self, board) -> None:
        self.board = board

    def __setitem__(self, trial_id: str, info: dict) -> None:
        self.board.put.remote(trial_id, info)


class RemoteEvent:
    """What run_trial needs of an event (``wait(timeout) -> bool``), backed by the Ray flag actor."""

    def __init__(self, flag) -> None:
        self.flag = flag

    def wait(self, timeout: float) -> bool:
        time.sleep(max(timeout, 0.5))  # a cluster round trip per half second, not per 0.2 s
        return bool(ray.get(self.flag.is_set.remote()))
