"""What every benchmark shares: a phase run in a child process (so its peak RSS is its own), and
the results printed and written to bench/results/."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
# The publication the digest benchmarks write for: config.toml's tables but [[lists]].
SPEAKER_CONFIG: dict[str, Any] = {
    "site": {
        "title": "The Speaker",
        "url": "https://www.speakernews.co.uk",
        "author": "The Speaker",
    },
    "feeds": {"base_url": "https://www.speakernews.co.uk/feeds/"},
    "email": {
        "from_address": "The Speaker <digest@speakernews.co.uk>",
        "reply_to": "letters@speakernews.co.uk",
        "app_url": "https://news.speakernews.co.uk",
        "unsubscribe_mailto": "unsubscribe@speakernews.co.uk",
        "postal_address": "1 Fleet Street, London EC4Y 1AA",
    },
}


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


def run_child_with_pss(arguments: list[str], what: str) -> tuple[dict[str, Any], float, float]:
    """``run_child``, and the peak of the summed PSS (MB) of the child and its descendants,
    sampled every 200 ms: forked workers share their parent's pages, which their RSS figures each
    count in full, and PSS shares out."""
    process = subprocess.Popen([sys.executable, *arguments], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    peak = [0.0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.2):
            peak[0] = max(peak[0], _tree_pss_mb(process.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output = process.stdout.read()
    done.set()
    sampler.join()
    _, status, usage = os.wait4(process.pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"{what} failed with exit code {code}")
    return json.loads(output), usage.ru_maxrss / 1024, peak[0]


def _tree_pss_mb(pid: int) -> float:
    """The summed PSS of ``pid`` and its descendants (Linux /proc), 0 for those gone."""
    total_kb, todo = 0, [pid]
    while todo:
        current = todo.pop()
        try:
            rollup = Path(f"/proc/{current}/smaps_rollup").read_text()
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        for line in rollup.splitlines():
            if line.startswith("Pss:"):
                total_kb += int(line.split()[1])
        todo.extend(int(child) for child in children)
    return total_kb / 1024


async def serve_until_signalled(server: asyncio.Server) -> None:
    """For a sink: say ``listening <port>`` (what the benchmark waits for), then serve until
    SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    print(f"listening {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await stop.wait()


def write_results(name: str, results: dict[str, Any], width: int = 36) -> Path:
    out = RESULTS / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    for key, value in results.items():
        print(f"{key:{width}} {value}")
    print(f"written to {out}")
    return out
