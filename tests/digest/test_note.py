"""An editor's note (notes/<list>.md) as the reader sees it: above the first article in the HTML
and the text part of what reaches the outbox, on the web copy and in `digest preview`; frozen
when the send opens, filed to notes/sent/ once it is done; sanitised like an article body. Sends
run on SQLite and PostgreSQL (the note is kept with the send)."""

from __future__ import annotations

import email.parser
import email.policy
import signal
import subprocess
import time
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import Engine

from speakerfeed.actions.database import Store
from speakerfeed.actions.digests import Linted, lint_digest, upcoming_digest
from speakerfeed.actions.sends import Sent, send_now
from speakerfeed.config import Settings
from speakerfeed.digest import deliver
from speakerfeed.digest.issue import Blocked, Issued, open_send
from speakerfeed.digest.note import parse_note, read_note
from speakerfeed.digest.prepare import Preview
from speakerfeed.store import ledger
from speakerfeed.store import subscribers as repo
from speakerfeed.store.engine import upgrade
from speakerfeed.transports.outbox import OutboxTransport
from tests.support.cli import cli_env, run_speakerfeed, speakerfeed_command
from tests.support.project import BASE_CONFIG, make_project, markdown_article

SECRET = b"note-test-secret-key-0123456789ab"
EMAIL = {
    "from_address": "The Speaker <digest@speakernews.co.uk>",
    "postal_address": "The Speaker, 20 Example Street, London",
}
LISTS = [{"name": "daily", "title": "The Speaker Daily", "schedule": "0 7 * * *"}]
ARTICLES: dict[str, str | bytes] = {
    "one.md": markdown_article("Story one", "2024-11-04 09:00"),
    "two.md": markdown_article("Budget & the “students”", "2024-11-06 09:00"),
}
# What an editor might paste: front matter, Markdown, a relative link, raw HTML with a script
# and an event handler, a list, and trailing blank lines.
NOTE = """---
heading: "A word before the holidays"
---
We publish **twice** next week, then rest until 2 January.

<p onclick="steal()">Thanks to our <em>12 new</em> writers!</p><script>alert("x")</script>

- Read [our ethics policy](/ethics/) and
- write to [the desk](mailto:desk@speakernews.co.uk).


"""


