"""Run folders, full disks and tampered checkpoints: the attacks of issue 25 (items 1, 6 and 7), repeated.

Three families of attacks, each through the command line (``studio.cli.main``, in this process, with a
60 s alarm so that a hang is counted, not waited for):

- **run folder**: a run stopped after 2 of 4 epochs, with a symbolic link to a file outside planted at one
  of its entries (``checkpoint.pt -> ../created.bin``, ``metrics.jsonl -> ../victim.json``, ...), a FIFO,
  a link to a folder, or a hard link; then ``studio train --resume RUN``. Counted: refused in one line,
  and files outside the run folder written or created. (A hard link is no way out: a save replaces the
  entry by a rename, so a resume may go on with the file outside untouched; run.lock, written in place,
  is refused as a hard link.) The same for a sweep folder's entries and ``studio sweep --resume DIR``.
- **checkpoint**: the same run's ``checkpoint.pt`` (``train --resume``) and a finished run's
  ``checkpoint.pt`` or ``model.pt`` (``studio reproduce``) truncated, emptied, replaced by random bytes or a
  folder, a pickle of a class whose unpickling would create a marker file, or edited (epoch 10^9, a
  history too short, weights of another shape, keys missing, wrong types, ...).
- **disk full**: a real tmpfs (``mount -t tmpfs``, when this process may mount: root) filled by a filler
  file so that only N bytes are free, for a range of N; then ``studio train --out`` and ``studio export``
  to .py, .pt2 and .onnx there (the .py also over an earlier export), ``studio train --data`` of 12 real
  symbols with the import and feature caches there, and a mapped array bigger than the room left.
  Counted: outputs that are partial (a file that does not read back whole, a temporary file or staging
  folder left, a .py without its .pt), and whether the message is the one line "disk full: PATH" with
  exit 2. Where mount is not permitted the bench says so and leaves this family out.

Every attack should end refused with one line (exit 2) or, for a disk with room enough, succeed with
whole outputs. The counts: attacks, refused with one line, accepted, tracebacks (an internal error,
exit 3, or an exception out of main), hangs, files written outside, partial outputs, code run from a
file. The last line is JSON of the same.

    python bench/hostile_runs.py          (about a minute on two cores)
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from studio.cli import main  # noqa: E402
from studio.core.files import TEMP_MARK  # noqa: E402
from studio.core.graph_file import load_graph  # noqa: E402
from studio.train.config import SourceSpec, TrainConfig  # noqa: E402
from studio.train.engine import Trainer  # noqa: E402

GRAPH = ROOT / "graphs" / "default.json"
SMALL = {"stocks": 30, "days": 80}
TRAIN_ARGS = ["--synthetic", "stocks=30", "--synthetic", "days=80", "--epochs", "2", "--patience", "0",
              "--threads", "1", "-q"]
MARKER = "hostile-runs-payload-ran"
VICTIM_TEXT = '{"precious": true}\n'


class Payload:
    """A pickle's payload: unpickling it creates the marker file."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


class Hung(Exception):
    pass


def _alarm(signum, frame):
    raise Hung


def run_cli(argv: list[str], seconds: int = 60) -> tuple[int | str, str]:
    """(exit code, or "hung" / "exception: NAME", stderr) of one command."""
    err = io.StringIO()
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(seconds)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            code: int | str = main(argv)
    except Hung:
        code = "hung"
    except BaseException as exc:  # an exception out of main is counted
        code = f"exception: {type(exc).__name__}"
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    return code, err.getvalue()


