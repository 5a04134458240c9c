"""What the memory benchmarks share: a measurement in a fresh child process, whose peak resident set
(VmHWM) is its own, and that peak read from /proc."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def peak_rss() -> int:
    """This process's peak resident set size in bytes (VmHWM)."""
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def run_child(script: str, phase: str, args: list[str], env: dict[str, str]) -> dict:
    """Run ``script --phase PHASE ARGS`` with ``env`` over this process's environment and the project on
    its path; the JSON object its stdout ends with. A failed child ends the benchmark with its stderr."""
    done = subprocess.run([sys.executable, script, "--phase", phase, *args],
                          env={**os.environ, "PYTHONPATH": str(ROOT), **env}, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"bench/{Path(script).name}: the {phase} child failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])
