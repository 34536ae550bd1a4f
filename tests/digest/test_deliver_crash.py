"""A send killed with SIGKILL at seeded random moments, then resumed, on SQLite and PostgreSQL:
every confirmed recipient gets the digest, a second copy only ever among rows the ledger marks
unknown, and suppressed or unsubscribed addresses get nothing. Also: two processes sending the
same digest at once on PostgreSQL reach each recipient once.

The sender is the real `speakerfeed sends resume` in a child process, writing through the outbox
transport (each message a file, written atomically: the file's existence is the provider's
acceptance).
"""

from __future__ import annotations

import random
import re
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text

from speakerfeed.store import ledger
from speakerfeed.store import subscribers as repo
from speakerfeed.store.engine import engine_for_url, upgrade
from speakerfeed.store.schema import deliveries, subscribers
from tests.support.cli import cli_env, speakerfeed_command
from tests.support.project import BASE_CONFIG

SECRET = "crash-test-secret-key-0123456789"
RUNS = 50
PEOPLE = 120
TO = re.compile(rb"^To: (\S+)\r$", re.MULTILINE)
CONTENT = ledger.SendContent(
    subject="The Speaker Daily",
    html="<p>Hello SFMARK0NAME0SFMARK</p><a href='SFMARK0UNSUBSCRIBE0SFMARK'>Unsubscribe</a>"
    "<a href='SFMARK0PREFERENCES0SFMARK'>Preferences</a>",
    text="Hello SFMARK0NAME0SFMARK\nUnsubscribe: SFMARK0UNSUBSCRIBE0SFMARK\n"
    "Preferences: SFMARK0PREFERENCES0SFMARK\n",
)


def project(folder: Path, engine: Engine) -> Path:
    url = engine.url.render_as_string(hide_password=False).replace("+psycopg", "")
    config = (
        BASE_CONFIG
        + f"""
[email]
from_address = "The Speaker <digest@speakernews.co.uk>"

[[lists]]
name = "daily"
title = "The Speaker Daily"

[store]
url = "{url}"

[delivery]
transport = "outbox"
outbox_folder = "outbox"

[sending]
batch_size = 8
"""
    )
    (folder / "config.toml").write_text(config, encoding="utf-8")
    return folder


def populate(
    engine: Engine, people: int = PEOPLE, *, record_audience: bool = True
) -> tuple[set[str], set[str]]:
    """(addresses that must get the digest, addresses that must not). Without
    ``record_audience`` the senders add the send's rows as they go (a batch of 8 at a time),
    so a kill can also land while they add them."""
    upgrade(engine)
    wanted, unwanted = set(), set()
    with engine.begin() as conn:
        for number in range(people):
            address = f"reader{number:03}@example.org"
            subscriber = repo.add_subscriber(conn, address)
            repo.subscribe(conn, subscriber, "daily", status="confirmed", consent={"action": "t"})
            if number % 20 == 3:
                repo.suppress(conn, repo.address_hash(SECRET.encode(), address), "bounced")
                unwanted.add(address)
            elif number % 20 == 7:
                repo.set_status(conn, subscriber, "daily", "unsubscribed")
                unwanted.add(address)
            else:
                wanted.add(address)
        ledger.create_send(
            conn,
            "daily-1",
            "daily",
            CONTENT,
            scheduled_at=datetime.now(UTC),
            record_audience=record_audience,
        )
    return wanted, unwanted


