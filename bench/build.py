"""Benchmark: build feeds from 10,000 synthetic articles of about 5 KB.

Prints and writes to bench/results/build.json:
- full build: cold, empty cache and output folder, in a fresh process;
- incremental build after one article changed, in a warm process (as `serve` rebuilds), and in a
  fresh process loading the on-disk cache (as the `speakerfeed build` CLI does);
- articles per second of the full build, and the peak RSS of each process.

Budget on the 2-core reference machine: full <= 5 s, incremental <= 100 ms, peak RSS <= 300 MB.

    python bench/build.py [--articles 10000] [--work bench/work]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from measure import run_child

HERE = Path(__file__).resolve().parent
BUDGET = {"full_build_s": 5.0, "incremental_build_ms": 100.0, "peak_rss_mb": 300.0}
TAGS = [
    "politics",
    "economy",
    "world",
    "education",
    "environment",
    "culture",
    "sport",
    "science",
    "technology",
    "health",
    "opinion",
    "uk",
    "europe",
    "asia",
    "africa",
    "americas",
    "media",
    "law",
    "housing",
    "transport",
]
WORDS = [
    "the",
    "government",
    "said",
    "on",
    "thursday",
    "that",
    "young",
    "people",
    "across",
    "the",
    "country",
    "would",
    "see",
    "changes",
    "to",
    "how",
    "schools",
    "colleges",
    "and",
    "universities",
    "are",
    "funded",
    "while",
    "critics",
    "argued",
    "the",
    "plans",
    "did",
    "not",
    "go",
    "far",
    "enough",
    "to",
    "address",
    "rising",
    "costs",
    "of",
    "living",
    "rent",
    "and",
    "transport",
    "for",
    "students",
]

CONFIG = """
[site]
title = "The Speaker"
description = "Benchmark corpus"
url = "https://www.speakernews.co.uk"
timezone = "Europe/London"
author = "The Speaker"

[feeds]
base_url = "https://www.speakernews.co.uk/feeds/"
items = 20

