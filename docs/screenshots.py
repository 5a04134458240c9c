"""Make the studio's screenshots in docs/screenshots/ (and the README's picture): `make screenshots`.

At 1600 x 1000 and 1280 x 800: the default graph with a node selected, the 13-node transformer
(graphs/transformer/transformer_6x6.json) and a training run in progress on the default graph (the
synthetic market, a few epochs in, curves filling). Rendered offscreen with a fresh layout (no saved
settings), so the pictures show what a new user sees; resources/studio.png is the training shot at
1600 x 1000.

    python docs/screenshots.py [--out docs/screenshots]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")

SIZES = ((1600, 1000), (1280, 800))


def settle(app, seconds: float = 0.3) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.01)


def new_window(app, tmp: Path, size: tuple[int, int]):
    from PySide6.QtCore import QSettings

    from studio.gui.main_window import MainWindow
    from studio.gui.recovery import Recovery
    from studio.nodes import default_registry

    settings = QSettings(str(tmp / f"settings-{size[0]}.ini"), QSettings.Format.IniFormat)
    window = MainWindow(default_registry(), ROOT / "graphs", settings=settings, recovery=Recovery(tmp / "recovery"))
    window.resize(*size)
    window.show()
    window.finish_setup()
    settle(app)
    return window


def shoot(window, app, path: Path) -> None:
    tab = window.current_tab()
    if tab is not None:
        tab.view.frame_all()
    settle(app, 0.2)
    window.grab().save(str(path))
    print(f"wrote {path} ({window.width()} x {window.height()})")


def close(window, app) -> None:
    for document in window.documents:
        document.undo_stack.setClean()
    window.close()
    settle(app, 0.1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from studio.gui.app import application

    app = application()
    with tempfile.TemporaryDirectory(prefix="studio-shots-") as tmp_name:
        tmp = Path(tmp_name)
        os.environ["STUDIO_RUNS_DIR"] = str(tmp / "runs")
        for width, height in SIZES:
            suffix = f"{width}x{height}"
            window = new_window(app, tmp, (width, height))
            tab = window.open_file(ROOT / "graphs" / "default.json")
            tab.scene.select_nodes(["gru_1"])
            shoot(window, app, out / f"default-{suffix}.png")
            window.open_file(ROOT / "graphs" / "transformer" / "transformer_6x6.json")
            shoot(window, app, out / f"transformer_6x6-{suffix}.png")
            window.tabs.setCurrentIndex(0)
            panel = window.training
            panel.stocks.setValue(160)
            panel.days.setValue(260)
            panel.epochs.setValue(40)
            panel.patience.setValue(0)
            epochs: list[dict] = []
            panel.record.connect(lambda r, seen=epochs: r["kind"] == "epoch" and seen.append(r))
            assert panel.start(), panel.status.text()
            deadline = time.monotonic() + 240
            while len(epochs) < 4 and time.monotonic() < deadline and panel.is_running():
                settle(app, 0.2)
            window.plots.redraw()
            settle(app, 0.3)
            shoot(window, app, out / f"training-{suffix}.png")
            panel.stop(wait=True)
            settle(app, 0.3)
            close(window, app)
    shutil.copy(out / "training-1600x1000.png", ROOT / "resources" / "studio.png")
    print(f"wrote {ROOT / 'resources' / 'studio.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
