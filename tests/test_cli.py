"""The headless command line: exit codes, one-line errors, and no Qt on any of its paths."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from studio.cli import main
from tests.conftest import GRAPHS, ROOT

DEFAULT = str(GRAPHS / "default.json")


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def broken_graph(tmp_path: Path) -> Path:
    doc = json.loads(Path(DEFAULT).read_text(encoding="utf-8"))
    doc["nodes"]["conv_1"]["params"]["kernel_size"] = 0
    doc["nodes"]["head"]["params"]["in_features"] = 7
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def test_validate_exit_0_for_valid_files(capsys):
    code, out, err = run(capsys, "validate", DEFAULT, str(GRAPHS / "two_branch.json"))
    assert code == 0 and err == ""
    assert (f"{DEFAULT}: valid (9 nodes, 8,705 parameters; 34.8 kB of weights, ~190.6 kB of activations per "
            "stock and date in training (estimate))") in out.splitlines()


def test_validate_exit_1_lists_every_problem(capsys, tmp_path):
    path = broken_graph(tmp_path)
    code, out, _err = run(capsys, "validate", str(path), DEFAULT)
    assert code == 1
    assert out.splitlines() == [
        f"{path}: conv_1.kernel_size: expects an integer in [1, 4096], gets 0",
        f"{DEFAULT}: valid (9 nodes, 8,705 parameters; 34.8 kB of weights, ~190.6 kB of activations per stock "
        "and date in training (estimate))",
    ]


def test_validate_reports_shape_problems_with_their_source(capsys, tmp_path):
    doc = json.loads(Path(DEFAULT).read_text(encoding="utf-8"))
    doc["nodes"]["head"]["params"]["in_features"] = 7
    path = tmp_path / "g.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    code, out, _ = run(capsys, "validate", str(path))
    assert code == 1
    assert out.strip() == f"{path}: head.x: expects 7 channels, gets 32 from dropout_1.y"


@pytest.mark.parametrize(("content", "expected"), [
    (None, "no such file"),
    ("not json", "not JSON (line 1, column 1: Expecting value)"),
    ('{"format": "something.else", "version": 1}', 'not a graph file (format "something.else"'),
])
def test_validate_exit_2_for_unreadable_input(capsys, tmp_path, content, expected):
    path = tmp_path / "x.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    code, _out, err = run(capsys, "validate", str(path), DEFAULT)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"studio: {path}: ") and expected in lines[0]
    assert "Traceback" not in err


def test_summary_prints_nodes_shapes_and_totals(capsys):
    code, out, _ = run(capsys, "summary", DEFAULT)
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == f"default (model) - {DEFAULT}"
    assert "input: 3 features (close, volume, turnover) x 10 days x 24 bars = N×240×3" in lines
    rows = {line.split()[0]: line.split() for line in lines if line.split() and line.split()[0] in (
        "conv_1", "conv_2", "gru_1", "head")}
    assert rows["conv_1"][1:] == ["conv1d", "N×240×16", "256"]
    assert rows["conv_2"][1:] == ["conv1d", "N×60×32", "2,080"]
    assert rows["gru_1"][1:] == ["gru", "y", "N×60×32,", "last", "N×32", "6,336"]
    assert lines[-1] == "total: 9 nodes, 8,705 parameters (8.71k)"


def test_summary_of_an_invalid_graph_exits_1_with_problems(capsys, tmp_path):
    code, out, _ = run(capsys, "summary", str(broken_graph(tmp_path)))
    assert code == 1
    assert "conv_1.kernel_size: expects an integer in [1, 4096], gets 0" in out


def test_summary_and_export_of_missing_file_exit_2(capsys, tmp_path):
    for argv in (["summary", "nope.json"], ["export", "nope.json", "--to", str(tmp_path / "m.py")]):
        code, _, err = run(capsys, *argv)
        assert code == 2 and err.strip() == "studio: nope.json: no such file"


def test_export_of_an_invalid_graph_exits_1(capsys, tmp_path):
    code, out, _ = run(capsys, "export", str(broken_graph(tmp_path)), "--to", str(tmp_path / "m.py"))
    assert code == 1 and "conv_1.kernel_size" in out
    assert not (tmp_path / "m.py").exists()


def test_bad_options_are_one_line_errors_with_exit_2(capsys):
    code, _, err = run(capsys, "frobnicate")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "invalid choice: 'frobnicate'" in err
    code, _, err = run(capsys, "export", DEFAULT)
    assert code == 2 and "the following arguments are required: --to" in err


def test_nodes_lists_the_catalogue_and_describes_a_type(capsys):
    code, out, _ = run(capsys, "nodes")
    assert code == 0 and "Convolution" in out and "conv1d" in out
    code, out, _ = run(capsys, "nodes", "conv1d")
    assert code == 0 and "padding_mode" in out and "replicate" in out
    code, _, err = run(capsys, "nodes", "nope")
    assert code == 2 and "unknown node type 'nope'" in err


def test_bare_command_without_a_screen_describes_the_default_graph(capsys, monkeypatch):
    for name in ("QT_QPA_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(name, raising=False)
    code, out, err = run(capsys)
    assert code == 0 and "default (model)" in out and "total: 9 nodes" in out
    assert "the studio window cannot open here (no display)" in err
    assert "studio train graphs/default.json" in err


def test_gui_screenshot_renders_the_window_headless(tmp_path):
    out = tmp_path / "shot.png"
    env = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "DISPLAY")}
    done = subprocess.run([sys.executable, "-m", "studio", "gui", str(GRAPHS / "two_branch.json"), "--screenshot",
                           str(out)], capture_output=True, text=True, cwd=ROOT, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 20_000


def test_gui_of_a_missing_file_is_a_one_line_error(capsys):
    code, _, err = run(capsys, "gui", "nope.json")
    assert code == 2 and err.strip() == "studio: nope.json: no such file"


def test_internal_errors_are_one_line(capsys, monkeypatch):
    import studio.cli.graph_commands as commands

    def boom(path):
        raise RuntimeError("something broke\nsecond line")

    monkeypatch.setattr(commands, "load_graph", boom)
    code, _, err = run(capsys, "summary", DEFAULT)
    assert code == 3
    assert err.strip() == ("studio: internal error: RuntimeError: something broke "
                           "(STUDIO_DEBUG=1 shows the traceback)")


BLOCK_QT = """
import sys
class _NoQt:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('PySide6', 'shiboken6', 'pyqtgraph'):
            raise ImportError('No module named ' + repr(name) + ' (blocked: PySide6 not installed)')
        return None
sys.meta_path.insert(0, _NoQt())
from studio.cli import main
code = main(sys.argv[1:])
assert not [m for m in sys.modules if m.split('.')[0] in ('PySide6', 'shiboken6', 'pyqtgraph')]
print('torch' in sys.modules)
sys.exit(code)
"""


@pytest.mark.parametrize("argv", [
    ["validate", DEFAULT], ["summary", DEFAULT], ["nodes"], ["schema"], [],
])
def test_headless_commands_run_without_qt_and_without_torch(argv):
    done = subprocess.run([sys.executable, "-c", BLOCK_QT, *argv], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "False", "graph-only commands must not import torch"


def test_export_runs_without_qt(tmp_path):
    out = tmp_path / "m.py"
    done = subprocess.run([sys.executable, "-c", BLOCK_QT, "export", DEFAULT, "--to", str(out)],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    assert out.exists() and out.with_suffix(".pt").exists()


def test_python_dash_m_studio_works_like_the_entry_point():
    done = subprocess.run([sys.executable, "-m", "studio", "validate", DEFAULT], capture_output=True,
                          text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0 and "valid" in done.stdout