[build]
articles_dir = "articles"
output_dir = "public"
cache_dir = "cache"
"""


def _paragraph(rng: random.Random) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(60, 90))]
    words[0] = words[0].capitalize()
    if rng.random() < 0.3:
        words[5] = f"**{words[5]}**"
    if rng.random() < 0.2:
        words[9] = f"[{words[9]}](https://example.org/{rng.randint(1, 999)})"
    return " ".join(words) + "."


def generate(folder: Path, count: int, seed: int = 5) -> None:
    rng = random.Random(seed)
    folder.mkdir(parents=True)
    start = datetime(2015, 1, 1, 8, tzinfo=UTC)
    for number in range(count):
        when = start + timedelta(hours=7 * number, minutes=rng.randint(0, 59))
        tags = ", ".join(rng.sample(TAGS, k=rng.randint(1, 3)))
        body: list[str] = []
        while sum(len(p) for p in body) < 4600:
            body.append(_paragraph(rng))
            if rng.random() < 0.15:
                body.append(f"## {rng.choice(WORDS).capitalize()} {rng.choice(WORDS)}")
        text = (
            f'---\ntitle: "Article number {number}: {" ".join(rng.sample(WORDS, 6))}"\n'
            f"date: {when.isoformat()}\nauthor: Reporter {number % 37}\ntags: [{tags}]\n---\n"
            + "\n\n".join(body)
            + "\n"
        )
        (folder / f"{when:%Y-%m-%d}-article-{number}.md").write_text(text, encoding="utf-8")


def child(phase: str, work: Path) -> dict[str, Any]:
    """Runs in a fresh process; returns the timings of one phase."""
    from speakerfeed.config import load_settings
    from speakerfeed.feeds.build import Builder

    settings = load_settings(work / "config.toml")
    if phase == "full":
        builder = Builder(settings, fetch_upstreams=False)
        started = time.perf_counter()
        report = builder.build()
        return {
            "seconds": time.perf_counter() - started,
            "articles": report.articles,
            "documents": report.documents,
            "written": len(report.written),
            "problems": len(report.problems),
        }
    files = sorted((work / "articles").iterdir())
    target = files[len(files) // 2]
    original = target.read_text(encoding="utf-8")
    builder = Builder(settings, fetch_upstreams=False)
    started = time.perf_counter()
    cold = builder.build()  # nothing changed: loads the cache from disk, renders nothing
    cold_noop = time.perf_counter() - started
    timings = []
    parsed = []
    written = []
    for attempt in range(5):
        target.write_text(original.replace("\n---\n", f"\n---\nEdit {attempt}. ", 1), "utf-8")
        started = time.perf_counter()
        report = builder.build()
        timings.append(time.perf_counter() - started)
        parsed.append(report.parsed)
        written.append(len(report.written))
    target.write_text(original, encoding="utf-8")
    return {
        "cold_process_noop_seconds": cold_noop,
        "cold_process_parsed": cold.parsed,
        "warm_seconds": timings,
        "warm_parsed": parsed,
        "warm_written": written,
    }


def run_phase(phase: str, work: Path) -> tuple[dict[str, Any], float]:
    """The phase's result and its process's peak RSS in MB."""
    return run_child([__file__, "--child", phase, "--work", str(work)], f"{phase} phase")


def cli_incremental(work: Path) -> float:
    """Wall time of `speakerfeed build` after one article changed (process start included)."""
    target = sorted((work / "articles").iterdir())[7]
    original = target.read_text(encoding="utf-8")
    target.write_text(original + "\nOne more line.\n", encoding="utf-8")
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "speakerfeed", "--config", str(work / "config.toml"), "build",
         "--quiet", "--no-fetch"],
        check=True,
    )  # fmt: skip
    elapsed = time.perf_counter() - started
    target.write_text(original, encoding="utf-8")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--articles", type=int, default=10_000)
    parser.add_argument("--work", type=Path, default=HERE / "work")
    parser.add_argument("--child", choices=["full", "incremental"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.work)))
        return

    work: Path = args.work
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    (work / "config.toml").write_text(CONFIG, encoding="utf-8")
    started = time.perf_counter()
    generate(work / "articles", args.articles)
    size = sum(p.stat().st_size for p in (work / "articles").iterdir())
    print(f"generated {args.articles} articles, {size / args.articles / 1024:.1f} KB on average, "
          f"in {time.perf_counter() - started:.1f} s")  # fmt: skip

    full, full_rss = run_phase("full", work)
    incremental, incremental_rss = run_phase("incremental", work)
    cli_seconds = cli_incremental(work)
    warm_ms = sorted(t * 1000 for t in incremental["warm_seconds"])
    results = {
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "articles": args.articles,
        "average_article_bytes": round(size / args.articles),
        "full_build_s": round(full["seconds"], 3),
        "articles_per_second": round(full["articles"] / full["seconds"]),
        "documents": full["documents"],
        "files_written": full["written"],
        "incremental_build_ms": round(warm_ms[len(warm_ms) // 2], 1),
        "incremental_build_ms_all": [round(t, 1) for t in warm_ms],
        "incremental_articles_parsed": incremental["warm_parsed"],
        "incremental_files_written": incremental["warm_written"],
        "incremental_fresh_process_noop_s": round(incremental["cold_process_noop_seconds"], 3),
        "incremental_cli_s": round(cli_seconds, 3),
        "peak_rss_mb": round(max(full_rss, incremental_rss), 1),
        "peak_rss_mb_full": round(full_rss, 1),
        "peak_rss_mb_incremental": round(incremental_rss, 1),
        "budget": BUDGET,
    }
    results["within_budget"] = all(results[key] <= limit for key, limit in BUDGET.items())
    out = HERE / "results" / "build.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    for key, value in results.items():
        print(f"{key:36} {value}")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
