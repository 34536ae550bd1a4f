"""The editors' subscriber commands: CSV import, people (show, erase, export), and the CLI."""

from __future__ import annotations

import csv
import io
import json
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from speakerfeed.store import people
from speakerfeed.store import subscribers as repo
from speakerfeed.store.engine import upgrade
from speakerfeed.store.importer import import_csv
from speakerfeed.store.schema import consent_records, subscribers, subscriptions, suppressions
from tests.support.cli import run_speakerfeed
from tests.support.project import BASE_CONFIG

SECRET = b"test-secret-key-for-imports"
MALFORMED = (
    b"Email,Name,Colour\n"  # 1: an unknown column
    b"ann@example.org,Ann,red\n"  # 2
    b"not-an-address,Bad,blue\n"  # 3
    b"caf\xe9@example.org,Latin-1,green\n"  # 4: not UTF-8
    b"ANN@Example.org ,Ann again,red\n"  # 5: duplicate of line 2 once normalised
    b"bob@example.org,Bob\n"  # 6: too few fields
    b"carl@example.org,Carl,x,extra\n"  # 7: too many fields
    b"\n"  # 8: blank, ignored
    b'"dee@example.org","Dee, Jr.",\n'  # 9
    b",No address,\n"  # 10
    b"zoe@b\xc3\xbccher.example,Zo\xc3\xab,\n"  # 11: UTF-8 is fine; the IDN domain stored as ASCII
)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _emails(engine: Engine, list_name: str = "daily") -> dict[str, str]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(subscribers.c.email, subscriptions.c.status)
            .join(subscriptions, subscriptions.c.subscriber_id == subscribers.c.id)
            .where(subscriptions.c.list_name == list_name)
        )
        return {row.email: row.status for row in rows}


def test_malformed_csv_reports_each_bad_row_with_its_line_and_imports_the_rest(
    engine: Engine, tmp_path: Path
) -> None:
    upgrade(engine)
    path = _write(tmp_path / "list.csv", MALFORMED)
    report = import_csv(engine, path, "daily", secret=SECRET, confirmed=False)
    found = {(p.line, p.warning): p.message for p in report.problems}
    assert found[(1, True)] == "unknown column(s) ignored: colour"
    assert "not an email address: 'not-an-address'" in found[(3, False)]
    assert "not UTF-8" in found[(4, False)]
    assert "ann@example.org appears earlier in the file" in found[(5, False)]
    assert found[(6, False)] == "expected 3 fields as in the header, got 2"
    assert found[(7, False)] == "expected 3 fields as in the header, got 4"
    assert found[(10, False)] == "no email address"
    assert len(report.problems) == 7
    assert all(p.where == str(path) for p in report.problems)
    assert report.rejected == 6
    assert (report.rows, report.added, report.updated, report.skipped) == (9, 3, 0, 0)
    assert _emails(engine) == {
        "ann@example.org": "pending",
        "dee@example.org": "pending",
        "zoe@xn--bcher-kva.example": "pending",
    }
    with engine.connect() as conn:
        dee = repo.find_by_email(conn, "dee@example.org")
        assert dee is not None and dee.name == "Dee, Jr."
        # Without --confirmed there is no consent to record yet: double opt-in will.
        assert conn.execute(select(func.count()).select_from(consent_records)).scalar() == 0


def test_a_file_without_an_email_column_imports_nothing(engine: Engine, tmp_path: Path) -> None:
    upgrade(engine)
    path = _write(tmp_path / "list.csv", b"address,name\nann@example.org,Ann\n")
    report = import_csv(engine, path, "daily", secret=SECRET, confirmed=True)
    assert [(p.line, p.message) for p in report.problems] == [
        (
            1,
            "no 'email' column in the header; found 'address', 'name' with the delimiter"
            " guessed as comma (,); nothing imported",
        )
    ]
    assert _emails(engine) == {}