class Tally:
    def __init__(self) -> None:
        self.counts: Counter = Counter()
        self.rows: list[str] = []

    def record(self, family: str, name: str, code, err: str, *, expect_ok: bool = False,
               outside: int = 0, partial: list[str] | None = None, code_ran: bool = False,
               names: str = "") -> None:
        partial = partial or []
        one_line = err.endswith("\n") and err.count("\n") == 1 and "internal error" not in err
        c = self.counts
        c["attacks"] += 1
        c[f"{family}_attacks"] += 1
        if code == 2 and one_line and (not names or names in err):
            outcome = "refused"
            c["refused_one_line"] += 1
        elif code == 0:
            outcome = "ok" if expect_ok else "ACCEPTED"
            c["succeeded_with_room" if expect_ok else "accepted"] += 1
        elif code == "hung":
            outcome = "HUNG"
            c["hangs"] += 1
        elif code == 3 or str(code).startswith("exception"):
            outcome = "TRACEBACK"
            c["tracebacks"] += 1
        else:
            outcome = f"exit {code}, {err.count(chr(10))} lines"
            c["other"] += 1
        c["files_written_outside"] += outside
        c["partial_outputs"] += len(partial)
        c["code_ran"] += int(code_ran)
        flags = "".join([f" OUTSIDE x{outside}" if outside else "", f" PARTIAL {partial}" if partial else "",
                         " CODE RAN" if code_ran else ""])
        line = err.strip().splitlines()[0][:110] if err.strip() else ""
        self.rows.append(f"{family:10s} {name:38s} {outcome:9s}{flags}  {line}")
        print(self.rows[-1], flush=True)


# ---- the runs attacked ------------------------------------------------------------------------------

def stopped_run(out: Path) -> Path:
    cancel = threading.Event()
    trainer = Trainer(load_graph(GRAPH), SourceSpec(synthetic=SMALL), TrainConfig(epochs=4, threads=1, patience=0),
                      out_dir=out)
    last: dict = {}
    for record in trainer.run(cancel):
        if record["kind"] == "epoch" and record["epoch"] == 2:
            cancel.set()
        last = record
    return Path(last["run_dir"])


def finished_run(out: Path) -> Path:
    trainer = Trainer(load_graph(GRAPH), SourceSpec(synthetic=SMALL), TrainConfig(epochs=2, threads=1, patience=0),
                      out_dir=out)
    return Path(list(trainer.run())[-1]["run_dir"])


