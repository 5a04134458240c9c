"""A full disk: every output is written whole or not at all, and the command says "disk full: PATH" in
one line with exit 2 (issue 25 item 7).

The attack ran the studio on a 30 MB disk: ``train`` exited 3 with ``OSError: [Errno 28]`` or torch's
``enforce fail at inline_container.cc``; ``export --to x.py`` left an empty or 4,096-byte x.py that failed
to import, or a whole x.py beside a truncated x.pt; ONNX left a partial .onnx and .data. Here the disk
fills at each write in turn: the write of the named file fails with ENOSPC when it is flushed to disk,
as the kernel reports it (bench/hostile_runs.py does the same on a real small tmpfs).
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pandas as pd
import pytest
import torch

from studio.cli import main
from studio.core.files import TEMP_MARK
from studio.train.run_lock import held_by
from tests.conftest import GRAPHS

TRAIN = ["--synthetic", "stocks=30", "--synthetic", "days=80", "--epochs", "2", "--patience", "0",
         "--threads", "1", "-q"]
RUN_OUTPUTS = ["run.lock", "graph.json", "config.json", "checkpoint.pt", "metrics.jsonl", "metrics.json", "model.pt",
               "predictions.parquet", "daily.csv", "pnl.png"]


def fill_the_disk_at(monkeypatch, name: str) -> list[str]:
    """The disk is full when a file called ``name`` (or the temporary file of its save) is flushed: its
    fsync, or a direct write to it, fails with ENOSPC. Returns the list of entries that hit it."""
    hits: list[str] = []
    real_fsync, real_write, real_pwrite = os.fsync, os.write, os.pwrite

    def is_target(fd: int) -> bool:
        try:
            entry = Path(os.readlink(f"/proc/self/fd/{fd}")).name
        except OSError:
            return False
        if entry == name or entry.startswith(f".{name}{TEMP_MARK}"):
            hits.append(entry)
            return True
        return False

    def fsync(fd: int) -> None:
        if is_target(fd):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    def write(fd: int, data) -> int:
        if is_target(fd):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    def pwrite(fd: int, data, offset: int) -> int:
        if is_target(fd):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_pwrite(fd, data, offset)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "write", write)
    monkeypatch.setattr(os, "pwrite", pwrite)
    return hits


def one_line(capsys) -> str:
    _, err = capsys.readouterr()
    assert err.endswith("\n") and err.count("\n") == 1, f"not one line: {err!r}"
    assert "Traceback" not in err and "internal error" not in err and "enforce fail" not in err, err
    return err.strip()


def assert_whole(folder: Path) -> None:
    """Every file in ``folder`` reads back whole, and no temporary file of a save is left."""
    for path in folder.iterdir():
        assert TEMP_MARK not in path.name and ".studio-export-" not in path.name, f"left behind: {path.name}"
        if path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix == ".jsonl":
            for line in path.read_text().splitlines():
                json.loads(line)
        elif path.suffix == ".pt":
            torch.load(path, weights_only=True)
        elif path.suffix == ".parquet":
            pd.read_parquet(path)
        elif path.suffix == ".csv":
            pd.read_csv(path)
        elif path.suffix == ".png":
            assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("name", RUN_OUTPUTS)
def test_train_on_a_full_disk_says_so_in_one_line_and_leaves_whole_files(tmp_path, monkeypatch, capsys, name):
    hits = fill_the_disk_at(monkeypatch, name)
    code = main(["train", str(GRAPHS / "default.json"), *TRAIN, "--out", str(tmp_path / "runs")])
    err = one_line(capsys)
    assert hits, f"{name} was never written"
    assert code == 2, err
    assert err.startswith("studio: disk full: ") and err.endswith(name), err
    (run,) = (tmp_path / "runs").iterdir()
    assert_whole(run)
    if name == "run.lock":  # made empty before its process id is written, and let go
        assert (run / name).read_bytes() == b""
        assert held_by(run) is None
    else:
        assert not (run / name).exists(), f"{name} was written despite the full disk"
    if (run / "config.json").is_file():  # the run is closed as failed, with the reason, when that fits
        config = json.loads((run / "config.json").read_text())
        assert config["status"] == "failed" and config["message"].startswith("disk full: ")


def test_a_run_that_met_a_full_disk_resumes_once_there_is_room(tmp_path, monkeypatch, capsys):
    with monkeypatch.context() as patch:
        fill_the_disk_at(patch, "metrics.json")  # the scoring at the end: both epochs' checkpoint is there
        assert main(["train", str(GRAPHS / "default.json"), *TRAIN, "--out", str(tmp_path / "runs")]) == 2
    capsys.readouterr()
    (run,) = (tmp_path / "runs").iterdir()
    assert main(["train", "--resume", str(run), "-q"]) == 0, capsys.readouterr().err
    assert json.loads((run / "config.json").read_text())["status"] == "finished"
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 2
    assert_whole(run)


@pytest.mark.parametrize("name", ["m.py", "m.pt"])
def test_py_export_on_a_full_disk_writes_the_pair_whole_or_neither(tmp_path, monkeypatch, capsys, name):
    out = tmp_path / "m.py"
    fill_the_disk_at(monkeypatch, name)
    code = main(["export", str(GRAPHS / "default.json"), "--to", str(out)])
    err = one_line(capsys)
    assert code == 2 and err == f"studio: disk full: {tmp_path / name}", err
    assert sorted(p.name for p in tmp_path.iterdir()) == [], "a part of the pair was written"


def test_py_export_on_a_full_disk_keeps_the_pair_that_was_there(tmp_path, monkeypatch, capsys):
    out = tmp_path / "m.py"
    assert main(["export", str(GRAPHS / "default.json"), "--to", str(out)]) == 0
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    fill_the_disk_at(monkeypatch, "m.pt")
    assert main(["export", str(GRAPHS / "default.json"), "--to", str(out), "--seed", "7"]) == 2
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_pt2_export_on_a_full_disk(tmp_path, monkeypatch, capsys):
    fill_the_disk_at(monkeypatch, "m.pt2")
    code = main(["export", str(GRAPHS / "default.json"), "--to", str(tmp_path / "m.pt2")])
    err = one_line(capsys)
    assert code == 2 and err == f"studio: disk full: {tmp_path / 'm.pt2'}", err
    assert list(tmp_path.iterdir()) == []


def test_onnx_export_on_a_full_disk_leaves_no_partial_onnx_or_data(tmp_path, monkeypatch, capsys):
    """torch writes the .onnx and its .data itself; the disk fills in the middle of the .data."""
    def export_until_the_disk_fills(module, args, f, **kwargs):
        Path(f).write_bytes(b"\x08\x07partial onnx")
        with open(f"{f}.data", "wb") as fh:
            fh.write(b"\x00" * 4096)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), f"{f}.data")

    (tmp_path / "m.onnx").write_bytes(b"an earlier export")
    monkeypatch.setattr(torch.onnx, "export", export_until_the_disk_fills)
    code = main(["export", str(GRAPHS / "default.json"), "--to", str(tmp_path / "m.onnx")])
    err = one_line(capsys)
    assert code == 2 and err == f"studio: disk full: {tmp_path / 'm.onnx'}", err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]
    assert (tmp_path / "m.onnx").read_bytes() == b"an earlier export"


@pytest.fixture(scope="module")
def cs_rank_run(tmp_path_factory) -> Path:
    """A run whose normalisation (cs_rank) is not put in a .pt2 / ONNX program: its steps go beside it."""
    out = tmp_path_factory.mktemp("cs_rank")
    assert main(["train", str(GRAPHS / "default.json"), *TRAIN, "--normalize", "cs_rank", "--out", str(out)]) == 0
    (run,) = out.iterdir()
    return run


@pytest.mark.parametrize(("suffix", "full"), [(".onnx", "steps"), (".pt2", "steps"), (".pt2", "program")])
def test_a_program_and_its_preprocess_json_are_written_as_a_pair_or_not_at_all(
        cs_rank_run, tmp_path, monkeypatch, capsys, suffix, full):
    # the program was written first: a full disk at NAME.preprocess.json left a program without its steps
    out = tmp_path / f"m{suffix}"
    name = "m.preprocess.json" if full == "steps" else out.name
    capsys.readouterr()
    fill_the_disk_at(monkeypatch, name)
    code = main(["export", str(GRAPHS / "default.json"), "--to", str(out), "--run", str(cs_rank_run)])
    err = one_line(capsys)
    assert code == 2 and err == f"studio: disk full: {tmp_path / name}", err
    assert list(tmp_path.iterdir()) == [], "a part of the pair was written"


def test_a_program_export_on_a_full_disk_keeps_the_pair_that_was_there(cs_rank_run, tmp_path, monkeypatch, capsys):
    out = tmp_path / "m.pt2"
    argv = ["export", str(GRAPHS / "default.json"), "--to", str(out), "--run", str(cs_rank_run)]
    assert main(argv) == 0
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert sorted(before) == ["m.preprocess.json", "m.pt2"]
    fill_the_disk_at(monkeypatch, "m.pt2")
    assert main(argv) == 2
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


@pytest.fixture(scope="module")
def a_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run")
    assert main(["train", str(GRAPHS / "default.json"), *TRAIN, "--out", str(out)]) == 0
    (run,) = out.iterdir()
    return run


@pytest.mark.parametrize(("name", "argv"), [
    ("schema.json", ["schema", "--out", "{out}"]),
    ("table.csv", ["compare", "{run}", "--csv", "{out}"]),
    ("table.md", ["compare", "{run}", "--markdown", "{out}"]),
    ("report.png", ["report", "{run}", "--to", "{out}"]),
    ("report.html", ["report", "{run}", "--to", "{out}"]),
])
def test_other_outputs_on_a_full_disk(a_run, tmp_path, monkeypatch, capsys, name, argv):
    out = tmp_path / "out" / name
    out.parent.mkdir()
    capsys.readouterr()
    fill_the_disk_at(monkeypatch, name)
    code = main([a.format(out=out, run=a_run) for a in argv])
    _, err = capsys.readouterr()
    assert code == 2 and err.strip().splitlines()[-1] == f"studio: disk full: {out}", err
    assert list(out.parent.iterdir()) == []


# ---- the import and feature caches ----------------------------------------------------------------

@pytest.fixture
def on_disk_import(tmp_path, monkeypatch) -> tuple[Path, Path]:
    """A CSV of three symbols' bars, imported onto disk (the mapped path), and the cache folder."""
    from tests.test_import_chunked import long_file

    monkeypatch.setenv("STUDIO_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("STUDIO_ON_DISK_ABOVE_MB", "0")
    return long_file(tmp_path / "bars.csv"), tmp_path / "cache"


def _leftovers(cache: Path) -> list[str]:
    return [p.name for p in cache.rglob("*") if ".work-" in p.name or p.name.endswith(".partial")]


def test_an_import_whose_numpy_write_comes_up_short_says_disk_full(on_disk_import, monkeypatch, capsys):
    """numpy says a full disk as "N requested and M written", with no errno (its tofile and save)."""
    import numpy as np

    bars, cache = on_disk_import

    def short_save(file, arr, *args, **kwargs):
        raise OSError(f"{np.asarray(arr).nbytes} requested and 4096 written")

    monkeypatch.setattr(np, "save", short_save)
    code = main(["data", "inspect", str(bars)])
    err = one_line(capsys)
    assert code == 2 and err.startswith("studio: disk full: ") and err.endswith(".npy"), err
    assert _leftovers(cache) == []


def test_a_mapped_array_on_a_full_disk_is_refused_before_it_is_written(on_disk_import, monkeypatch, capsys):
    """A mapped file's blocks are reserved when it is made: on a full disk its first page write killed the
    process with SIGBUS (bench/hostile_runs.py shows it on a real tmpfs)."""
    bars, cache = on_disk_import

    def no_room(fd, offset, length):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "posix_fallocate", no_room)
    code = main(["data", "inspect", str(bars)])
    err = one_line(capsys)
    assert code == 2 and err.startswith("studio: disk full: ") and err.endswith("values.npy"), err
    assert _leftovers(cache) == []
