"""Digests by inclusion, as readers see them in their inboxes, on SQLite and PostgreSQL: every
article reaches each list (and each of its cadences) once, whenever it was dated or added, edited
or not, whatever became of public/, and across a crash between recording a digest and its send.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from speakerfeed.actions.database import Store, open_store
from speakerfeed.actions.sends import Sent, send_now
from speakerfeed.config import Settings
from speakerfeed.digest import deliver, issue
from speakerfeed.digest.archive import write_digest_archive
from speakerfeed.digest.issue import NothingNew, Unfinished
from speakerfeed.digest.prepare import Preview, prepare
from speakerfeed.digest.select import next_digest
from speakerfeed.models import RenderedDigest
from speakerfeed.sources.read import read_articles
from speakerfeed.store import inclusions, ledger
from speakerfeed.store import subscribers as repo
from speakerfeed.store.engine import upgrade
from speakerfeed.store.schema import sends
from speakerfeed.transports.memory import MemoryTransport
from tests.support.cli import cli_env, run_speakerfeed, speakerfeed_command
from tests.support.feed_server import Reply, running_server
from tests.support.project import BASE_CONFIG, make_project, markdown_article

SECRET = b"inclusion-test-secret-key-0123456789"
RSS = {"Content-Type": "application/rss+xml; charset=utf-8"}
SEED = Path(__file__).resolve().parents[2] / "articles" / "000_d49d9c5f78f68bb1.txt"
EMAIL = {
    "from_address": "The Speaker <digest@speakernews.co.uk>",
    "postal_address": "The Speaker, 20 Example Street, London",
}
LISTS = [
    {"name": "daily", "title": "The Speaker Daily", "cadences": {"weekly": "0 7 * * 1"}},
    {"name": "politics", "title": "Politics", "tags": ["Politics"]},
]
READERS = {  # address: (list, cadence)
    "ann@example.org": ("daily", ""),
    "cat@example.org": ("daily", "weekly"),
    "pat@example.org": ("politics", ""),
}
BUDGET = "Autumn budget: what it means for students"
FLOODS = "Floods close schools across Yorkshire"
LETTERS = "Letters: your views on the budget & the “cost of learning”"
KAZAKHSTAN = "What is happening in Kazakhstan?"  # the seed article, as scraped
STRIKES = "Junior doctors vote to strike – again"
OLD = [f"Archive {year}" for year in range(2015, 2023)]
IMPORTED = [f"More {year}" for year in range(2000, 2015)]
WIRE = ("Summit ends without a deal", "Ceasefire talks resume in Cairo")
KNOWN = (
    *(BUDGET, FLOODS, LETTERS, KAZAKHSTAN, STRIKES, "edited", "Eight days old"),
    *(*OLD, *IMPORTED, *WIRE),
)
ARTICLES: dict[str, str | bytes] = {
    "2023-11-28-budget.md": markdown_article(
        BUDGET, "2023-11-28 09:00", "The chancellor's plans, line by line.", tags="[politics]"
    ),
    "2023-11-29-floods.md": markdown_article(
        FLOODS, "2023-11-29 08:00", "Rain *again*.", tags="[environment, Yorkshire]"
    ),
}


def at(month: int, day: int, hour: int = 7, minute: int = 0) -> datetime:
    """A moment in late 2023 (Europe/London is on UTC then)."""
    return datetime(2023, month, day, hour, minute, tzinfo=UTC)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_project(tmp_path / "site", ARTICLES, email=EMAIL, lists=LISTS)


@pytest.fixture
def store(engine: Engine) -> Store:
    upgrade(engine)
    subscribe(engine)
    return Store(engine, SECRET)


def subscribe(engine: Engine) -> None:
    with engine.begin() as conn:
        for address, (list_name, cadence) in READERS.items():
            person = repo.add_subscriber(conn, address)
            consent = {"action": "test"}
            status = "confirmed"
            repo.subscribe(conn, person, list_name, status=status, consent=consent, cadence=cadence)


def add_article(settings: Settings, name: str, content: str | bytes) -> None:
    path = settings.root / "articles" / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")


def inbox(
    store: Store,
    settings: Settings,
    when: datetime,
    list_name: str = "daily",
    cadence: str = "",
    *,
    fetch: bool = False,
) -> dict[str, list[str]] | None:
    """Send the list's (cadence's) digest due ``when``; each reader's article titles, as the
    plain-text part they got lists them, in order; None when there was no digest."""
    transport = MemoryTransport()
    result = send_now(
        settings,
        store,
        list_name,
        transport,
        cadence=cadence,
        fetch_upstreams=fetch,
        now=when,
    )
    if isinstance(result, NothingNew):
        return None
    assert isinstance(result, Sent), result
    assert result.report.state == "done", result.report
    return {message.envelope_to: titles(message.data) for message in transport.sent}


def titles(data: bytes) -> list[str]:
    from email import message_from_bytes, policy
    from email.message import EmailMessage

    message = message_from_bytes(data, policy=policy.default)
    assert isinstance(message, EmailMessage)
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    text = part.get_content()
    return sorted((t for t in KNOWN if t in text), key=text.index)


def test_a_backdated_post_and_a_late_scrape_reach_the_next_digest_once_and_an_edit_none(
    store: Store, settings: Settings
) -> None:
    assert inbox(store, settings, at(11, 30)) == {"ann@example.org": [FLOODS, BUDGET]}
    # Added after that digest, both dated before it: the scraped .txt keeps its original time
    # (29 November 13:06), the Markdown post was written the evening before.
    shutil.copy(SEED, settings.root / "articles" / SEED.name)
    add_article(
        settings,
        "2023-11-29-letters.md",
        markdown_article(LETTERS, "2023-11-29 18:00", "Readers write in.", tags="[Politics]"),
    )
    # And an article already sent is edited: new title, body and `updated` date, same file.
    add_article(
        settings,
        "2023-11-28-budget.md",
        markdown_article(
            BUDGET + " (edited)",
            "2023-11-28 09:00",
            "Corrected: the loan threshold rises in April.",
            tags="[politics]",
            updated="2023-11-30 10:00",
        ),
    )
    assert inbox(store, settings, at(12, 1)) == {"ann@example.org": [LETTERS, KAZAKHSTAN]}
    assert inbox(store, settings, at(12, 2)) is None  # nothing is sent twice


def test_one_article_reaches_each_list_and_each_cadence_once(
    store: Store, settings: Settings
) -> None:
    assert inbox(store, settings, at(11, 30)) == {"ann@example.org": [FLOODS, BUDGET]}
    assert inbox(store, settings, at(11, 30), "politics") == {"pat@example.org": [BUDGET]}
    # The weekly cadence has a history of its own: the daily digest did not use its articles up.
    weekly = inbox(store, settings, at(11, 30), cadence="weekly")
    assert weekly == {"cat@example.org": [FLOODS, BUDGET]}
    add_article(
        settings,
        "strikes.md",
        markdown_article(STRIKES, "2023-11-30 12:00", "Ballot result.", tags="[politics]"),
    )
    assert inbox(store, settings, at(12, 1)) == {"ann@example.org": [STRIKES]}
    assert inbox(store, settings, at(12, 2), "politics") == {"pat@example.org": [STRIKES]}
    assert inbox(store, settings, at(12, 4), cadence="weekly") == {"cat@example.org": [STRIKES]}
    for list_name, cadence in (("daily", ""), ("politics", ""), ("daily", "weekly")):
        assert inbox(store, settings, at(12, 5), list_name, cadence) is None
    with store.engine.connect() as conn:
        recorded = inclusions.digests_of(conn, "daily", "weekly")
    assert list(recorded) == ["daily-weekly-2023-11-30-0700", "daily-weekly-2023-12-04-0700"]


def test_deleting_public_changes_nothing_about_what_is_sent(
    store: Store, settings: Settings
) -> None:
    assert inbox(store, settings, at(11, 30)) == {"ann@example.org": [FLOODS, BUDGET]}
    shutil.rmtree(settings.output_dir)
    assert inbox(store, settings, at(12, 1)) is None
    add_article(settings, "strikes.md", markdown_article(STRIKES, "2023-12-01 12:00"))
    assert inbox(store, settings, at(12, 2)) == {"ann@example.org": [STRIKES]}
    # The web copy of the new digest is published again, the old ones are gone with public/.
    archive = settings.output_dir / "digests" / "daily"
    assert [path.name for path in archive.iterdir()] == ["daily-2023-12-02-0700"]


def test_a_crash_after_recording_resumes_the_same_digest_and_sends_it_once(
    store: Store, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    def power_cut(*args: object, **kwargs: object) -> None:
        raise RuntimeError("power cut")

    with monkeypatch.context() as patched:
        patched.setattr(deliver, "run_send", power_cut)
        with pytest.raises(RuntimeError, match="power cut"):
            inbox(store, settings, at(11, 30))
    with store.engine.connect() as conn:
        assert conn.execute(select(sends.c.id, sends.c.state)).all() == [
            ("daily-2023-11-30-0700", "sending")
        ]
        held = inclusions.digests_of(conn, "daily")
    assert list(held) == ["daily-2023-11-30-0700"] and len(held["daily-2023-11-30-0700"]) == 2
    # Restarted a few minutes later: the recorded digest goes out, not a new one.
    transport = MemoryTransport()
    result = send_now(
        settings, store, "daily", transport, fetch_upstreams=False, now=at(11, 30, 7, 5)
    )
    assert isinstance(result, Sent)
    assert result.opened == Unfinished("daily-2023-11-30-0700")
    assert [titles(m.data) for m in transport.sent] == [[FLOODS, BUDGET]]
    assert inbox(store, settings, at(12, 1)) is None


def test_a_crash_while_recording_records_nothing_and_loses_nothing(
    store: Store, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full_disk(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patched:
        patched.setattr(issue, "write_digest_archive", full_disk)
        with pytest.raises(OSError, match="No space left"):
            inbox(store, settings, at(11, 30))
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(sends)).scalar() == 0
        assert inclusions.digests_of(conn, "daily") == {}
    assert inbox(store, settings, at(11, 30, 7, 5)) == {"ann@example.org": [FLOODS, BUDGET]}


def test_an_imported_old_archive_does_not_flood_readers_but_a_first_digest_is_never_empty(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    # A new publication whose articles are all old: its first digest still holds its newest.
    old = make_project(
        tmp_path / "old",
        {
            f"{year}-archive.md": markdown_article(f"Archive {year}", f"{year}-03-01 09:00")
            for year in range(2015, 2023)
        },
        email=EMAIL,
        lists=[{"name": "daily", "title": "The Speaker Daily", "max_items": 3}],
    )
    first = inbox(store, old, at(11, 30))
    assert first is not None
    assert first["ann@example.org"] == ["Archive 2022", "Archive 2021", "Archive 2020"]
    # Then a whole old archive is imported beside one new article and one 8 days old.
    for year in range(2000, 2015):
        add_article(old, f"{year}-more.md", markdown_article(f"More {year}", f"{year}-06-01 09:00"))
    add_article(old, "strikes.md", markdown_article(STRIKES, "2023-11-30 12:00"))
    add_article(old, "stale.md", markdown_article("Eight days old", "2023-11-23 06:59"))
    later = inbox(store, old, at(12, 1))
    assert later is not None
    assert later["ann@example.org"] == [STRIKES]


def test_an_existing_installation_recovers_what_its_digests_held_from_the_archive_once(
    engine: Engine, settings: Settings
) -> None:
    # Before this version: a database at 0008 and the web copies of two earlier digests.
    upgrade(engine, "0008")
    articles, _ = read_articles(settings, fetch_upstreams=False)
    daily, _politics = settings.lists
    for cadence in ("", "weekly"):
        digest = next_digest(
            settings, daily, articles, included=None, now=at(11, 30), cadence=cadence
        )
        assert digest is not None
        write_digest_archive(settings, RenderedDigest(digest, "Old", "", "<p/>", "", ""))
    url = engine.url.render_as_string(hide_password=False).replace("+psycopg", "")
    upgraded = make_project(settings.root, email=EMAIL, lists=LISTS, store={"url": url})
    with open_store(upgraded, need_secret=False) as opened:
        store = Store(opened.engine, SECRET)
        subscribe(store.engine)
        # What the archive shows was sent is not sent again, on either cadence...
        assert inbox(store, upgraded, at(12, 1)) is None
        assert inbox(store, upgraded, at(12, 4), cadence="weekly") is None
        # ...while the politics list, which had no digest yet, gets its first.
        assert inbox(store, upgraded, at(12, 1), "politics") == {"pat@example.org": [BUDGET]}
        add_article(upgraded, "strikes.md", markdown_article(STRIKES, "2023-12-01 12:00"))
        assert inbox(store, upgraded, at(12, 2)) == {"ann@example.org": [STRIKES]}
    # Recovered once: the migration does not run again, and public/ is no longer read.
    shutil.rmtree(upgraded.output_dir)
    with open_store(upgraded, need_secret=False) as opened:
        store = Store(opened.engine, SECRET)
        assert inbox(store, upgraded, at(12, 3)) is None
        with store.engine.connect() as conn:
            assert list(inclusions.digests_of(conn, "daily")) == [
                "daily-2023-11-30-0700",
                "daily-2023-12-02-0700",
            ]


def wire_feed(*items: tuple[str, str, str]) -> bytes:
    """An upstream RSS feed of (guid, title, pubDate) items."""
    entries = "".join(
        f"<item><guid isPermaLink='false'>{guid}</guid><title>{title}</title>"
        f"<link>https://wire.example/{guid}</link><pubDate>{date}</pubDate>"
        f"<description>&lt;p&gt;{title}.&lt;/p&gt;</description></item>"
        for guid, title, date in items
    )
    return (
        "<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel><title>Wire</title>"
        f"<link>https://wire.example/</link><description>News</description>{entries}"
        "</channel></rss>"
    ).encode()


def test_an_upstream_entry_edited_upstream_is_not_sent_again_and_a_late_one_is(
    store: Store, tmp_path: Path
) -> None:
    summit = ("wire-1", WIRE[0], "Wed, 29 Nov 2023 10:00:00 GMT")
    with running_server() as server:
        url = server.route("/wire.xml", Reply(body=wire_feed(summit), headers=RSS))
        settings = make_project(
            tmp_path / "wired",
            email=EMAIL,
            lists=LISTS,
            fetch={"allow_hosts": ["127.0.0.1"], "timeout_seconds": 5},
            upstream=[{"name": "wire", "url": url}],
        )
        assert inbox(store, settings, at(11, 30), fetch=True) == {"ann@example.org": [WIRE[0]]}
        # Upstream, the entry is retitled (same guid) and one dated before our digest appears.
        edited = ("wire-1", WIRE[0] + " (edited)", "Wed, 29 Nov 2023 10:00:00 GMT")
        late = ("wire-2", WIRE[1], "Thu, 30 Nov 2023 06:30:00 GMT")
        server.route("/wire.xml", Reply(body=wire_feed(late, edited), headers=RSS))
        assert inbox(store, settings, at(12, 1), fetch=True) == {"ann@example.org": [WIRE[1]]}


def test_two_processes_recording_the_same_articles_at_once_send_them_once(
    store: Store, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_prepare = prepare
    raced: list[str] = []

    def prepare_while_another_records(*args: Any, **kwargs: Any) -> Preview | None:
        made = real_prepare(*args, **kwargs)
        if made is not None and not raced:
            # Between our reading of what was sent and our recording, another process (a
            # `speakerfeed send` a minute earlier) records a digest of the same articles.
            other = "daily-2023-11-30-0659"
            held = [article.id for article in made.rendered.digest.articles]
            content = ledger.SendContent(subject="Other", html="<p/>", text="", view_url="")
            with store.engine.begin() as conn:
                ledger.create_send(conn, other, "daily", content, scheduled_at=at(11, 30))
                inclusions.record(conn, other, "daily", "", held, at=at(11, 30))
            raced.append(other)
        return made

    monkeypatch.setattr(issue, "prepare", prepare_while_another_records)
    opened = issue.open_send(
        store.engine, settings, settings.lists[0], now=at(11, 30), fetch_upstreams=False
    )
    # Ours was rolled back whole; once more, it finds the other's send and carries on with it.
    assert raced == ["daily-2023-11-30-0659"]
    assert opened == Unfinished("daily-2023-11-30-0659")
    with store.engine.connect() as conn:
        assert conn.execute(select(sends.c.id)).scalars().all() == raced
        assert list(inclusions.digests_of(conn, "daily")) == raced
    assert not (settings.output_dir / "digests" / "daily" / "daily-2023-11-30-0700").exists()


def test_a_run_that_fires_twice_in_a_minute_leaves_a_new_article_for_the_next_digest(
    store: Store, settings: Settings
) -> None:
    assert inbox(store, settings, at(11, 30)) == {"ann@example.org": [FLOODS, BUDGET]}
    add_article(settings, "strikes.md", markdown_article(STRIKES, "2023-11-30 06:30"))
    # The same minute again: the same digest id, whose send is done; nothing more goes out.
    assert inbox(store, settings, at(11, 30)) == {}
    web_copy = settings.output_dir / "digests/daily/daily-2023-11-30-0700/index.html"
    assert STRIKES not in web_copy.read_text(encoding="utf-8")  # still what was sent
    assert inbox(store, settings, at(12, 1)) == {"ann@example.org": [STRIKES]}


def test_killed_after_recording_a_digest_the_next_send_carries_it_out_once(
    engine: Engine, tmp_path: Path
) -> None:
    """A real crash: `speakerfeed send` is killed (SIGKILL) once its digest is recorded, while
    it waits for an SMTP server that never answers; run again, it carries on with that digest,
    which reaches the reader once, and no later digest repeats its articles."""
    folder = tmp_path / "site"
    make_project(folder, ARTICLES)
    upgrade(engine)
    subscribe(engine)
    url = engine.url.render_as_string(hide_password=False).replace("+psycopg", "")
    silent = socket.create_server(("127.0.0.1", 0))  # connects, then never says a word
    port = silent.getsockname()[1]
    config = BASE_CONFIG + CLI_CONFIG.format(url=url)
    (folder / "config.toml").write_text(config + SILENT_SMTP.format(port=port), "utf-8")
    secret = SECRET.decode()
    try:
        child = subprocess.Popen(
            speakerfeed_command("send", "daily", "--no-fetch", "-q"),
            cwd=folder,
            env=cli_env(secret),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 60
        while not recorded(engine) and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert child.poll() is None, child.communicate()[1].decode()
        time.sleep(0.5)  # well into the wait for the server's greeting
        child.kill()
        child.communicate(timeout=30)  # reaped, its pipe closed
    finally:
        silent.close()
    ((send_id, state),) = recorded(engine)
    assert state == "sending"
    assert not (folder / "outbox").exists()  # nobody got anything yet
    (folder / "config.toml").write_text(config + OUTBOX, "utf-8")
    again = run_speakerfeed(folder, "send", "daily", "--no-fetch", "-q", secret=secret)
    assert again.returncode == 0, again.stderr
    # The recorded digest, not a new one. Ann's copy was handed to the transport when the
    # sender died: the ledger marks it unknown and sends it again only when told to.
    assert f"carrying on with the unfinished send {send_id}" in again.stdout
    assert recorded(engine) == [(send_id, "done")]
    resend = ("sends", "resume", send_id, "--resend-unknown", "-q")
    resumed = run_speakerfeed(folder, *resend, secret=secret)
    assert resumed.returncode == 0, resumed.stderr
    letters = [path.read_bytes() for path in (folder / "outbox").glob("*.eml")]
    assert [titles(data) for data in letters] == [[FLOODS, BUDGET]]
    assert b"To: ann@example.org" in letters[0]
    last = run_speakerfeed(folder, "send", "daily", "--no-fetch", "-q", secret=secret)
    assert last.returncode == 0, last.stderr
    assert "no digest" in last.stdout
    assert len(list((folder / "outbox").glob("*.eml"))) == 1


CLI_CONFIG = """
[email]
from_address = "The Speaker <digest@speakernews.co.uk>"
postal_address = "The Speaker, 20 Example Street, London"

[[lists]]
name = "daily"
title = "The Speaker Daily"
cadences = {{ weekly = "0 7 * * 1" }}

[[lists]]
name = "politics"
title = "Politics"
tags = ["Politics"]

[store]
url = "{url}"
"""
SILENT_SMTP = """
[delivery]
transport = "smtp"

[delivery.smtp]
host = "127.0.0.1"
port = {port}
security = "none"
timeout_seconds = 120
"""
OUTBOX = """
[delivery]
transport = "outbox"
outbox_folder = "outbox"
"""


def recorded(engine: Engine) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        return [(str(i), str(s)) for i, s in conn.execute(select(sends.c.id, sends.c.state))]