def snapshot(folder: Path, skip: Path) -> dict[str, str]:
    """Every file under ``folder`` outside ``skip`` (a link as its target's text), with its digest."""
    out = {}
    for path in folder.rglob("*"):
        if skip in path.parents or path == skip:
            continue
        if path.is_symlink():
            out[str(path)] = "link:" + os.readlink(path)
        elif path.is_file():
            out[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


# ---- run-folder attacks --------------------------------------------------------------------------------

def run_folder_attacks(tally: Tally, base: Path, work: Path) -> None:
    entries = ["checkpoint.pt", "metrics.jsonl", "config.json", "metrics.json", "model.pt", "predictions.parquet",
               "daily.csv", "pnl.png", "graph.json", "run.lock"]
    plants: list[tuple[str, str, str]] = []  # (name, entry, how)
    for entry in entries:
        plants.append((f"{entry} -> ../victim", entry, "link-victim"))
    plants += [("checkpoint.pt -> ../created.bin", "checkpoint.pt", "link-dangling"),
               ("metrics.jsonl -> ../created.jsonl", "metrics.jsonl", "link-dangling"),
               ("checkpoint.pt -> a folder outside", "checkpoint.pt", "link-folder"),
               ("checkpoint.pt a FIFO", "checkpoint.pt", "fifo"),
               ("config.json a FIFO", "config.json", "fifo"),
               ("metrics.jsonl a FIFO", "metrics.jsonl", "fifo"),
               ("run.lock a FIFO", "run.lock", "fifo"),
               ("checkpoint.pt -> a FIFO outside", "checkpoint.pt", "link-fifo"),
               ("checkpoint.pt hard link to outside", "checkpoint.pt", "hardlink"),
               ("metrics.jsonl hard link to outside", "metrics.jsonl", "hardlink"),
               ("run.lock hard link to outside", "run.lock", "hardlink")]
    for n, (name, entry, how) in enumerate(plants):
        case = work / f"folder-{n}"
        run = case / "run"
        shutil.copytree(base, run)
        victim = case / "victim"
        victim.write_text(VICTIM_TEXT)
        target = run / entry
        target.unlink(missing_ok=True)
        if how == "link-victim":
            target.symlink_to(Path("..") / "victim")
        elif how == "link-dangling":
            target.symlink_to(Path("..") / ("created" + Path(entry).suffix.replace(".pt", ".bin")))
        elif how == "link-folder":
            (case / "elsewhere").mkdir()
            target.symlink_to(case / "elsewhere")
        elif how == "fifo":
            os.mkfifo(target)
        elif how == "link-fifo":
            os.mkfifo(case / "pipe")
            target.symlink_to(case / "pipe")
        elif how == "hardlink":
            os.link(victim, target)
        before = snapshot(case, run)
        code, err = run_cli(["train", "--resume", str(run), "-q"])
        after = snapshot(case, run)
        outside = sum(1 for k in set(before) | set(after) if before.get(k) != after.get(k))
        # a hard link is no way out: saves replace the entry (a rename), so a resume may go on, the file
        # outside untouched; anything else planted must be refused
        tally.record("run folder", name, code, err, outside=outside, expect_ok=how == "hardlink")


def sweep_folder_attacks(tally: Tally, work: Path) -> None:
    """A sweep folder with a link or a FIFO planted at one of its entries, then ``studio sweep --resume``."""
    from studio.train.sweep import Sweep, load_spec

    spec = work / "sweep-spec.json"
    spec.write_text(json.dumps({"name": "tiny", "graphs": [str(GRAPH)], "seeds": 1,
                                "training": {"epochs": 1, "patience": 0, "threads": 1},
                                "data": {"synthetic": SMALL}}))
    entries = ["spec.json", "trials.json", "trials.csv", "summary.csv", "run.lock", "sweep.log", "runs"]
    plants = [(f"{entry} -> ../victim", entry, "link-victim") for entry in entries]
    plants += [("trials.json a FIFO", "trials.json", "fifo"), ("run.lock hard link to outside", "run.lock",
                                                                 "hardlink")]
    for n, (name, entry, how) in enumerate(plants):
        case = work / f"sweep-{n}"
        sweep = Sweep.create(load_spec(spec), case)
        victim = case / "victim"
        victim.write_text(VICTIM_TEXT)
        target = sweep.path / entry
        target.unlink(missing_ok=True)
        if how == "link-victim":
            target.symlink_to(Path("..") / "victim")
        elif how == "fifo":
            os.mkfifo(target)
        else:
            os.link(victim, target)
        before = snapshot(case, sweep.path)
        code, err = run_cli(["sweep", "--resume", str(sweep.path), "-q"])
        after = snapshot(case, sweep.path)
        outside = sum(1 for k in set(before) | set(after) if before.get(k) != after.get(k))
        tally.record("sweep", name, code, err, outside=outside)


# ---- checkpoint tampering ------------------------------------------------------------------------------

def _edit(path: Path, change) -> None:
    payload = torch.load(path, weights_only=True)
    change(payload)
    torch.save(payload, path)


def _history(keep: int | None = None, text: str | None = None, renumber: bool = False):
    def change(payload: dict) -> None:
        history = json.loads(payload["history"])
        if renumber:
            for record in history:
                record["epoch"] += 5
        payload["history"] = text if text is not None else json.dumps(history[:keep] if keep is not None
                                                                     else history + history)
    return change


def _reshape(key: str, which: str = "model"):
    def change(payload: dict) -> None:
        state = payload[which] if which else payload
        name = next(iter(state)) if key == "first" else key
        state[name] = torch.zeros(2, 3)
    return change


def _optimizer_moment(payload: dict) -> None:
    state = payload["optimizer"]["state"]
    first = next(iter(state))
    state[first]["exp_avg"] = torch.zeros(5, 5)


def checkpoint_variants(marker: Path) -> dict[str, object]:
    """name -> what to do to the file (a callable of the path)."""
    def truncate(fraction: float):
        return lambda p: p.write_bytes(p.read_bytes()[: int(len(p.read_bytes()) * fraction)])

    def folder(p: Path) -> None:
        p.unlink()
        p.mkdir()
        (p / "data.pkl").write_bytes(b"\x80\x02}q\x00.")

    return {
        "truncated to 10 bytes": lambda p: p.write_bytes(p.read_bytes()[:10]),
        "truncated to 1/4": truncate(0.25),
        "truncated to 1/2": truncate(0.5),
        "truncated by 1 byte": lambda p: p.write_bytes(p.read_bytes()[:-1]),
        "zero bytes": lambda p: p.write_bytes(b""),
        "a folder": folder,
        "random bytes (100)": lambda p: p.write_bytes(os.urandom(100)),
        "random bytes (100 KB)": lambda p: p.write_bytes(os.urandom(100_000)),
        "zip magic then random bytes": lambda p: p.write_bytes(b"PK\x03\x04" + os.urandom(5000)),
        "a bit flipped in a tensor": lambda p: p.write_bytes(_flipped(p.read_bytes())),
        "JSON text": lambda p: p.write_text('{"epoch": 2}'),
        "a pickle of a custom class": lambda p: torch.save({"epoch": 2, "model": Payload(str(marker))}, p),
        "a plain pickle of a custom class": lambda p: p.write_bytes(__import__("pickle").dumps(Payload(str(marker)))),
        "a tensor, not a dict": lambda p: torch.save(torch.zeros(3), p),
        "a list, not a dict": lambda p: torch.save([1, 2, 3], p),
        "epoch 10^9": lambda p: _edit(p, lambda d: d.update(epoch=10**9)),
        "epoch 0": lambda p: _edit(p, lambda d: d.update(epoch=0)),
        "epoch -1": lambda p: _edit(p, lambda d: d.update(epoch=-1)),
        "epoch a string": lambda p: _edit(p, lambda d: d.update(epoch="2")),
        "epoch a float": lambda p: _edit(p, lambda d: d.update(epoch=2.0)),
        "best epoch past the epoch": lambda p: _edit(p, lambda d: d.update(best_epoch=99)),
        "stale 10^6": lambda p: _edit(p, lambda d: d.update(stale=10**6)),
        "best IC NaN": lambda p: _edit(p, lambda d: d.update(best_ic=float("nan"))),
        "history too short": lambda p: _edit(p, _history(keep=1)),
        "history too long": lambda p: _edit(p, _history()),
        "history not JSON": lambda p: _edit(p, _history(text="[{")),
        "history a dict": lambda p: _edit(p, _history(text="{}")),
        "history renumbered": lambda p: _edit(p, _history(renumber=True)),
        "no model": lambda p: _edit(p, lambda d: d.pop("model")),
        "no optimizer": lambda p: _edit(p, lambda d: d.pop("optimizer")),
        "no history": lambda p: _edit(p, lambda d: d.pop("history")),
        "model weights of another shape": lambda p: _edit(p, _reshape("first")),
        "model with an extra key": lambda p: _edit(p, lambda d: d["model"].update({"evil.weight": torch.zeros(1)})),
        "model a string": lambda p: _edit(p, lambda d: d.update(model="weights")),
        "best weights of another shape": lambda p: _edit(p, _reshape("first", "best_state")),
        "best weights missing": lambda p: _edit(p, lambda d: d.update(best_state=None)),
        "optimizer moment of another shape": lambda p: _edit(p, _optimizer_moment),
    }


def weight_variants(marker: Path) -> dict[str, object]:
    return {
        "truncated to 1/2": lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]),
        "zero bytes": lambda p: p.write_bytes(b""),
        "random bytes": lambda p: p.write_bytes(os.urandom(4000)),
        "a pickle of a custom class": lambda p: torch.save({"conv_1.weight": Payload(str(marker))}, p),
        "a tensor, not a dict": lambda p: torch.save(torch.zeros(3), p),
        "weights of another shape": lambda p: _edit(p, _reshape("first", "")),
        "a key missing": lambda p: _edit(p, lambda d: d.pop(next(iter(d)))),
        "a bit flipped in a tensor": lambda p: p.write_bytes(_flipped(p.read_bytes())),
    }


