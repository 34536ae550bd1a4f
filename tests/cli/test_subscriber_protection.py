"""The subscriber commands that protect people, as an editor runs them, on SQLite and PostgreSQL:
resend-confirmation within the per-address limit, the suppression list and its lifts, erase
that asks first and leaves strangers alone, and an import that keeps what readers chose."""

from __future__ import annotations

import email
import email.policy
import json
import os
import pty
import re
import subprocess
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, update

from speakerfeed.store import memberships
from speakerfeed.store import subscribers as repo
from speakerfeed.store.schema import SUPPRESSION_REASONS, subscribers, subscriptions
from tests.support.cli import cli_env, run_speakerfeed, speakerfeed_command
from tests.support.project import BASE_CONFIG

SECRET = "s" * 40


def _config(url: str) -> str:
    return (
        BASE_CONFIG
        + f"""
[email]
from_address = "The Speaker <digest@example.org>"

[[lists]]
name = "daily"
title = "The Speaker Daily"

[delivery]
transport = "outbox"

[signup]
per_address = 2
per_address_window_minutes = 60

[store]
url = "{url}"
"""
    )


@pytest.fixture
def project(engine: Engine, tmp_path: Path) -> Path:
    """A project whose store is the ``engine`` fixture's database (SQLite or PostgreSQL)."""
    folder = tmp_path / "site"
    folder.mkdir()
    url = engine.url.render_as_string(hide_password=False)
    (folder / "config.toml").write_text(_config(url), encoding="utf-8")
    return folder