def test_unsubscribed_and_suppressed_addresses_are_never_added_again(
    engine: Engine, tmp_path: Path
) -> None:
    upgrade(engine)
    with engine.begin() as conn:
        left = repo.add_subscriber(conn, "left@example.org")
        repo.subscribe(conn, left, "daily", status="unsubscribed", consent={"action": "x"})
        repo.suppress(conn, repo.address_hash(SECRET, "bounced@example.org"), "bounced")
        kept = repo.add_subscriber(conn, "kept@example.org", name="Old")
        repo.subscribe(conn, kept, "daily", status="pending", consent={"action": "subscribed"})
    path = _write(
        tmp_path / "list.csv",
        b"email,name\nLeft@example.org,L\nbounced@example.org,B\nkept@example.org,New\n"
        b"new@example.org,\n",
    )
    # batch=1: each row in its own transaction, so batching cannot hide a row-level mistake.
    report = import_csv(engine, path, "daily", secret=SECRET, confirmed=True, update=True, batch=1)
    assert report.problems == []
    assert (report.rows, report.added, report.updated, report.skipped) == (4, 1, 1, 2)
    assert _emails(engine) == {
        "left@example.org": "unsubscribed",
        "kept@example.org": "confirmed",
        "new@example.org": "confirmed",
    }
    with engine.connect() as conn:
        assert repo.find_by_email(conn, "bounced@example.org") is None
        renamed = repo.find_by_email(conn, "kept@example.org")
        assert renamed is not None and renamed.name == "New"


def test_confirmed_import_records_consent_and_a_plain_import_never_downgrades(
    engine: Engine, tmp_path: Path
) -> None:
    upgrade(engine)
    path = _write(tmp_path / "members-2024.csv", b"email\nann@example.org\nbob@example.org\n")
    import_csv(engine, path, "daily", secret=SECRET, confirmed=True)
    with engine.connect() as conn:
        records = conn.execute(
            select(consent_records.c.list_name, consent_records.c.action, consent_records.c.form)
        ).all()
    assert sorted(records) == [("daily", "imported", "members-2024.csv")] * 2
    again = import_csv(engine, path, "daily", secret=SECRET, confirmed=False)
    assert (again.added, again.updated) == (0, 2)
    assert set(_emails(engine).values()) == {"confirmed"}


def test_show_returns_everything_and_erase_keeps_only_the_suppressed_hash(
    engine: Engine, tmp_path: Path
) -> None:
    upgrade(engine)
    path = _write(tmp_path / "in.csv", b"email,name,timezone\nann@example.org,Ann,Europe/Paris\n")
    import_csv(engine, path, "daily", secret=SECRET, confirmed=True)
    with engine.begin() as conn:
        shown = people.show(conn, "Ann@Example.org", SECRET)
    json.dumps(shown)  # serialisable as it is
    assert shown["subscriber"]["name"] == "Ann"
    assert shown["subscriber"]["timezone"] == "Europe/Paris"
    assert [(s["list_name"], s["status"]) for s in shown["subscriptions"]] == [
        ("daily", "confirmed")
    ]
    assert [(c["action"], c["form"]) for c in shown["consent_records"]] == [("imported", "in.csv")]
    assert shown["suppression"] is None

    with engine.begin() as conn:
        repo.suppress(conn, repo.address_hash(SECRET, "ann@example.org"), "unsubscribed")
        assert people.erase(conn, "ann@example.org", SECRET) is True
        assert people.erase(conn, "nobody@example.org", SECRET) is False
    with engine.connect() as conn:
        for table in (subscribers, subscriptions, consent_records):
            assert conn.execute(select(func.count()).select_from(table)).scalar() == 0
        kept = conn.execute(select(suppressions.c.address_hash, suppressions.c.reason)).all()
        assert sorted(kept) == sorted(
            [
                (repo.address_hash(SECRET, "ann@example.org"), "erased"),
                (repo.address_hash(SECRET, "nobody@example.org"), "erased"),
            ]
        )
        shown = people.show(conn, "ann@example.org", SECRET)
    assert shown["subscriber"] is None and shown["suppression"]["reason"] == "erased"
    report = import_csv(engine, path, "daily", secret=SECRET, confirmed=True)
    assert (report.added, report.skipped) == (0, 1)
    assert _emails(engine) == {}