def _flipped(data: bytes) -> bytes:
    """One bit of the first tensor's bytes flipped: torch itself loads such a file."""
    import struct
    import zipfile

    member = next(i for i in zipfile.ZipFile(io.BytesIO(data)).infolist() if "/data/" in i.filename)
    name_length, extra_length = struct.unpack("<HH", data[member.header_offset + 26:member.header_offset + 30])
    at = member.header_offset + 30 + name_length + extra_length
    return data[:at] + bytes([data[at] ^ 1]) + data[at + 1:]


def checkpoint_attacks(tally: Tally, stopped: Path, finished: Path, work: Path) -> None:
    marker = work / MARKER
    jobs = [("resume", stopped, "checkpoint.pt", checkpoint_variants(marker)),
            ("reproduce", finished, "checkpoint.pt", checkpoint_variants(marker)),
            ("reproduce", finished, "model.pt", weight_variants(marker)),
            ("export", finished, "model.pt", weight_variants(marker))]
    n = 0
    for command, base, entry, variants in jobs:
        for name, tamper in variants.items():
            n += 1
            run = work / f"tamper-{n}"
            shutil.copytree(base, run)
            tamper(run / entry)
            records = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file() and p.name != entry}
            if command == "resume":
                argv = ["train", "--resume", str(run), "-q"]
            elif command == "reproduce":
                argv = ["reproduce", str(run), "--out", str(work / f"again-{n}")]
            else:
                argv = ["export", str(GRAPH), "--to", str(work / f"export-{n}.py"), "--weights", str(run / entry)]
            code, err = run_cli(argv)
            changed = [p for p, data in records.items() if p != "run.lock" and (run / p).read_bytes() != data]
            tally.record("checkpoint", f"{command}: {entry} {name}"[:38], code, err, partial=changed,
                         code_ran=marker.exists(), names=entry)
            marker.unlink(missing_ok=True)


