"""Benchmark: import a 1,000,000-row synthetic subscriber CSV into SQLite and into PostgreSQL.

Each engine's import runs in its own child process, so its peak RSS (os.wait4) is its own. The
SQLite file and the PostgreSQL database are fresh for each run; the database is dropped after.
Prints and writes to bench/results/import.json: rows/s and peak RSS per engine.

Budget: >= 50,000 rows/s and peak RSS <= 200 MB on each engine.

    python bench/import.py [--rows 1000000] [--work bench/work/import]
        [--pg postgresql://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import time
from pathlib import Path
from typing import Any

from measure import run_child

HERE = Path(__file__).resolve().parent
BUDGET = {"rows_per_s": 50_000.0, "peak_rss_mb": 200.0}
SECRET = b"bench-secret-key-0123456789"
NAMES = [
    "Amelia",
    "Oliver",
    "Zoë",
    "Ångström",
    "Siobhan",
    "Kwame",
    "Priya",
    "Mateusz",
    "Leïla",
    "Tom",
]
ZONES = ["", "", "Europe/London", "Europe/Paris", "America/New_York", "Asia/Kolkata"]


def write_csv(path: Path, rows: int, seed: int = 5) -> None:
    """rows data lines: email, name, timezone, about 1 in 1000 duplicated or malformed."""
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("email,name,timezone\n")
        for number in range(rows):
            roll = rng.random()
            if roll < 0.0005:
                email = f"reader{max(number - 1, 0)}@example.net"  # duplicate of the row before
            elif roll < 0.001:
                email = f"reader{number}.example.net"  # no @
            else:
                email = f"Reader{number}@Example.net"
            out.write(f"{email},{rng.choice(NAMES)} {number},{rng.choice(ZONES)}\n")


def child(url: str, csv_path: Path) -> dict[str, Any]:
    from speakerfeed.store.engine import engine_for_url, upgrade
    from speakerfeed.store.importer import import_csv

    engine = engine_for_url(url)
    upgrade(engine)
    started = time.perf_counter()
    report = import_csv(engine, csv_path, "daily", secret=SECRET, confirmed=True)
    elapsed = time.perf_counter() - started
    engine.dispose()
    return {
        "seconds": round(elapsed, 3),
        "rows": report.rows,
        "added": report.added,
        "rejected": report.rejected,
        "rows_per_s": round(report.rows / elapsed),
    }


def run_import(url: str, csv_path: Path) -> tuple[dict[str, Any], float]:
    """The child's result and its peak RSS in MB."""
    return run_child([__file__, "--child", url, "--csv", str(csv_path)], f"import into {url}")


def with_postgresql(server: str, csv_path: Path) -> tuple[dict[str, Any], float]:
    import psycopg
    from sqlalchemy.engine import make_url

    base = make_url(server)
    name = f"speakerfeed_bench_{secrets.token_hex(4)}"
    conninfo = base.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            url = base.set(database=name).render_as_string(hide_password=False)
            return run_import(url, csv_path)
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--work", type=Path, default=HERE / "work" / "import")
    parser.add_argument(
        "--pg",
        default=os.environ.get(
            "SPEAKERFEED_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
        help="PostgreSQL server to create the throw-away database on.",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--csv", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.csv)))
        return

    csv_path = args.work / f"subscribers-{args.rows}.csv"
    if not csv_path.exists():
        write_csv(csv_path, args.rows)
    database = args.work / "import.sqlite3"
    for leftover in args.work.glob("import.sqlite3*"):
        leftover.unlink()
    results: dict[str, Any] = {"rows": args.rows, "budget": BUDGET, "engines": {}}
    for engine in ("sqlite", "postgresql"):
        if engine == "sqlite":
            figures, rss = run_import(f"sqlite:///{database}", csv_path)
        else:
            figures, rss = with_postgresql(args.pg, csv_path)
        figures["peak_rss_mb"] = round(rss, 1)
        results["engines"][engine] = figures
        print(
            f"{engine:10} {figures['rows']:,} rows in {figures['seconds']:.1f} s: "
            f"{figures['rows_per_s']:,} rows/s, peak RSS {rss:.0f} MB "
            f"(budget >= {BUDGET['rows_per_s']:,.0f} rows/s, <= {BUDGET['peak_rss_mb']:.0f} MB)"
        )
    out = HERE / "results" / "import.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