def sender(folder: Path, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        speakerfeed_command("sends", "resume", "daily-1", "-q", *extra),
        cwd=folder,
        env=cli_env(SECRET),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def finish(folder: Path, *extra: str) -> None:
    process = sender(folder, *extra)
    _, errors = process.communicate(timeout=120)
    assert process.returncode == 0, errors.decode()


def delivered(folder: Path) -> Counter[str]:
    found: Counter[str] = Counter()
    for path in (folder / "outbox").glob("*.eml"):
        match = TO.search(path.read_bytes())
        assert match is not None, f"{path.name} has no To line"
        found[match.group(1).decode()] += 1
    return found


def unknown_addresses(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(subscribers.c.email)
            .join(deliveries, deliveries.c.subscriber_id == subscribers.c.id)
            .where(deliveries.c.state == "unknown")
        ).scalars()
        return set(rows)


# 50 runs on SQLite, the embedded default, and 20 on PostgreSQL: each run starts two or three
# processes, so this is the slowest test file; the two engines share every line of the ledger.
CASES = [("sqlite", seed) for seed in range(RUNS)] + [("postgresql", seed) for seed in range(20)]


@pytest.fixture
def crash_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    backend = request.param
    url = (
        f"sqlite:///{tmp_path / 'store.sqlite3'}"
        if backend == "sqlite"
        else request.getfixturevalue("postgresql_url")
    )
    made = engine_for_url(url)
    try:
        yield made
    finally:
        if backend == "postgresql":
            with made.begin() as conn:
                conn.execute(text("DROP SCHEMA public CASCADE"))
                conn.execute(text("CREATE SCHEMA public"))
        made.dispose()


def wait_for_first_message(folder: Path, process: subprocess.Popen[bytes]) -> None:
    outbox = folder / "outbox"
    deadline = time.monotonic() + 60
    while process.poll() is None and time.monotonic() < deadline:
        if outbox.is_dir() and next(outbox.glob("*.eml"), None) is not None:
            return
        time.sleep(0.005)


@pytest.mark.parametrize(
    ("crash_engine", "seed"), CASES, indirect=["crash_engine"], ids=[f"{b}-{n}" for b, n in CASES]
)
def test_a_send_killed_at_a_random_moment_and_resumed(
    crash_engine: Engine, tmp_path: Path, seed: int
) -> None:
    engine = crash_engine
    folder = project(tmp_path, engine)
    wanted, unwanted = populate(engine, record_audience=seed % 2 == 0)
    rng = random.Random(seed)
    process = sender(folder)
    if seed % 5 == 0:
        time.sleep(rng.uniform(0.1, 0.7))  # during start-up or the first claims
    else:
        wait_for_first_message(folder, process)  # during the sending itself
        time.sleep(rng.uniform(0.0, 0.3))
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert process.stderr is not None
    process.stderr.close()

    finish(folder)
    counts = delivered(folder)
    unknown = unknown_addresses(engine)
    with engine.connect() as conn:
        states = ledger.counts(conn, "daily-1")
    assert states["pending"] == 0 and states["sending"] == 0, states
    assert not (set(counts) & unwanted), "a suppressed or unsubscribed address got mail"
    missing = wanted - set(counts) - unknown
    assert not missing, f"never sent and not marked unknown: {sorted(missing)[:5]}"
    doubled = {address for address, n in counts.items() if n > 1}
    assert doubled <= unknown, f"sent twice but not marked unknown: {sorted(doubled - unknown)}"
    if not unknown:
        assert set(counts) == wanted
        return
    # The operator resends the unknown ones: now everyone has it, and only they may have two.
    finish(folder, "--resend-unknown")
    counts = delivered(folder)
    assert set(counts) == wanted
    assert {address for address, n in counts.items() if n > 1} <= unknown


def test_two_processes_share_one_send_on_postgresql(postgresql_url: str, tmp_path: Path) -> None:
    # PostgreSQL only: several senders at once is what it is for (SQLite has one writer).
    engine = engine_for_url(postgresql_url)
    try:
        wanted, counts, sent, workers = two_senders(engine, tmp_path)
    finally:
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()
    assert set(counts) == wanted and set(counts.values()) == {1}
    assert sent == len(wanted)
    assert len(workers - {""}) == 2, f"one process did all the work: {workers}"


def two_senders(engine: Engine, tmp_path: Path) -> tuple[set[str], Counter[str], int, set[str]]:
    """Two `sends resume` at once on one send: (the addresses wanted, messages per address
    delivered, rows sent in the ledger, the workers that sent)."""
    folder = project(tmp_path, engine)
    # Long enough for the two to overlap; both add the send's rows as they go, taking turns.
    wanted, _ = populate(engine, people=600, record_audience=False)
    first, second = sender(folder), sender(folder)
    for process in (first, second):
        _, errors = process.communicate(timeout=120)
        assert process.returncode == 0, errors.decode()
    with engine.connect() as conn:
        workers = set(conn.execute(select(deliveries.c.worker).distinct()).scalars())
        sent = ledger.counts(conn, "daily-1")["sent"]
    return wanted, delivered(folder), sent, workers