# ---- full disks ---------------------------------------------------------------------------------------

def mount_tmpfs(where: Path, size: str) -> str | None:
    """None when mounted, else why not."""
    if os.geteuid() != 0:
        return "not root"
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                          capture_output=True, text=True)
    return None if done.returncode == 0 else (done.stderr.strip() or f"mount exit {done.returncode}")


def leave_free(disk: Path, free: int) -> None:
    """Fill ``disk`` so that about ``free`` bytes stay free (a filler file, rewritten each time)."""
    filler = disk / "filler"
    filler.unlink(missing_ok=True)
    stats = os.statvfs(disk)
    size = max(stats.f_bavail * stats.f_frsize - free, 0)
    with open(filler, "wb") as fh:
        fh.truncate(0)
        chunk = b"\x00" * (1 << 20)
        while size > 0:
            fh.write(chunk[: min(size, len(chunk))])
            size -= min(size, len(chunk))


def whole_run(run: Path) -> list[str]:
    """The files of a run folder that do not read back whole, and temporary files left."""
    import pandas as pd

    bad = []
    for path in run.iterdir():
        try:
            if TEMP_MARK in path.name:
                raise ValueError("temporary file left")
            if path.suffix == ".json":
                json.loads(path.read_text())
            elif path.suffix == ".jsonl":
                [json.loads(line) for line in path.read_text().splitlines()]
            elif path.suffix == ".pt":
                torch.load(path, weights_only=True)
            elif path.suffix == ".parquet":
                pd.read_parquet(path)
            elif path.suffix == ".csv":
                pd.read_csv(path)
            elif path.suffix == ".png":
                data = path.read_bytes()
                if not (data.startswith(b"\x89PNG") and data.endswith(b"IEND\xaeB`\x82")):
                    raise ValueError("truncated PNG")
        except Exception:  # whatever does not read back is partial
            bad.append(path.name)
    return bad


