"""bench/load.py, run short on SQLite so that it cannot rot: a real `serve`, a real send to a
few hundred subscribers through the SMTP sink, sign-ups meanwhile, and the JSON it writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"


def test_load_bench_reports_signup_latency_during_a_short_send(tmp_path: Path) -> None:
    output = tmp_path / "load.json"
    source = str(Path(__file__).resolve().parents[2] / "src")
    environment = os.environ | {"PYTHONPATH": os.pathsep.join([source, str(BENCH)])}
    subprocess.run(
        [sys.executable, str(BENCH / "load.py"), "--engine", "sqlite", "--recipients", "300",
         "--rate", "600", "--idle-seconds", "1", "--max-seconds", "60",
         "--work", str(tmp_path / "work"), "--output", str(output)],
        check=True, env=environment, cwd=BENCH, capture_output=True, timeout=120,
    )  # fmt: skip
    results = json.loads(output.read_text(encoding="utf-8"))
    sqlite = results["sqlite"]
    assert sqlite["send"]["state"] == "done"
    assert sqlite["send"]["sent"] == 300
    assert sqlite["send"]["messages_per_second"] > 0
    assert sqlite["signups"] >= 1
    assert 0 < sqlite["p50_ms"] <= sqlite["p99_ms"] <= sqlite["max_ms"]
    assert sqlite["status_5xx"] == 0
    assert sqlite["statuses"].get("303", 0) == sqlite["signups"]
    assert sqlite["database_is_locked_in_log"] == 0
    assert sqlite["idle"]["signups"] >= 1
    assert results["load"]["recipients"] == 300
