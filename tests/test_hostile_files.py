"""Graph files that try to hurt: devices, FIFOs, symlink loops, paths out of the folder, NUL, lone
surrogates, terminal escapes, non-string v0 ids, duplicate keys, oversized files.

Every case goes through `studio validate`, `studio summary` and `studio export` in one fresh
interpreter (a regression that hangs on a FIFO or reads /dev/zero forever is caught by its timeout,
and its peak memory is measured). Each must give one-line errors naming the file, exit 1 or 2, never
an internal error or a traceback, and print only printable characters.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from studio.cli import main
from studio.core.graph_file import GraphFileError, load_graph, save_graph
from tests.conftest import GRAPHS, ROOT
from tests.hostile_cases import BASE, VALID, make_cases, with_block

RUNNER = r"""
import contextlib, io, json, sys, time
from studio.cli import main


def peak_mb():
    # VmHWM: this process's own peak (ru_maxrss would include the parent's from before exec)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024

results = {}
for name, path in json.loads(sys.argv[1]).items():
    for command in ("validate", "summary", "export"):
        if command == "export" and name in json.loads(sys.argv[3]):
            continue  # a valid graph's export loads torch: tested on its own
        out, err = io.StringIO(), io.StringIO()
        argv = [command, path] + (["--to", sys.argv[2] + "/" + name + ".py"] if command == "export" else [])
        start = time.monotonic()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
        results[f"{name}/{command}"] = {"code": code, "out": out.getvalue(), "err": err.getvalue(),
                                        "seconds": time.monotonic() - start,
                                        "rss_mb": peak_mb()}
results["peak_rss_mb"] = peak_mb()
print(json.dumps(results, ensure_ascii=True))
"""


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile")
    cases = make_cases(folder)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", RUNNER, json.dumps({k: str(v) for k, v in cases.items()}),
                           str(folder), json.dumps(sorted(VALID))],
                          capture_output=True, text=True, timeout=120, env=env, cwd=folder)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return cases, json.loads(proc.stdout.strip().splitlines()[-1])


CASE_NAMES = ["fifo", "dev_zero", "self_loop", "block_dev_zero", "block_dev_random", "block_fifo", "block_loop",
              "block_nul", "block_escape_by_dotdot", "block_escape_by_symlink", "block_absolute", "id_surrogate",
              "id_terminal_escape", "name_surrogate", "v0_int_ids", "duplicate_key", "too_large"]


@pytest.mark.parametrize("command", ["validate", "summary", "export"])
@pytest.mark.parametrize("name", CASE_NAMES)
def test_hostile_file_gets_a_clean_error(outcomes, name, command, capsys):
    cases, results = outcomes
    result = results.get(f"{name}/{command}", {"out": "", "err": "", "code": None})
    text = result["out"] + result["err"]
    if name in VALID:  # hostile text, but a valid graph: it works, and what it prints is escaped
        if command == "export":
            out = cases[name].parent / "exported.py"
            code = main(["export", str(cases[name]), "--to", str(out)])
            text = "".join(capsys.readouterr())
            assert code == 0 and out.is_file(), text
            assert all(ch.isprintable() or ch in "\n" for ch in text), repr(text)
            return
        assert result["code"] == 0, text[-500:]
        assert all(ch.isprintable() or ch in "\n" for ch in text), f"raw characters reach the terminal: {text!r}"
        return
    assert result["code"] in (1, 2), f"exit {result['code']}: {text[-500:]}"
    assert "internal error" not in text and "Traceback" not in text, text[-500:]
    assert all(ch.isprintable() or ch in "\n" for ch in text), f"raw control characters reach the terminal: {text!r}"
    if result["code"] == 2:
        assert result["err"].count("\n") == 1, f"not one line: {result['err']!r}"
    assert str(cases[name].name) in text, f"the message does not name the file: {text!r}"
    assert not (Path(cases[name]).parent.parent.parent / f"{name}.py").exists(), "an export was written"


def test_hostile_files_cost_little_memory(outcomes):
    """The whole process stays under 200 MB peak (reading /dev/zero or /dev/urandom would not stop; a
    hang on a FIFO would hit the runner's timeout). bench/files.py reports the time per file."""
    _, results = outcomes
    peaks = {k: round(v["rss_mb"]) for k, v in results.items() if isinstance(v, dict)}
    assert results["peak_rss_mb"] < 200, f"peak RSS {results['peak_rss_mb']:.0f} MB (after each: {peaks})"


def test_messages_name_the_fault(outcomes):
    _, results = outcomes
    expect = {
        "fifo": "not a regular file", "dev_zero": "not a regular file", "self_loop": "a loop of symbolic links",
        "block_fifo": "not a regular file", "block_loop": "a loop of symbolic links",
        "block_nul": "holds control characters", "block_escape_by_dotdot": "leads out of",
        "block_escape_by_symlink": "leads out of", "block_absolute": "must be relative",
        "block_dev_zero": "leads out of", "v0_int_ids": '"id" must be a string',
        "duplicate_key": 'the key "kernel_size" appears twice', "too_large": "too large",
        "id_surrogate": "\\ud800", "id_terminal_escape": "a\\x1b]0;pwned\\x07",
    }
    for name, words in expect.items():
        text = results[f"{name}/validate"]["out"] + results[f"{name}/validate"]["err"]
        assert words in text, f"{name}: {words!r} not in {text!r}"


def test_duplicate_key_names_the_object(tmp_path):
    text = json.dumps(BASE, indent=2).replace('"kernel_size": 4,', '"kernel_size": 4,\n"kernel_size": 5,')
    path = tmp_path / "dup.json"
    path.write_text(text, encoding="utf-8")
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if '"kernel_size"' in ln)
    with pytest.raises(GraphFileError, match=r'"kernel_size" appears twice in one object \(the object at line '
                                             r'(\d+), column \d+\)') as info:
        load_graph(path)
    object_line = int(re.search(r"line (\d+)", str(info.value)).group(1))
    assert object_line < line and '"params"' in text.splitlines()[object_line - 1]