def test_export_round_trips_through_import(engine: Engine, tmp_path: Path) -> None:
    upgrade(engine)
    lines = ["email,name,timezone"] + [
        f"reader{n}@example.org,Reader “{n}”,Europe/London" for n in range(23)
    ]
    path = _write(tmp_path / "in.csv", "\n".join(lines).encode())
    import_csv(engine, path, "daily", secret=SECRET, confirmed=True, batch=5)
    with engine.connect() as conn:
        exported = list(people.export_rows(conn, "daily", batch=4))
        assert list(people.export_rows(conn, "daily", "pending")) == []
    assert len(exported) == 23
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=people.EXPORT_COLUMNS)
    writer.writeheader()
    writer.writerows(exported)
    second = _write(tmp_path / "export.csv", out.getvalue().encode())
    report = import_csv(engine, second, "weekly", secret=SECRET, confirmed=True)
    assert [p.message for p in report.problems] == ["unknown column(s) ignored: status"]
    with engine.connect() as conn:
        assert list(people.export_rows(conn, "weekly")) == exported
    assert {row["name"] for row in exported} == {f"Reader “{n}”" for n in range(23)}


# The command as an editor runs it, on SQLite in a temporary project.

CONFIG = (
    BASE_CONFIG
    + """
[email]
from_address = "The Speaker <digest@example.org>"

[[lists]]
name = "daily"
title = "The Speaker Daily"

[store]
url = "sqlite:///var/store.sqlite3"
"""
)


def _run(cwd: Path, *args: str, secret: str = "x" * 32) -> subprocess.CompletedProcess[str]:
    return run_speakerfeed(cwd, "subscribers", *args, secret=secret)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "config.toml").write_text(CONFIG, encoding="utf-8")
    return tmp_path


def test_cli_import_reports_problems_and_exits_1_then_export_show_erase(project: Path) -> None:
    _write(project / "in.csv", MALFORMED)
    result = _run(project, "import", "in.csv", "--list", "daily", "--confirmed")
    assert result.returncode == 1, result.stderr
    assert "in.csv:3: not an email address: 'not-an-address'" in result.stderr
    assert "in.csv:4: not UTF-8" in result.stderr
    assert "in.csv:1: warning: unknown column(s) ignored: colour" in result.stderr
    assert "3 added" in result.stdout and "6 rejected" in result.stdout
    assert "Traceback" not in result.stderr

    assert _run(project, "count", "--list", "daily").stdout.strip() == "3"
    exported = _run(project, "export", "--list", "daily", "--status", "confirmed")
    assert exported.returncode == 0, exported.stderr
    assert sorted(exported.stdout.splitlines()) == sorted(
        [
            "email,name,timezone,status",
            "ann@example.org,Ann,,confirmed",
            'dee@example.org,"Dee, Jr.",,confirmed',
            "zoe@xn--bcher-kva.example,Zoë,,confirmed",
        ]
    )
    written = _run(project, "export", "--list", "daily", "--out", "out.csv")
    assert written.returncode == 0, written.stderr
    everyone = _run(project, "export", "--list", "daily").stdout
    assert (project / "out.csv").read_text(encoding="utf-8") == everyone

    shown = json.loads(_run(project, "show", "ann@example.org").stdout)
    assert shown["consent_records"][0]["action"] == "imported"
    erased = _run(project, "erase", "ann@example.org", "--yes")
    assert erased.returncode == 0, erased.stderr
    shown = json.loads(_run(project, "show", "ann@example.org").stdout)
    assert shown["subscriber"] is None and shown["suppression"]["reason"] == "erased"
    again = _run(project, "add", "ann@example.org", "--list", "daily")
    assert again.returncode == 1 and "suppressed" in again.stderr


