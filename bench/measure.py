"""What every benchmark shares: a phase run in a child process (so its peak RSS is its own), and
the results printed and written to bench/results/."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def run_child(arguments: list[str], what: str) -> tuple[dict[str, Any], float]:
    """Run ``python <arguments>``, which prints one JSON object: (that object, peak RSS in MB)."""
    process = subprocess.Popen([sys.executable, *arguments], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"{what} failed with exit code {code}")
    return json.loads(output), usage.ru_maxrss / 1024


def write_results(name: str, results: dict[str, Any], width: int = 36) -> Path:
    out = RESULTS / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    for key, value in results.items():
        print(f"{key:{width}} {value}")
    print(f"written to {out}")
    return out
