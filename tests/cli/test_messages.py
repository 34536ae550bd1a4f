"""Messages as an editor reads them: counts in the right number, `check`'s one-line summary, a
YAML mistake reported at the line where it starts."""

from __future__ import annotations

from pathlib import Path

from speakerfeed.wording import counted
from tests.support.cli import run_speakerfeed
from tests.support.project import BASE_CONFIG, markdown_article

# A title whose closing quote was forgotten: the YAML scanner only gives up at the end of the
# front matter (line 6), but the mistake is on line 2.
UNCLOSED_QUOTE = (
    '---\ntitle: "Council votes on the new bridge\ndate: 2024-03-01\n'
    "author: Zoë O'Neill\ntags: [politics, local]\n---\nThe vote was close.\n"
)


def _project(folder: Path, articles: dict[str, str], config: str = BASE_CONFIG) -> Path:
    (folder / "config.toml").write_text(config, encoding="utf-8")
    (folder / "articles").mkdir()
    for name, text in articles.items():
        (folder / "articles" / name).write_text(text, encoding="utf-8")
    return folder


def test_counted_says_one_in_the_singular() -> None:
    assert counted(1, "article") == "1 article"
    assert counted(2, "article") == "2 articles"
    assert counted(0, "problem") == "0 problems"
    assert counted(1, "entry", "entries") == "1 entry"
    assert counted(3, "entry", "entries") == "3 entries"
    assert counted(12345, "reader") == "12,345 readers"


def test_an_unclosed_quote_on_line_2_is_reported_at_line_2(tmp_path: Path) -> None:
    folder = _project(
        tmp_path,
        {"bridge.md": UNCLOSED_QUOTE, "fine.md": markdown_article("Fine", "2024-01-01")},
    )
    checked = run_speakerfeed(folder, "check", "--no-fetch")
    assert checked.returncode == 1
    (line,) = [x for x in checked.stderr.splitlines() if "bridge.md" in x]
    assert line.endswith(
        "bridge.md:2: front matter is not valid YAML: found unexpected end of stream "
        "(scanning a quoted scalar that starts on this line)"
    ), line
    assert "Traceback" not in checked.stderr


def test_check_ends_with_one_summary_line_of_config_and_article_problems(tmp_path: Path) -> None:
    folder = _project(
        tmp_path,
        {
            "bridge.md": UNCLOSED_QUOTE,
            "fine.md": markdown_article("Fine", "2024-01-01"),
            "later.md": markdown_article("Draft", "2024-01-02", draft="true"),
            "notes.txt": "The Speaker\nsometime\n\nHeadline\n\nText.\n",
        },
        # Mail leaves through SMTP but links lead to this machine: a warning in the settings.
        BASE_CONFIG
        + '\n[delivery]\ntransport = "smtp"\n\n[delivery.smtp]\nhost = "mail.example.org"\n',
    )
    checked = run_speakerfeed(folder, "check", "--no-fetch")
    assert checked.returncode == 1
    last = checked.stdout.splitlines()[-1]
    assert last == (
        "config.toml: 0 errors, 1 warning; articles: 2 errors, 0 warnings, 4 files, "
        "1 published, 1 draft"
    ), checked.stdout + checked.stderr

    (folder / "articles" / "bridge.md").unlink()
    (folder / "articles" / "notes.txt").unlink()
    (folder / "config.toml").write_text(BASE_CONFIG, encoding="utf-8")
    clean = run_speakerfeed(folder, "check", "--no-fetch")
    assert clean.returncode == 0, clean.stderr
    assert clean.stdout.splitlines()[-1] == (
        "config.toml: ok; articles: ok, 2 files, 1 published, 1 draft"
    )


def test_build_counts_one_article_in_the_singular(tmp_path: Path) -> None:
    folder = _project(tmp_path, {"fine.md": markdown_article("Fine", "2024-01-01")})
    built = run_speakerfeed(folder, "build", "--no-fetch")
    assert built.returncode == 0, built.stderr
    assert ": 1 article (1 file, 1 parsed" in built.stdout, built.stdout
    assert "0 problems;" in built.stdout


def test_send_dry_run_counts_articles_and_readers_in_the_right_number(tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    def hours_ago(hours: int) -> str:
        return f"{datetime.now(UTC) - timedelta(hours=hours):%Y-%m-%d %H:%M}"

    lists = '\n[email]\nfrom_address = "The Speaker <digest@speakernews.co.uk>"\n'
    lists += 'postal_address = "The Speaker, 20 Example Street, London"\n'
    lists += '\n[[lists]]\nname = "daily"\ntitle = "The Speaker Daily"\n'
    lists += '\n[delivery]\ntransport = "outbox"\n'
    folder = _project(
        tmp_path,
        {"bridge.md": markdown_article("Bridge vote: “yes”, narrowly", hours_ago(5))},
        BASE_CONFIG + lists,
    )
    secret = "messages-test-secret-key-0123456789"

    def dry_run() -> str:
        result = run_speakerfeed(folder, "send", "daily", "--dry-run", "--no-fetch", secret=secret)
        assert result.returncode == 0, result.stderr
        return result.stdout

    first = dry_run()
    assert ": 1 article\n" in first and "would go to 0 confirmed subscribers " in first, first
    added = run_speakerfeed(
        folder,
        "subscribers",
        "add",
        "Zoe@Exämple.org",  # an IDN domain: kept as zoe@xn--exmple-cua.org
        "--list",
        "daily",
        "--confirmed",
        secret=secret,
    )
    assert added.returncode == 0, added.stderr
    (folder / "articles" / "fair.md").write_text(
        markdown_article("School fair", hours_ago(3)), encoding="utf-8"
    )
    second = dry_run()
    assert ": 2 articles\n" in second and "would go to 1 confirmed subscriber " in second, second
    assert not (folder / "var" / "outbox").exists()  # a dry run sends nothing