def at(day: int) -> datetime:
    return datetime(2024, 11, day, 7, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _no_secret_from_the_shell(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SPEAKERFEED_SECRET_KEY", raising=False)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_project(tmp_path / "site", ARTICLES, email=EMAIL, lists=LISTS)


@pytest.fixture
def store(engine: Engine) -> Store:
    upgrade(engine)
    for address in ("ann@example.org", "bob@example.org", "cat@example.org"):
        with engine.begin() as conn:
            subscriber = repo.add_subscriber(conn, address)
            repo.subscribe(conn, subscriber, "daily", status="confirmed", consent={"action": "t"})
    return Store(engine, SECRET)


def write_config(folder: Path, extra: str = "") -> None:
    """The project's config.toml, for the `speakerfeed` command run in ``folder``."""
    text = f"""{BASE_CONFIG}
[email]
from_address = "{EMAIL["from_address"]}"
postal_address = "{EMAIL["postal_address"]}"

[[lists]]
name = "daily"
title = "The Speaker Daily"
{extra}"""
    (folder / "config.toml").write_text(text, encoding="utf-8")


def write_note(settings: Settings, text: str, list_name: str = "daily") -> Path:
    path = settings.notes_dir / f"{list_name}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def messages(folder: Path) -> list[EmailMessage]:
    parser = email.parser.BytesParser(policy=email.policy.default)
    found = []
    for path in sorted(folder.glob("*.eml")):
        message = parser.parsebytes(path.read_bytes())
        assert isinstance(message, EmailMessage)
        found.append(message)
    return found


def parts(message: EmailMessage) -> tuple[str, str]:
    html = message.get_body(preferencelist=("html",))
    text = message.get_body(preferencelist=("plain",))
    assert html is not None and text is not None
    return html.get_content(), text.get_content().replace("\r\n", "\n")


def send(settings: Settings, store: Store, outbox: Path, day: int) -> Sent:
    result = send_now(
        settings, store, "daily", OutboxTransport(outbox), fetch_upstreams=False, now=at(day)
    )
    assert isinstance(result, Sent) and result.report.state == "done", result
    return result


def test_the_note_is_sent_above_the_articles_then_filed_away(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    note = write_note(settings, NOTE)
    outbox = tmp_path / "outbox"
    result = send(settings, store, outbox, day=11)
    send_id = result.report.send_id

    sent = messages(outbox)
    assert len(sent) == 3
    for message in sent:
        html, text = parts(message)
        # HTML: a labelled region with its heading, before the first article's heading.
        region = html.index('<section aria-labelledby="sf-note-heading">')
        heading = html.index('<h2 id="sf-note-heading">A word before the holidays</h2>')
        first_article = html.index("Budget &amp; the “students”</a></h2>")
        assert region < heading < html.index("<strong>twice</strong>") < first_article
        # Sanitised like an article: no script, no handler; relative links resolved.
        assert "<script" not in html and "alert(" not in html and "onclick" not in html
        assert "<em>12 new</em> writers!" in html
        assert 'href="https://www.speakernews.co.uk/ethics/"' in html
        # Text part: heading, underline, paragraphs, list items with their URLs; above "1.".
        expected = (
            "A word before the holidays\n"
            "--------------------------\n\n"
            "We publish twice next week, then rest until 2 January.\n\n"
            "Thanks to our 12 new writers!\n\n"
            "- Read our ethics policy <https://www.speakernews.co.uk/ethics/> and\n\n"
            "- write to the desk <mailto:desk@speakernews.co.uk>.\n"
        )
        assert expected in text
        assert text.index(expected) < text.index("1. Budget & the “students”")
        assert "alert" not in text and "steal" not in text

    web_copy = settings.output_dir / "digests" / "daily" / send_id / "index.html"
    page = web_copy.read_text(encoding="utf-8")
    assert page.index('id="sf-note-heading">A word before the holidays') < page.index(
        "Budget &amp; the “students”</a></h2>"
    )

    # Done: the note is moved, as written, and the next digest has none.
    assert not note.exists()
    assert (settings.notes_dir / "sent" / f"{send_id}.md").read_text(encoding="utf-8") == NOTE
    with store.engine.connect() as conn:
        row = ledger.send_row(conn, send_id)
    assert row is not None and row["editor_note"] == NOTE

    settings.articles_dir.joinpath("three.md").write_text(
        markdown_article("Story three", "2024-11-12 09:00"), encoding="utf-8"
    )
    later = tmp_path / "outbox-later"
    send(settings, store, later, day=13)
    for message in messages(later):
        html, text = parts(message)
        assert "sf-note-heading" not in html and "holidays" not in text
        assert "Story three" in html


def test_a_stopped_send_resumes_with_the_note_it_opened_with_and_keeps_an_edited_one(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    note = write_note(settings, "Before the send opened.\n")
    opened = open_send(
        store.engine, settings, settings.require_list("daily"), now=at(11), fetch_upstreams=False
    )
    assert isinstance(opened, Issued)
    # Edited after the send opened: this send goes on with the first text, the next gets this.
    note.write_text("Edited during the send.\n", encoding="utf-8")
    outbox = tmp_path / "outbox"
    calls = iter(range(1_000))
    one_at_a_time = settings.model_copy(
        update={"sending": settings.sending.model_copy(update={"batch_size": 1})}
    )
    stop_early = deliver.run_send(
        store.engine,
        one_at_a_time,
        opened.send_id,
        OutboxTransport(outbox),
        secret=SECRET,
        should_stop=lambda: next(calls) >= 1,  # as a crash would, mid-send
        now=at(11),
        processes=1,
    )
    assert stop_early.state == "sending" and 0 < len(messages(outbox)) < 3
    assert note.read_text(encoding="utf-8") == "Edited during the send.\n"  # not moved yet

    finished = deliver.run_send(
        store.engine, settings, opened.send_id, OutboxTransport(outbox), secret=SECRET, now=at(11)
    )
    assert finished.state == "done"
    sent = messages(outbox)
    assert sorted(str(m["To"]) for m in sent) == [
        "ann@example.org",
        "bob@example.org",
        "cat@example.org",
    ]
    for message in sent:
        html, text = parts(message)
        assert "Before the send opened." in html and "Before the send opened." in text
        assert "Edited" not in html and "Edited" not in text
    # The edited note stays for the next issue; the sent text is filed.
    assert note.read_text(encoding="utf-8") == "Edited during the send.\n"
    filed = settings.notes_dir / "sent" / f"{opened.send_id}.md"
    assert filed.read_text(encoding="utf-8") == "Before the send opened.\n"


def test_digest_preview_shows_the_note(settings: Settings, tmp_path: Path) -> None:
    folder = settings.root
    write_config(folder, '\n[build]\nnotes_dir = "editorial/notes"\n')
    notes = folder / "editorial" / "notes"
    notes.mkdir(parents=True)
    (notes / "daily.md").write_text("Our *new* season starts **today**.\n", encoding="utf-8")
    shown = run_speakerfeed(folder, "digest", "preview", "daily", "--out", "preview", "--no-fetch")
    assert shown.returncode == 0, shown.stderr
    assert "editor's note: " in shown.stdout and "editorial/notes/daily.md" in shown.stdout
    (html_file,) = (folder / "preview").glob("*.html")
    (text_file,) = (folder / "preview").glob("*.txt")
    html = html_file.read_text(encoding="utf-8")
    note_at = html.index("Our <em>new</em> season starts <strong>today</strong>.")
    assert note_at < html.index("Budget &amp; the “students”</a></h2>")
    text = text_file.read_text(encoding="utf-8")
    assert text.index("From the editor\n---------------\n\nOur new season starts today.") < (
        text.index("1. Budget & the “students”")
    )
    assert (notes / "daily.md").exists()  # a preview files nothing away


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("---\nheading: [unclosed\n---\nHello.\n", 2, "front matter is not valid YAML"),
        ("---\nheading: Hi\ntitle: Oops\n---\nHello.\n", 3, "unknown key 'title'"),
        ("---\nheading: ''\n---\nHello.\n", 2, "'heading': expected text"),
        ("---\nheading: Hi\nHello.\n", 1, "front matter is not closed"),
    ],
)
def test_a_note_with_bad_front_matter_is_left_out_with_a_warning(
    settings: Settings, text: str, line: int, message: str
) -> None:
    write_note(settings, text)
    reading = read_note(settings, "daily")
    assert reading.note is None and reading.problem is not None
    assert (reading.problem.where, reading.problem.line) == ("notes/daily.md", line)
    assert message in reading.problem.message and reading.problem.warning

    made = upcoming_digest(settings, "daily", fetch_upstreams=False)
    assert isinstance(made, Preview)
    (warning,) = [f for f in made.findings if f.rule == "editor-note"]
    assert warning.severity == "warning" and warning.where == f"notes/daily.md:{line}"
    assert not made.blocked and "sf-note-heading" not in made.rendered.html


def test_digest_lint_names_a_bad_note_and_does_not_block(settings: Settings) -> None:
    write_note(settings, "---\nheding: Hi\n---\nHello.\n")
    linted = lint_digest(settings, "daily", fetch_upstreams=False)
    assert isinstance(linted, Linted) and linted.errors == 0
    (finding,) = [f for f in linted.findings if f.rule == "editor-note"]
    assert str(finding).startswith("notes/daily.md:2: warning: editor-note: editor's note left")
    assert "unknown key 'heding'" in str(finding)


def test_a_note_that_is_not_utf8_names_its_line(settings: Settings) -> None:
    path = settings.notes_dir / "daily.md"
    path.parent.mkdir(parents=True)
    path.write_bytes("Line one\nCafé\n".encode("latin-1"))
    reading = read_note(settings, "daily")
    assert reading.note is None and reading.problem is not None
    assert reading.problem.line == 2 and "not UTF-8" in reading.problem.message


def test_a_remote_image_in_a_note_is_flagged_and_blocks_like_in_an_article(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    write_note(settings, "Look: ![the team](https://tracker.example.net/pixel.png)\n")
    result = send_now(
        settings,
        store,
        "daily",
        OutboxTransport(tmp_path / "outbox"),
        fetch_upstreams=False,
        now=at(11),
    )
    assert isinstance(result, Blocked)
    remote = [f for f in result.preview.findings if f.rule == "remote-resource"]
    assert remote and "tracker.example.net" in remote[0].message
    assert not (tmp_path / "outbox").exists() or not list((tmp_path / "outbox").iterdir())
    assert (settings.notes_dir / "daily.md").exists()  # nothing was sent: the note stays


@pytest.mark.parametrize("text", ["", "   \n\n\t\n", "<script>alert(1)</script>\n"])
def test_an_empty_note_is_no_note(settings: Settings, text: str) -> None:
    write_note(settings, text)
    assert read_note(settings, "daily") == read_note(settings, "nobody")
    assert parse_note(text, "x.md", base_url="https://www.speakernews.co.uk/") is None


def test_a_note_for_another_list_is_not_shown(settings: Settings) -> None:
    write_note(settings, "For the weekly readers only.\n", list_name="weekly")
    made = upcoming_digest(settings, "daily", fetch_upstreams=False)
    assert isinstance(made, Preview)
    assert made.note is None and "weekly readers" not in made.rendered.text


def test_a_sender_killed_mid_send_and_resumed_sends_the_same_note_to_everyone(
    engine: Engine, tmp_path: Path
) -> None:
    """As tests/digest/test_deliver_crash.py: the real `sends resume` in a child process,
    killed with SIGKILL after its first message, then run again to the end."""
    url = engine.url.render_as_string(hide_password=False).replace("+psycopg", "")
    folder = tmp_path / "site"
    settings = make_project(folder, ARTICLES, email=EMAIL, lists=LISTS, store={"url": url})
    write_config(
        folder,
        f"""
[store]
url = "{url}"

[delivery]
transport = "outbox"
outbox_folder = "outbox"

[sending]
batch_size = 2
""",
    )
    upgrade(engine)
    people = {f"reader{number:02}@example.org" for number in range(30)}
    with engine.begin() as conn:
        for address in sorted(people):
            subscriber = repo.add_subscriber(conn, address)
            repo.subscribe(conn, subscriber, "daily", status="confirmed", consent={"action": "t"})
    note = write_note(settings, "The note as the send opened.\n")
    opened = open_send(
        engine,
        settings,
        settings.require_list("daily"),
        now=datetime.now(UTC),
        fetch_upstreams=False,
    )
    assert isinstance(opened, Issued)
    note.write_text("A second thought, for next time.\n", encoding="utf-8")

    command = speakerfeed_command("sends", "resume", opened.send_id, "-q")
    process = subprocess.Popen(
        command, cwd=folder, env=cli_env(SECRET.decode()), stderr=subprocess.DEVNULL
    )
    outbox = folder / "outbox"
    deadline = time.monotonic() + 60
    while process.poll() is None and time.monotonic() < deadline:
        if outbox.is_dir() and next(outbox.glob("*.eml"), None) is not None:
            break
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert len(messages(outbox)) < len(people), "the kill came after the send was done"
    assert note.read_text(encoding="utf-8") == "A second thought, for next time.\n"

    finished = run_speakerfeed(folder, "sends", "resume", opened.send_id, secret=SECRET.decode())
    assert finished.returncode == 0, finished.stderr
    with engine.connect() as conn:
        states = ledger.counts(conn, opened.send_id)
        row = ledger.send_row(conn, opened.send_id)
    assert row is not None and row["state"] == "done", (states, finished.stdout)
    sent = messages(outbox)
    # Rows in flight at the kill are "unknown", not sent again: everyone else got one copy.
    recipients = [str(message["To"]) for message in sent]
    assert len(set(recipients)) == len(recipients) and set(recipients) <= people
    assert states["unknown"] <= 4 and len(recipients) >= len(people) - states["unknown"]
    for message in sent:
        html, text = parts(message)
        assert "The note as the send opened." in html and "The note as the send opened." in text
        assert "second thought" not in html and "second thought" not in text
    filed = settings.notes_dir / "sent" / f"{opened.send_id}.md"
    assert filed.read_text(encoding="utf-8") == "The note as the send opened.\n"
    assert note.read_text(encoding="utf-8") == "A second thought, for next time.\n"


def test_check_warns_of_a_bad_note_naming_file_and_line(settings: Settings) -> None:
    folder = settings.root
    write_config(folder)
    write_note(settings, "---\nheading: Hi\nsummary: [a, b\n---\nHello.\n")
    checked = run_speakerfeed(folder, "check", "--no-fetch")
    output = checked.stdout + checked.stderr
    assert "notes/daily.md:3: warning: editor's note left out of the digest: front matter is" in (
        output
    ), output
    assert checked.returncode == 0, output  # a warning: the digest is not held up


def test_migration_0012_keeps_a_send_under_way_with_no_note(engine: Engine) -> None:
    upgrade(engine, "0009")
    content = ledger.SendContent(subject="S", html="<p>H</p>", text="T")
    with engine.begin() as conn:
        ledger.create_send(conn, "daily-1", "daily", content, scheduled_at=datetime.now(UTC))
    upgrade(engine)
    noted = ledger.SendContent(subject="S", html="<p>H</p>", text="T", editor_note="Hi *all*.\n")
    with engine.begin() as conn:
        ledger.create_send(conn, "daily-2", "daily", noted, scheduled_at=datetime.now(UTC))
    with engine.connect() as conn:
        old, new = ledger.send_row(conn, "daily-1"), ledger.send_row(conn, "daily-2")
    assert old is not None and old["editor_note"] == "" and old["subject"] == "S"
    assert new is not None and new["editor_note"] == "Hi *all*.\n"


def test_the_text_part_keeps_quotations_numbers_and_images_readable(settings: Settings) -> None:
    write_note(
        settings,
        "> A reader wrote to say that the piece on bus fares was the best thing we printed "
        "all year.\n\n1. [Fares](/fares/)\n2. Routes\n\n![Our newsroom](/newsroom.jpg)\n",
    )
    made = upcoming_digest(settings, "daily", fetch_upstreams=False)
    assert isinstance(made, Preview)
    assert (
        "From the editor\n---------------\n\n"
        "> A reader wrote to say that the piece on bus fares was the best thing\n"
        "> we printed all year.\n\n"
        "1. Fares <https://www.speakernews.co.uk/fares/>\n\n"
        "2. Routes\n\n"
        "[Our newsroom]\n"
    ) in made.rendered.text
    assert 'src="https://www.speakernews.co.uk/newsroom.jpg" alt="Our newsroom"' in (
        made.rendered.html
    )
    assert not [f for f in made.findings if f.severity == "error"]