def test_cli_add_remove_and_count(project: Path) -> None:
    added = _run(project, "add", "Bob@Example.org", "--list", "daily", "--name", "Bob")
    assert added.returncode == 0, added.stderr
    assert "bob@example.org: pending on daily" in added.stdout
    assert _run(project, "count", "--list", "daily", "--status", "pending").stdout.strip() == "1"
    removed = _run(project, "remove", "bob@example.org", "--list", "daily")
    assert removed.returncode == 0, removed.stderr
    assert _run(project, "count", "--list", "daily", "--status", "unsubscribed").stdout == "1\n"
    shown = json.loads(_run(project, "show", "bob@example.org").stdout)
    assert shown["suppression"]["reason"] == "unsubscribed"
    assert [c["action"] for c in shown["consent_records"]] == ["added", "unsubscribed"]
    assert _run(project, "add", "bob@example.org", "--list", "daily").returncode == 1


def test_cli_errors_are_messages(project: Path) -> None:
    unknown = _run(project, "count", "--list", "weekly")
    assert unknown.returncode == 1
    assert "no list named 'weekly' (lists: daily)" in unknown.stderr
    no_secret = _run(project, "show", "ann@example.org", secret="short")
    assert no_secret.returncode == 1
    assert "SPEAKERFEED_SECRET_KEY: too short" in no_secret.stderr
    bad = _run(project, "add", "nobody", "--list", "daily")
    assert bad.returncode == 1 and "expected an email address" in bad.stderr
    for result in (unknown, no_secret, bad):
        assert "Traceback" not in result.stderr
    helped = _run(project, "import", "--help")
    assert helped.returncode == 0 and "--confirmed" in helped.stdout


def test_without_a_secret_key_sqlite_keeps_one_in_var_and_postgresql_asks(project: Path) -> None:
    first = _run(project, "add", "ann@example.org", "--list", "daily", secret="")
    assert first.returncode == 0, first.stderr
    key_file = project / "var" / "secret.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    key = key_file.read_bytes()
    assert len(key.strip()) >= 32
    # The same key next time: the address is still recognised as suppressed after removal.
    assert _run(project, "remove", "ann@example.org", "--list", "daily", secret="").returncode == 0
    again = _run(project, "add", "ann@example.org", "--list", "daily", secret="")
    assert again.returncode == 1 and "suppressed" in again.stderr
    assert key_file.read_bytes() == key

    config = project / "config.toml"
    config.write_text(
        config.read_text().replace(
            # Refused before connecting: no database is touched.
            "sqlite:///var/store.sqlite3",
            "postgresql://nobody@127.0.0.1:5432/speakerfeed_never_created",
        )
    )
    refused = _run(project, "show", "ann@example.org", secret="")
    assert refused.returncode == 1
    assert "SPEAKERFEED_SECRET_KEY: not set: with PostgreSQL" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_import_progress_counts_the_file_in_bytes_in_steps_that_add_up_to_it(
    engine: Engine, tmp_path: Path
) -> None:
    upgrade(engine)
    rows = "".join(f"reader{n}@example.org,Réader {n}\n" for n in range(25_000))
    path = _write(tmp_path / "in.csv", ("email,name\n" + rows).encode())
    calls: list[tuple[str, int, int]] = []
    report = import_csv(
        engine,
        path,
        "daily",
        secret=SECRET,
        confirmed=False,
        progress=lambda phase, step, total: calls.append((phase, step, total)),
    )
    assert report.added == 25_000
    size = path.stat().st_size
    # Steps, as every bar's caller gives them (click adds them up), of one total: the bytes.
    assert {(phase, total) for phase, _, total in calls} == {("import", size)}
    assert all(step >= 0 for _, step, _ in calls) and len(calls) == 3
    assert sum(step for _, step, _ in calls) == size
