"""Checked loading of torch files from anywhere: weights (a run's ``model.pt``, ``export --weights``) and
the pieces of a run's ``checkpoint.pt`` (studio.train.checkpoints checks its structure).

A torch file is someone else's data, like a graph file. It is read as bytes through
``studio.core.files.read_regular_file`` (a folder, a device, a FIFO or a symlink loop is refused before
torch sees it, and the size is bounded), must look like what ``torch.save`` writes, and is unpickled
with ``weights_only=True`` only, so it can hold tensors and plain values but never run code. Every fault
is a :class:`TorchFileError` of one line that names the file and what is wrong; torch's own texts
(paragraphs about its pickle settings, "internal miniz error", an empty ``EOFError``) never reach the user.
"""

from __future__ import annotations

import io
import os
import pickle
import zipfile
from collections.abc import Mapping

import torch
from torch import nn

from studio.core.files import FileReadError, read_regular_file
from studio.core.text import printable

#: the largest weight or checkpoint file read (the whole file is read into memory first)
TORCH_FILE_LIMIT = 8 << 30
#: how torch.save's files begin: a zip archive (torch >= 1.6) or the legacy pickle's magic number
_ZIP_MAGIC = b"PK\x03\x04"
_LEGACY_MAGIC = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"


class TorchFileError(Exception):
    """A torch file that cannot be used; one line naming the file and what is wrong."""


def load_torch_file(path: str | os.PathLike[str], what: str = "torch file",
                    limit: int = TORCH_FILE_LIMIT) -> object:
    """What ``torch.save`` wrote into ``path`` (tensors on the CPU), or a TorchFileError."""
    try:
        data = read_regular_file(path, limit, what)
    except FileReadError as exc:
        raise TorchFileError(str(exc)) from None
    return load_torch_bytes(data, printable(os.fspath(path)), what)


def load_torch_bytes(data: bytes, shown: str, what: str = "torch file") -> object:
    """What ``torch.save`` wrote into ``data`` (the bytes of the file named ``shown``), or a
    TorchFileError. For files a caller reads itself (a run folder's, opened without following links)."""
    if not data:
        raise TorchFileError(f"{shown}: empty (0 bytes), so not a {what}")
    if not (data.startswith(_ZIP_MAGIC) or data.startswith(_LEGACY_MAGIC)):
        raise TorchFileError(f"{shown}: not a {what} (it is not what torch.save writes)")
    if data.startswith(_ZIP_MAGIC):
        # torch reads an archive without checking its checksums: a flipped bit in a tensor would load
        damaged = _failed_checksum(data)
        if damaged:
            raise TorchFileError(f"{shown}: damaged, truncated or altered ({damaged})")
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "weights only" in str(exc).lower() or "weights_only" in str(exc):
            # torch's text here is a paragraph on its pickle settings; the point is simpler
            raise TorchFileError(f"{shown}: holds objects other than tensors and plain values; refused, "
                                 "since loading them could run code from the file") from None
        raise TorchFileError(f"{shown}: damaged, truncated or altered ({_first_sentence(exc)})") from None
    except (EOFError, MemoryError):
        raise TorchFileError(f"{shown}: damaged, truncated (it ends too early)") from None
    except Exception as exc:  # torch raises many kinds for a damaged archive
        raise TorchFileError(f"{shown}: damaged, truncated or altered ({_first_sentence(exc)})") from None


def _failed_checksum(data: bytes) -> str | None:
    """What is wrong with a zip archive's structure or the CRC-32 of a member (torch.save writes them),
    or None when every member is whole."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError,
            NotImplementedError) as exc:
        return f"not a whole archive: {printable(str(exc))[:80]}"
    return f"{printable(bad)[:80]} fails its checksum" if bad else None


def _first_sentence(exc: BaseException) -> str:
    """The gist of torch's message: its first sentence, never advice to unpickle."""
    text = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
    text = text.split(". ")[0].rstrip(".")
    if not text or "weights_only" in text or "weights only" in text.lower():
        return f"truncated or altered; torch cannot read it: {type(exc).__name__}"
    return printable(text[:120])


def state_dict_of(value: object, source: str, what: str = "state dict") -> dict[str, torch.Tensor]:
    """``value`` if it is a state dict (names to tensors), else a TorchFileError naming ``source``."""
    if not isinstance(value, Mapping):
        raise TorchFileError(f"{source}: not a {what} (a dict of named tensors)")
    for key, tensor in value.items():
        if not isinstance(key, str) or not isinstance(tensor, torch.Tensor):
            raise TorchFileError(f"{source}: not a {what}: entry {printable(str(key))[:80]} is "
                                 f"{type(tensor).__name__}, not a tensor")
    return dict(value)


def misfit(state: Mapping[str, torch.Tensor], module: nn.Module) -> str | None:
    """Why ``state`` cannot be ``module``'s weights (keys missing or unexpected, a shape or kind that
    differs), or None when it fits."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}")
        if unexpected:
            shown = [printable(k)[:80] for k in unexpected[:3]]
            parts.append(f"unexpected {', '.join(shown)}{' ...' if len(unexpected) > 3 else ''}")
        return f"weights do not fit this graph ({'; '.join(parts)})"
    for key, tensor in state.items():
        if tensor.shape != own[key].shape:
            return f"{key} has shape {tuple(tensor.shape)}, the graph needs {tuple(own[key].shape)}"
        if tensor.is_floating_point() != own[key].is_floating_point():
            return f"{key} holds {tensor.dtype}, the graph needs {own[key].dtype}"
    return None


def load_weights(path: str | os.PathLike[str], module: nn.Module | None = None) -> dict[str, torch.Tensor]:
    """A state dict file (``torch.save(model.state_dict(), path)``), checked to fit ``module`` if given."""
    state = state_dict_of(load_torch_file(path, "weights file"), printable(os.fspath(path)))
    if module is not None:
        problem = misfit(state, module)
        if problem:
            raise TorchFileError(f"{printable(os.fspath(path))}: {problem}")
    return state