def test_block_files_beside_and_one_folder_up_still_load(tmp_path):
    """The gallery's layout (models in a folder, blocks in a sibling folder) is inside the policy."""
    (tmp_path / "blocks").mkdir()
    (tmp_path / "family").mkdir()
    shutil.copy(GRAPHS / "blocks" / "conv_relu.json", tmp_path / "blocks" / "conv_relu.json")
    path = tmp_path / "family" / "model.json"
    path.write_text(json.dumps(with_block("../blocks/conv_relu.json")), encoding="utf-8")
    graph = load_graph(path)
    assert graph.load_problems == [] and graph.blocks["conv_relu"].graph is not None
    save_graph(graph, path)
    assert load_graph(path).blocks["conv_relu"].path == "../blocks/conv_relu.json"


def test_an_exception_becomes_one_printable_line():
    from studio.core.text import error_line

    assert error_line(RuntimeError("\n  An attempt was made\n  to start a process\n")) == "An attempt was made"
    assert error_line(ValueError("")) == "ValueError" and error_line(KeyError()) == "KeyError"
    assert error_line(OSError("bad \x1b]0;title\x07 name")) == "bad \\x1b]0;title\\x07 name"
    assert error_line(ValueError("x" * 900)) == "x" * 500 and len(error_line(ValueError("y" * 90), limit=10)) == 10


def test_wide_names_keep_tables_and_the_status_line_in_their_columns():
    from studio.cli.table import format_table
    from studio.core.text import columns, cut_to_columns

    assert columns("gru") == 3 and columns("量价模型") == 8 and columns("e\u0301") == 1
    table = format_table(["graph", "IC"], [["量价模型", "0.05"], ["gru", "0.04"]], align="lr").splitlines()
    assert [columns(line) for line in table] == [14, 14, 14, 14]  # the CJK name takes two columns a character
    assert table[2] == "量价模型  0.05" and table[3] == "gru       0.04"
    assert cut_to_columns("量价模型 x", 7) == "量价..." and cut_to_columns("short", 7) == "short"
    assert all(columns(cut_to_columns("量价模型" * 10, w)) <= w for w in range(3, 30))