def _run(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_speakerfeed(folder, *args, secret=SECRET)


def _ok(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    result = _run(folder, *args)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result


def _outbox(folder: Path) -> list[EmailMessage]:
    found = []
    for path in sorted((folder / "var" / "outbox").glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        found.append(message)
    return found


def _text(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def _profile(engine: Engine, address: str) -> tuple[str, str]:
    with engine.connect() as conn:
        row = conn.execute(
            select(subscribers.c.name, subscribers.c.timezone).where(subscribers.c.email == address)
        ).one()
    return row.name, row.timezone


# --- resend-confirmation ------------------------------------------------------------------


def test_resend_confirmation_within_the_per_address_limit_then_refused(
    project: Path, engine: Engine
) -> None:
    _ok(project, "subscribers", "add", "Ann@Example.org", "--list", "daily", "--name", "Ann")
    _ok(project, "subscribers", "add", "bob@example.org", "--list", "daily", "--confirmed")

    first = _ok(project, "subscribers", "resend-confirmation", "ann@example.org", "--list", "daily")
    assert "ann@example.org: confirmation sent" in first.stdout
    (message,) = _outbox(project)
    assert message["To"] == "Ann <ann@example.org>"
    assert "/confirm/daily/" in _text(message)
    _ok(project, "subscribers", "resend-confirmation", "ann@example.org", "--list", "daily")
    assert len(_outbox(project)) == 2

    # [signup] per_address = 2 per hour: the third is refused, and nothing is sent.
    over = _run(project, "subscribers", "resend-confirmation", "ann@example.org", "--list", "daily")
    assert over.returncode == 1
    assert "ann@example.org: not sent: the address had its share of emails for now" in over.stderr
    assert "0 of 1 confirmation(s) sent" in over.stdout
    assert len(_outbox(project)) == 2

    # Confirmed or unknown addresses get nothing; the reason is said.
    other = _run(
        project,
        "subscribers",
        "resend-confirmation",
        "bob@example.org",
        "nobody@example.org",
        "--list",
        "daily",
    )
    assert other.returncode == 1
    assert "bob@example.org: not sent: no pending subscription to the list" in other.stderr
    assert "nobody@example.org: not sent: no pending subscription" in other.stderr
    assert len(_outbox(project)) == 2

    # Each sent confirmation is in the consent records, with its Message-ID.
    shown = _ok(project, "subscribers", "show", "ann@example.org").stdout
    ids = {str(message["Message-ID"]) for message in _outbox(project)}
    assert all(message_id in shown for message_id in ids)
    assert shown.count('"confirmation-resent"') == 2


def test_resend_to_all_pending_of_a_minimum_age(project: Path, engine: Engine) -> None:
    for address in ("old@example.org", "new@example.org"):
        _ok(project, "subscribers", "add", address, "--list", "daily")
    with engine.begin() as conn:
        old = repo.find_by_email(conn, "old@example.org")
        assert old is not None
        conn.execute(
            update(subscriptions)
            .where(subscriptions.c.subscriber_id == old.id)
            .values(updated_at=datetime.now(UTC) - timedelta(days=3))
        )

    sent = _ok(
        project, "subscribers", "resend-confirmation", "--all-pending", "--min-age", "2d",
        "--list", "daily",
    )  # fmt: skip
    assert "old@example.org: confirmation sent" in sent.stdout
    assert "1 of 1 confirmation(s) sent" in sent.stdout
    assert [str(message["To"]) for message in _outbox(project)] == ["old@example.org"]

    # The age counts from the last confirmation: a second run at once sends nothing.
    again = _ok(
        project, "subscribers", "resend-confirmation", "--all-pending", "--min-age", "2d",
        "--list", "daily",
    )  # fmt: skip
    assert "0 of 0 confirmation(s) sent" in again.stdout
    assert len(_outbox(project)) == 1

    # A suppressed (bounced) pending address is never mailed.
    with engine.begin() as conn:
        repo.suppress(conn, repo.address_hash(SECRET.encode(), "new@example.org"), "bounced")
    refused = _run(
        project, "subscribers", "resend-confirmation", "new@example.org", "--list", "daily"
    )
    assert refused.returncode == 1
    assert "new@example.org: not sent: the address is suppressed" in refused.stderr
    assert len(_outbox(project)) == 1

    bad = _run(project, "subscribers", "resend-confirmation", "--all-pending", "--list", "daily",
               "--min-age", "3 weeks")  # fmt: skip
    assert bad.returncode == 2 and "expected minutes, hours or days" in bad.stderr
    neither = _run(project, "subscribers", "resend-confirmation", "--list", "daily")
    assert neither.returncode == 1
    assert "name the pending EMAIL addresses, or pass --all-pending" in neither.stderr


# --- suppressions -------------------------------------------------------------------------


def test_suppressions_list_show_and_lift_with_the_record_kept(
    project: Path, engine: Engine
) -> None:
    from speakerfeed.cli.suppressions import _REASONS

    assert _REASONS == SUPPRESSION_REASONS  # the CLI's choices are the store's reasons

    _ok(project, "subscribers", "add", "left@example.org", "--list", "daily")
    _ok(project, "subscribers", "remove", "left@example.org", "--list", "daily")
    _ok(project, "subscribers", "add", "bounce@example.org", "--list", "daily", "--confirmed")
    with engine.begin() as conn:
        secret = SECRET.encode()
        repo.suppress(conn, repo.address_hash(secret, "bounce@example.org"), "bounced")
        repo.suppress(conn, repo.address_hash(secret, "gone@example.org"), "manual")

    everyone = _ok(project, "suppressions", "list").stdout
    assert re.search(r"unsubscribed +left@example.org", everyone)
    assert re.search(r"bounced +bounce@example.org", everyone)
    # No subscriber holds gone@: only the start of its hash can be shown.
    assert re.search(r"manual +\(address not stored; hash [0-9a-f]{16}…\)", everyone)
    bounced = _ok(project, "suppressions", "list", "--reason", "bounced").stdout
    assert bounced.strip().endswith("bounce@example.org") and len(bounced.splitlines()) == 1

    no_note = _run(project, "suppressions", "lift", "left@example.org")
    assert no_note.returncode == 2 and "--consent-note" in no_note.stderr
    blank = _run(project, "suppressions", "lift", "left@example.org", "--consent-note", "  ")
    assert blank.returncode == 1 and "a consent note is needed" in blank.stderr

    note = "Wrote to the editor on 2 Dec asking to come back"
    lifted = _ok(
        project, "suppressions", "lift", "Left@example.org", "--consent-note", note,
        "--by", "editor-jo",
    )  # fmt: skip
    assert "left@example.org: unsubscribed suppression lifted by editor-jo" in lifted.stdout
    shown = _ok(project, "suppressions", "show", "left@example.org").stdout
    assert shown.startswith("left@example.org: not suppressed")
    assert re.search(
        r"lifted \d{4}-\d\d-\d\d \d\d:\d\d UTC by editor-jo: was unsubscribed since "
        rf"\d{{4}}-\d\d-\d\d \d\d:\d\d UTC; consent: {note}",
        shown,
    )
    # Gone from the suppression list (they left the list itself, so they sign up again).
    after_lift = json.loads(_ok(project, "subscribers", "show", "left@example.org").stdout)
    assert after_lift["suppression"] is None
    # Lifting subscribes no one (the README's promise): the list still has them as left.
    assert [(s["list_name"], s["status"]) for s in after_lift["subscriptions"]] == [
        ("daily", "unsubscribed")
    ]

    refused = _run(project, "suppressions", "lift", "bounce@example.org", "--consent-note", "x")
    assert refused.returncode == 1
    assert "suppressed as 'bounced'; lifting that needs --force" in refused.stderr
    still = _ok(project, "suppressions", "show", "bounce@example.org").stdout
    assert still.startswith("bounce@example.org: suppressed (bounced) since")
    forced = _ok(
        project, "suppressions", "lift", "bounce@example.org", "--force",
        "--consent-note", "Mailbox fixed, says the reader by phone", "--by", "editor-jo",
    )  # fmt: skip
    assert "bounced suppression lifted" in forced.stdout
    history = _ok(project, "suppressions", "show", "bounce@example.org").stdout
    assert "by editor-jo with --force: was bounced" in history

    nothing = _run(project, "suppressions", "lift", "who@example.org", "--consent-note", "x")
    assert nothing.returncode == 1 and "who@example.org is not suppressed" in nothing.stderr
    for result in (no_note, blank, refused, nothing):
        assert "Traceback" not in result.stderr
    for command in ("list", "show", "lift"):
        assert _ok(project, "suppressions", command, "--help").stdout.startswith("Usage:")


# --- erase --------------------------------------------------------------------------------


def _erase(folder: Path, *args: str, answer: str | None) -> subprocess.CompletedProcess[str]:
    """`subscribers erase ARGS` with ``answer`` on standard input (None: no input at all)."""
    return subprocess.run(
        speakerfeed_command("subscribers", "erase", *args),
        cwd=folder,
        env=cli_env(SECRET),
        input=answer,
        stdin=subprocess.DEVNULL if answer is None else None,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_erase_asks_first_and_does_not_suppress_a_stranger_unless_blocked(
    project: Path,
) -> None:
    _ok(project, "subscribers", "add", "ann@example.org", "--list", "daily", "--name", "Ann")

    refused = _erase(project, "ann@example.org", answer=None)
    assert refused.returncode == 1
    assert "ann@example.org: not erased (answer yes, or pass --yes)" in refused.stderr
    assert "Traceback" not in refused.stderr
    declined = _erase(project, "ann@example.org", answer="n\n")
    assert declined.returncode == 1
    assert '"name": "Ann"' in _ok(project, "subscribers", "show", "ann@example.org").stdout

    agreed = _erase(project, "ann@example.org", answer="y\n")
    assert agreed.returncode == 0, agreed.stderr
    assert "Erase ann@example.org and everything stored about it?" in agreed.stderr
    assert "ann@example.org: erased" in agreed.stdout
    shown = _ok(project, "suppressions", "show", "ann@example.org").stdout
    assert shown.startswith("ann@example.org: suppressed (erased)")

    # A typo, or someone else's address: nothing is suppressed without --block.
    stranger = _erase(project, "stranger@example.org", "--yes", answer=None)
    assert stranger.returncode == 0, stranger.stderr
    assert "nothing stored; nothing changed" in stranger.stdout
    assert "not suppressed" in _ok(project, "suppressions", "show", "stranger@example.org").stdout
    _ok(project, "subscribers", "add", "stranger@example.org", "--list", "daily")
    _ok(project, "subscribers", "erase", "stranger@example.org", "--yes")

    blocked = _erase(project, "never@example.org", "--yes", "--block", answer=None)
    assert blocked.returncode == 0, blocked.stderr
    assert "its hash is suppressed (--block)" in blocked.stdout
    again = _run(project, "subscribers", "add", "never@example.org", "--list", "daily")
    assert again.returncode == 1 and "suppressed" in again.stderr


# --- import -------------------------------------------------------------------------------


def test_reimport_keeps_what_the_reader_chose_unless_update(project: Path, engine: Engine) -> None:
    (project / "first.csv").write_text(
        "email,name,timezone\nann@example.org,Ann Smith,Europe/London\nbob@example.org,,\n",
        encoding="utf-8",
    )
    _ok(project, "subscribers", "import", "first.csv", "--list", "daily", "--confirmed")
    with engine.begin() as conn:  # Ann changes her name and zone on the preferences page
        ann = repo.find_by_email(conn, "ann@example.org")
        assert ann is not None
        memberships.set_profile(conn, ann.id, name="Annie", timezone="Asia/Tokyo")

    (project / "again.csv").write_text(
        "email,name,timezone\nann@example.org,Ann,Europe/Paris\nbob@example.org,Bob,America/Lima\n",
        encoding="utf-8",
    )
    kept = _ok(project, "subscribers", "import", "again.csv", "--list", "daily", "--confirmed")
    assert "0 added, 2 updated" in kept.stdout
    assert _profile(engine, "ann@example.org") == ("Annie", "Asia/Tokyo")
    # What was missing is filled in.
    assert _profile(engine, "bob@example.org") == ("Bob", "America/Lima")

    _ok(project, "subscribers", "import", "again.csv", "--list", "daily", "--update")
    assert _profile(engine, "ann@example.org") == ("Ann", "Europe/Paris")


def test_unknown_time_zone_is_reported_by_line_and_the_row_imported(
    project: Path, engine: Engine
) -> None:
    (project / "zones.csv").write_text(
        "email,name,timezone\n"
        "ann@example.org,Ann,Europe/London\n"
        "bob@example.org,Bob,Mars/Olympus_Mons\n"
        "cat@example.org,Cat,GMT+25 (somewhere)\n",
        encoding="utf-8",
    )
    result = _ok(project, "subscribers", "import", "zones.csv", "--list", "daily")
    assert (
        "zones.csv:3: warning: unknown time zone 'Mars/Olympus_Mons' (expected an IANA name "
        "such as Europe/London); imported without one" in result.stderr
    )
    assert "zones.csv:4: warning: unknown time zone 'GMT+25 (somewhere)'" in result.stderr
    assert "3 added" in result.stdout and "0 rejected" in result.stdout
    assert _profile(engine, "bob@example.org") == ("Bob", "")
    assert _profile(engine, "ann@example.org") == ("Ann", "Europe/London")


def test_semicolon_and_tab_files_are_read(project: Path, engine: Engine) -> None:
    # As a spreadsheet in a comma-decimal locale saves it: semicolons, a BOM, CRLF.
    (project / "semi.csv").write_bytes(
        b'\xef\xbb\xbfEmail;Name\r\nann@example.org;Smith, Ann\r\n"dee@example.org";"Dee; Jr."\r\n'
    )
    semi = _ok(project, "subscribers", "import", "semi.csv", "--list", "daily")
    assert "2 added" in semi.stdout and "0 rejected" in semi.stdout
    assert _profile(engine, "ann@example.org") == ("Smith, Ann", "")
    assert _profile(engine, "dee@example.org") == ("Dee; Jr.", "")

    (project / "tabs.tsv").write_text(
        "name\temail\ttimezone\nBob, Jr.\tbob@example.org\tEurope/Berlin\n", encoding="utf-8"
    )
    tabs = _ok(project, "subscribers", "import", "tabs.tsv", "--list", "daily")
    assert "1 added" in tabs.stdout
    assert _profile(engine, "bob@example.org") == ("Bob, Jr.", "Europe/Berlin")


def test_a_file_without_an_email_column_names_the_header_and_delimiter(project: Path) -> None:
    (project / "wrong.csv").write_text("Adresse;Nom\nann@example.org;Ann\n", encoding="utf-8")
    result = _run(project, "subscribers", "import", "wrong.csv", "--list", "daily")
    assert result.returncode == 1
    assert (
        "wrong.csv:1: no 'email' column in the header; found 'Adresse', 'Nom' with the "
        "delimiter guessed as semicolon (;); nothing imported" in result.stderr
    )
    assert "Traceback" not in result.stderr
    assert _ok(project, "subscribers", "count", "--list", "daily").stdout.strip() == "0"


def test_dry_run_reports_and_writes_nothing(project: Path, engine: Engine) -> None:
    _ok(project, "subscribers", "add", "ann@example.org", "--list", "daily", "--name", "Annie")
    (project / "in.csv").write_text(
        "email,name\nann@example.org,Ann\nbob@example.org,Bob\nnot-an-address,X\n",
        encoding="utf-8",
    )
    result = _run(
        project, "subscribers", "import", "in.csv", "--list", "daily", "--dry-run", "--update"
    )
    assert result.returncode == 1  # the bad row is reported as in a real import
    assert "in.csv:4: not an email address: 'not-an-address'" in result.stderr
    assert "3 rows: 1 added, 1 updated, 0 skipped" in result.stdout
    assert "dry run: nothing was written" in result.stdout
    assert _ok(project, "subscribers", "count", "--list", "daily").stdout.strip() == "1"
    assert _profile(engine, "ann@example.org") == ("Annie", "")
    with engine.connect() as conn:
        assert repo.find_by_email(conn, "bob@example.org") is None


def _run_on_a_terminal(folder: Path, *args: str) -> tuple[int, str, str]:
    """`speakerfeed ARGS` with standard error on a pseudo-terminal, as an editor sees it:
    (exit status, standard output, what the terminal showed)."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        speakerfeed_command(*args),
        cwd=folder,
        env=cli_env(SECRET, COLUMNS="120", TERM="xterm"),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=follower,
    )
    os.close(follower)
    shown = b""
    while True:
        try:
            chunk = os.read(leader, 65_536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        shown += chunk
    os.close(leader)
    assert process.stdout is not None
    with process.stdout:
        out = process.stdout.read().decode()
    return process.wait(timeout=120), out, shown.decode(errors="replace")


def test_an_import_of_50000_rows_shows_one_bar_in_bytes_that_ends_at_100_percent(
    project: Path,
) -> None:
    rows = [f"reader{n}@example.org,Reader {n},Europe/London" for n in range(50_000)]
    path = project / "big.csv"
    path.write_text("email,name,timezone\n" + "\n".join(rows) + "\n", encoding="utf-8")
    size = path.stat().st_size

    status, out, shown = _run_on_a_terminal(
        project, "subscribers", "import", "big.csv", "--list", "daily"
    )
    assert status == 0, shown
    assert "50000 rows: 50000 added" in out
    positions = [(int(done), int(total)) for done, total in re.findall(r"(\d+)/(\d+)", shown)]
    assert positions, shown
    # One bar, counted in the file's bytes from start to end: never past its total.
    assert {total for _, total in positions} == {size}
    assert [done for done, _ in positions] == sorted(done for done, _ in positions)
    assert positions[-1] == (size, size)
    assert f"import            [{'#' * 36}]  {size}/{size}" in shown
