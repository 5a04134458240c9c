"""Shared fixtures. Qt tests render offscreen (no display needed)."""

from __future__ import annotations

import faulthandler
import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# the studio's settings (recent files, the dock layout) go to a folder of the test run, never to the
# user's own (~/.config/Model Studio); subprocesses inherit it
import tempfile

os.environ["XDG_CONFIG_HOME"] = tempfile.mkdtemp(prefix="studio-tests-config-")
os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")

# Small tensors everywhere: one thread avoids OpenMP hand-offs, which stall for milliseconds when
# another process holds the second core (CI machines have two).
import torch
from hypothesis import settings

torch.set_num_threads(1)

# the property tests draw the same cases on every run (a failure in CI reproduces on any machine);
# STUDIO_FUZZ_EXAMPLES and longer runs explore further by hand
settings.register_profile("studio", derandomize=True, database=None)
settings.load_profile("studio")

ROOT = Path(__file__).resolve().parent.parent


# A hang that holds the GIL (a deadlock inside C code) starves pytest-timeout's watchdog thread. The
# interpreter's C-level watchdog needs no GIL: it writes every thread's stack to a file and ends the
# process, a minute after pytest-timeout would have (a test, or a worker's exit, that never returns).
# The controller prints the files in its summary, so CI shows where it stuck instead of timing out.
HARD_TIMEOUT_S = int(os.environ.get("STUDIO_TEST_HARD_TIMEOUT_S", "540"))
EXIT_TIMEOUT_S = 180
_stacks_file = None


def _stacks_dir(config) -> Path:
    return Path(config.rootpath) / ".pytest_cache" / "hung-stacks"


def pytest_configure(config):
    global _stacks_file
    directory = _stacks_dir(config)
    if not hasattr(config, "workerinput"):  # the controller (or a run without xdist) starts afresh
        shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True, exist_ok=True)
    _stacks_file = open(directory / f"{os.getpid()}.txt", "w")  # noqa: SIM115 (open for the whole run)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    faulthandler.dump_traceback_later(HARD_TIMEOUT_S, exit=True, file=_stacks_file)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()


def pytest_unconfigure(config):
    # from here only the interpreter's exit is left: threads to join, atexit handlers
    faulthandler.dump_traceback_later(EXIT_TIMEOUT_S, exit=True, file=_stacks_file)


def pytest_terminal_summary(terminalreporter, config):
    if hasattr(config, "workerinput"):
        return
    for path in sorted(_stacks_dir(config).glob("*.txt")):
        text = path.read_text(errors="replace").strip()
        if text:
            terminalreporter.section(f"a process hung and was ended: stacks from {path.name}", red=True)
            terminalreporter.write_line(text)
GRAPHS = ROOT / "graphs"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def gallery_files() -> list[Path]:
    """Every graph file of the gallery, blocks included."""
    return sorted(GRAPHS.rglob("*.json"))


def gallery_models() -> list[Path]:
    import json

    return [p for p in gallery_files() if json.loads(p.read_text(encoding="utf-8")).get("kind") == "model"]


SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real data sets, read in place beside the checkout; their absence is a failure, not a skip."""
    for part in ("us_stocks_5min", "sse50_hourly/A_stock_hourly.csv", "sse50_hourly/daily_prices_sse_50.csv"):
        if not (SHARED_DATA / part).exists():
            pytest.fail(f"{SHARED_DATA / part} is missing: the tests read ../shared/data beside the checkout")
    return SHARED_DATA


@pytest.fixture(scope="session")
def registry():
    from studio.nodes import default_registry

    return default_registry()


@pytest.fixture(autouse=True)
def no_unexpected_modal_dialogs(monkeypatch):
    """A modal message box nobody answers would hang the suite offscreen: fail the test instead. Tests
    that expect one replace the function themselves (after this fixture)."""
    import sys

    widgets = sys.modules.get("PySide6.QtWidgets")
    if widgets is None:
        return

    def refuse(kind):
        def box(*args, **kwargs):
            text = next((a for a in args if isinstance(a, str) and a), "")
            raise AssertionError(f"an unexpected modal QMessageBox.{kind} would block the test: {text[:200]}")
        return box

    for kind in ("warning", "critical", "information", "question", "about"):
        monkeypatch.setattr(widgets.QMessageBox, kind, staticmethod(refuse(kind)))
