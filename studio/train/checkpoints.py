"""A run's checkpoint, read back checked: ``--resume`` trusts nothing in it it has not checked.

``checkpoint.pt`` holds the last finished epoch's full state (studio.train.engine writes it after every
epoch, atomically): ``epoch``, ``best_epoch``, ``best_ic``, ``stale``, ``history`` (the epochs'
records as JSON text), ``model``, ``best_state`` (state dicts), ``optimizer`` and ``scheduler`` (their
state dicts). :func:`read_checkpoint` loads it through the checked loader (studio.torchgraph.torch_files:
a regular file, what torch.save writes, tensors and plain values only) and checks its structure: every
key there with its type, ``epoch`` within 1..the run's epochs, ``best_epoch`` and ``stale`` within
0..epoch, a history of exactly ``epoch`` records numbered 1..epoch, and weights that are this model's
(names, shapes). Each fault is a :class:`CheckpointError`: one line naming the file and what is wrong.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import torch

from studio.core.owned_dir import ForeignEntry, read_owned
from studio.core.text import error_line, printable
from studio.torchgraph.torch_files import TORCH_FILE_LIMIT, TorchFileError, load_torch_bytes, misfit, state_dict_of

#: a history longer than this is not one a run wrote (TrainConfig has no upper bound on epochs, but the
#: check against the run's own epochs comes first; this bounds the JSON parsed before it)
_HISTORY_TEXT_LIMIT = 256 << 20


class CheckpointError(Exception):
    """A checkpoint that cannot be resumed from; one line naming the file and the fault."""


def read_checkpoint(path: str | os.PathLike[str], epochs: int, model=None) -> dict[str, Any]:
    """The checked contents of ``path`` for a run of ``epochs`` epochs (``model``: the module its weights
    must fit). Returns the payload with ``history`` parsed into a list of records."""
    shown = printable(os.fspath(path))
    try:
        # read inside the run folder only (a link or special file planted there is refused)
        payload = load_torch_bytes(read_owned(path, TORCH_FILE_LIMIT), shown, "checkpoint")
    except TorchFileError as exc:
        raise CheckpointError(str(exc)) from None
    except (OSError, ValueError) as exc:  # ForeignEntry, too large, unreadable
        raise CheckpointError(_read_problem(exc, shown)) from None

    def fault(what: str) -> CheckpointError:
        return CheckpointError(f"{shown}: {what}; this run cannot be resumed from it")

    if not isinstance(payload, dict):
        raise fault(f"not a checkpoint (a {type(payload).__name__}, not a dict of the run's state)")
    expected = {"epoch": int, "best_epoch": int, "best_ic": float, "stale": int, "history": str,
                "model": dict, "optimizer": dict, "scheduler": dict}
    for key, kind in expected.items():
        if key not in payload:
            raise fault(f"no {key!r} entry")
        value = payload[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = payload[key] = float(value)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise fault(f"{key!r} is a {type(value).__name__}, not a{'n' if kind is int else ''} "
                        f"{kind.__name__}")
    epoch, best_epoch, stale = payload["epoch"], payload["best_epoch"], payload["stale"]
    if not 1 <= epoch <= epochs:
        raise fault(f"epoch {_short(epoch)} is outside 1..{epochs}, the run's epochs")
    if not 0 <= best_epoch <= epoch:
        raise fault(f"best epoch {_short(best_epoch)} is outside 0..{epoch}")
    if not 0 <= stale <= epoch:
        raise fault(f"{_short(stale)} epochs without improvement is outside 0..{epoch}")
    best_ic = payload["best_ic"]
    if math.isnan(best_ic) or best_ic == math.inf or (best_epoch > 0) != (best_ic > -math.inf):
        raise fault(f"best IC {best_ic!r} does not go with best epoch {best_epoch}")
    if len(payload["history"]) > _HISTORY_TEXT_LIMIT:
        raise fault("its history is too long")
    try:
        history = json.loads(payload["history"])
    except ValueError:
        raise fault("its history is not JSON") from None
    if not isinstance(history, list) or not all(isinstance(r, dict) for r in history):
        raise fault("its history is not a list of epoch records")
    if len(history) != epoch:
        raise fault(f"its history holds {len(history)} epochs, not the {epoch} it claims")
    numbers = [r.get("epoch") for r in history]
    if numbers != list(range(1, epoch + 1)):
        raise fault(f"its history's epochs are not 1..{epoch}")
    payload["history"] = history

    best_state = payload.get("best_state")
    if best_epoch > 0 and best_state is None:
        raise fault(f"best epoch {best_epoch} has no weights")
    try:
        payload["model"] = state_dict_of(payload["model"], shown, "state dict of the model")
        if best_state is not None:
            payload["best_state"] = state_dict_of(best_state, shown, "state dict of the best epoch")
    except TorchFileError as exc:
        raise CheckpointError(str(exc)) from None
    if model is not None:
        for key in ("model", "best_state"):
            problem = misfit(payload[key], model) if payload.get(key) is not None else None
            if problem:
                raise fault(f"its {'best epoch' if key == 'best_state' else 'model'} {problem}")
        problem = _optimizer_problem(payload["optimizer"], model)
        if problem:
            raise fault(problem)
    return payload


def _optimizer_problem(optimizer: dict, model) -> str | None:
    """Why an optimiser's state dict cannot be this model's (its parameters counted otherwise, or a
    moment of another shape than its parameter: the next step would fail in the middle of the run)."""
    params = list(model.parameters())
    groups, state = optimizer.get("param_groups"), optimizer.get("state")
    if not isinstance(groups, list) or not isinstance(state, dict) or not all(isinstance(g, dict) for g in groups):
        return "its optimiser state is not an optimiser's"
    # torch numbers the parameters 0, 1, ... across the groups, in the order the optimiser got them
    indices = [i for g in groups for i in (g.get("params") if isinstance(g.get("params"), list) else [None])]
    if indices != list(range(len(params))):
        return f"its optimiser state holds {len(indices)} parameters, the model has {len(params)}"
    for index, param in enumerate(params):
        moments = state.get(index, {})
        if not isinstance(moments, dict):
            return f"its optimiser state of parameter {index} is not a dict"
        for name, value in moments.items():
            if isinstance(value, torch.Tensor) and value.dim() > 0 and value.shape != param.shape:
                return (f"its optimiser's {printable(str(name))[:40]} has shape {tuple(value.shape)} for a "
                        f"parameter of shape {tuple(param.shape)}")
    return None


def read_weights(path: str | os.PathLike[str], model=None) -> dict:
    """A run's ``model.pt`` (the best epoch's state dict), read inside the run folder only and checked to
    be a state dict that fits ``model`` when given; a CheckpointError of one line otherwise."""
    shown = printable(os.fspath(path))
    try:
        state = state_dict_of(load_torch_bytes(read_owned(path, TORCH_FILE_LIMIT), shown, "weights file"), shown)
    except TorchFileError as exc:
        raise CheckpointError(str(exc)) from None
    except (OSError, ValueError) as exc:
        raise CheckpointError(_read_problem(exc, shown)) from None
    problem = misfit(state, model) if model is not None else None
    if problem:
        raise CheckpointError(f"{shown}: {problem}")
    return state


def _read_problem(exc: BaseException, shown: str) -> str:
    if isinstance(exc, ForeignEntry):
        return str(exc)
    if isinstance(exc, FileNotFoundError):
        return f"{shown}: no such file"
    if isinstance(exc, IsADirectoryError):
        return f"{shown}: is a folder, not a file"
    if isinstance(exc, OSError):
        return f"{shown}: cannot read ({exc.strerror or error_line(exc)})"
    return f"{shown}: too large for a file of a run"


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 24 else text[:21] + "..."


def checkpoint_present(path: Path) -> bool:
    """Whether a checkpoint entry exists at all: anything at the path (a folder, a link, a broken file)
    is one to check, never taken for "no checkpoint yet"."""
    return os.path.lexists(path)