def whole_export(folder: Path, stem: str, suffix: str) -> list[str]:
    bad = [p.name for p in folder.iterdir() if TEMP_MARK in p.name or ".studio-export-" in p.name]
    out = folder / f"{stem}{suffix}"
    try:
        if suffix == ".py":
            weights = out.with_suffix(".pt")
            if out.exists() != weights.exists():
                return [*bad, f"{out.name} without its pair"]
            if out.exists():
                check = (f"import sys; sys.path.insert(0, {str(folder)!r}); import {stem}; {stem}.load_model()")
                done = subprocess.run([sys.executable, "-c", check], capture_output=True)
                if done.returncode != 0:
                    bad.append(out.name)
        elif suffix == ".pt2" and out.exists():
            torch.export.load(str(out))
        elif suffix == ".onnx" and out.exists():
            import onnx

            onnx.checker.check_model(onnx.load(str(out), load_external_data=True))
        elif suffix == ".onnx" and (folder / f"{out.name}.data").exists():
            bad.append(f"{out.name}.data without its .onnx")
    except Exception:  # whatever does not load is partial
        bad.append(out.name)
    return bad


def disk_full_attacks(tally: Tally, work: Path) -> str | None:
    disk = work / "disk"
    disk.mkdir()
    why = mount_tmpfs(disk, "96m")
    if why is not None:
        return why
    try:
        for free in (4_000, 12_000, 40_000, 90_000, 150_000, 250_000, 330_000, 420_000, 520_000, 800_000):
            runs = disk / "runs"
            shutil.rmtree(runs, ignore_errors=True)
            leave_free(disk, free)
            code, err = run_cli(["train", str(GRAPH), *TRAIN_ARGS, "--out", str(runs)])
            folders = list(runs.iterdir()) if runs.is_dir() else []
            partial = [f"{f.name}/{bad}" for f in folders for bad in whole_run(f)]
            tally.record("disk full", f"train, {free:,} bytes free", code, err, expect_ok=True, partial=partial,
                         names="disk full: ")
        for suffix, frees in ((".py", (2_000, 8_000, 30_000, 60_000)), (".pt2", (20_000, 80_000, 200_000)),
                              (".onnx", (10_000, 40_000, 200_000))):
            for free in frees:
                folder = disk / "exports"
                shutil.rmtree(folder, ignore_errors=True)
                folder.mkdir()
                leave_free(disk, free)
                code, err = run_cli(["export", str(GRAPH), "--to", str(folder / f"m{suffix}")])
                tally.record("disk full", f"export {suffix}, {free:,} bytes free", code, err, expect_ok=True,
                             partial=whole_export(folder, "m", suffix), names="disk full: ")
        # over an earlier export: the old pair stays whole when the new one does not fit
        for free in (30_000, 50_000):
            folder = disk / "exports"
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            leave_free(disk, 1 << 20)
            run_cli(["export", str(GRAPH), "--to", str(folder / "m.py")])
            leave_free(disk, free)
            code, err = run_cli(["export", str(GRAPH), "--to", str(folder / "m.py"), "--seed", "7"])
            tally.record("disk full", f"export .py over one, {free:,} free", code, err, expect_ok=True,
                         partial=whole_export(folder, "m", ".py"), names="disk full: ")
        import_attacks(tally, disk, work)
    finally:
        if subprocess.run(["umount", str(disk)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(disk)], check=False)  # a loaded file still mapped: detach
    return None


