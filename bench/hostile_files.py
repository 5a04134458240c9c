"""Time and memory of refusing hostile graph files (devices, FIFOs, symlink loops, paths out of the
folder, duplicate keys, oversized files, ...: the cases of tests/test_hostile_files.py).

Each case runs through `studio validate`, `summary` and `export` in this process; the baseline is
`studio validate graphs/residual_blocks.json` (a valid file with a block file) in the same run. The goal
is a one-line error within a second per case and a process under 200 MB.

The last line is JSON: {"cases": n, "worst_seconds": s, "worst_vs_valid_file": ratio, "peak_rss_mb": m}

    python bench/hostile_files.py
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from studio.cli import main  # noqa: E402
from tests.hostile_cases import VALID, make_cases  # noqa: E402


def peak_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def timed(argv: list[str]) -> tuple[int, float]:
    out, err = io.StringIO(), io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, time.perf_counter() - start


def main_bench() -> int:
    timed(["validate", str(ROOT / "graphs" / "residual_blocks.json")])  # warm: imports, registry
    baseline = min(timed(["validate", str(ROOT / "graphs" / "residual_blocks.json")])[1] for _ in range(5))
    worst, worst_name = 0.0, ""
    with tempfile.TemporaryDirectory() as tmp:
        cases = make_cases(Path(tmp))
        for name, path in cases.items():
            for command in ("validate", "summary", "export"):
                if command == "export" and name in VALID:
                    continue
                argv = [command, str(path)] + (["--to", f"{tmp}/{name}.py"] if command == "export" else [])
                code, seconds = timed(argv)
                print(f"{name:26s} {command:9s} exit {code}  {seconds * 1e3:7.1f} ms")
                if seconds > worst:
                    worst, worst_name = seconds, f"{name}/{command}"
    print(f"worst: {worst_name} {worst * 1e3:.1f} ms; a valid file validates in {baseline * 1e3:.1f} ms")
    print(json.dumps({"cases": len(cases), "worst_seconds": round(worst, 4),
                      "worst_vs_valid_file": round(worst / baseline, 2), "peak_rss_mb": round(peak_mb(), 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main_bench())