def import_attacks(tally: Tally, disk: Path, work: Path) -> None:
    """Imported bars on a full disk: the import cache (its row buckets and mapped panel) and the feature
    cache live on the tmpfs (everything on disk: STUDIO_ON_DISK_ABOVE_MB=0), 12 real symbols."""
    source = ROOT.parent / "shared" / "data" / "us_stocks_5min"
    if not source.is_dir():
        print(f"disk full: imports not run: {source} is missing")
        return
    bars = work / "bars"
    bars.mkdir()
    for path in sorted(source.glob("*.csv.gz"))[:12]:
        (bars / path.name).symlink_to(path)
    saved = {k: os.environ.get(k) for k in ("STUDIO_CACHE_DIR", "STUDIO_ON_DISK_ABOVE_MB")}
    os.environ.update(STUDIO_CACHE_DIR=str(disk / "cache"), STUDIO_ON_DISK_ABOVE_MB="0")
    try:
        for free in (1_000_000, 9_000_000, 20_000_000, 24_500_000, 26_000_000, 28_000_000, 40_000_000):
            for part in ("cache", "runs"):
                shutil.rmtree(disk / part, ignore_errors=True)
            leave_free(disk, free)
            code, err = run_cli(["train", str(GRAPH), "--data", str(bars), "--bars-per-day", "78", "--epochs", "1",
                                 "--threads", "1", "--out", str(disk / "runs"), "-q"])
            left = [p.name for p in (disk / "cache").rglob("*") if ".work-" in p.name or p.name.endswith(".partial")]
            runs = list((disk / "runs").iterdir()) if (disk / "runs").is_dir() else []
            partial = left + [f"{r.name}/{bad}" for r in runs for bad in whole_run(r)]
            tally.record("disk full", f"import and train, {free / 1e6:g} MB free", code, err, expect_ok=True,
                         partial=partial, names="disk full: ")
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    # a mapped array larger than the room left: its pages were written into a hole, and the first that
    # found no room killed the process with SIGBUS (run in a child, so that a crash is counted, not met)
    for part in ("cache", "runs"):
        shutil.rmtree(disk / part, ignore_errors=True)
    leave_free(disk, 2_000_000)
    child = ("import sys\nfrom studio.data import store\n"
             "try:\n    store.create(sys.argv[1], (2_000_000,))[:] = 1.0\n"
             "except OSError as exc:\n    print(f'studio: {exc}', file=sys.stderr)\n    sys.exit(2)\n")
    done = subprocess.run([sys.executable, "-c", child, str(disk / "big.npy")], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    code = "exception: SIGBUS" if done.returncode in (-7, 135) else done.returncode
    tally.record("disk full", "a mapped panel bigger than the room", code, done.stderr, names="disk full: ",
                 partial=[p.name for p in disk.iterdir() if p.name.endswith(".partial")])


def main_bench() -> int:
    started = time.perf_counter()
    tally = Tally()
    with tempfile.TemporaryDirectory(prefix="studio-hostile-runs-") as tmp:
        work = Path(tmp)
        with contextlib.redirect_stderr(io.StringIO()):
            stopped, finished = stopped_run(work / "made"), finished_run(work / "made")
        run_folder_attacks(tally, stopped, work)
        sweep_folder_attacks(tally, work)
        checkpoint_attacks(tally, stopped, finished, work)
        tmpfs = disk_full_attacks(tally, work)
    if tmpfs is not None:
        print(f"disk full: not run: a tmpfs cannot be mounted here ({tmpfs}); tests/test_disk_full.py "
              "simulates ENOSPC at each write instead")
    c = tally.counts
    summary = {"attacks": c["attacks"], "refused_one_line": c["refused_one_line"],
               "succeeded_with_room": c["succeeded_with_room"], "accepted": c["accepted"],
               "tracebacks": c["tracebacks"], "hangs": c["hangs"], "other": c["other"],
               "files_written_outside": c["files_written_outside"], "partial_outputs": c["partial_outputs"],
               "code_ran": c["code_ran"], "run_folder_attacks": c["run folder_attacks"],
               "sweep_folder_attacks": c["sweep_attacks"],
               "checkpoint_attacks": c["checkpoint_attacks"], "disk_full_attacks": c["disk full_attacks"],
               "real_tmpfs": tmpfs is None, "seconds": round(time.perf_counter() - started, 1)}
    print(f"{summary['attacks']} attacks: {summary['refused_one_line']} refused in one line, "
          f"{summary['succeeded_with_room']} succeeded where the disk had room, {summary['accepted']} accepted, "
          f"{summary['tracebacks']} tracebacks, {summary['hangs']} hangs, {summary['files_written_outside']} "
          f"files written outside, {summary['partial_outputs']} partial outputs, {summary['code_ran']} "
          "payloads ran")
    print(json.dumps(summary))
    bad = (summary["accepted"] + summary["tracebacks"] + summary["hangs"] + summary["other"]
           + summary["files_written_outside"] + summary["partial_outputs"] + summary["code_ran"])
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main_bench())
