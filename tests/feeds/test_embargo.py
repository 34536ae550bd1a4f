"""An article dated in the future, as readers and editors see it: absent from every feed, archive
page, tag feed, the index, the digest and its web copy until its moment, then there, with the
feed's updated time its own. The clock is injected; nothing patches datetime."""

from __future__ import annotations

import calendar
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import feedparser
from sqlalchemy import Engine

from speakerfeed.config import Settings
from speakerfeed.digest.archive import web_copy
from speakerfeed.digest.prepare import prepare
from speakerfeed.feeds.build import Builder
from speakerfeed.store.engine import upgrade
from tests.support.cli import run_speakerfeed
from tests.support.feedcheck import check_atom, check_json_feed, check_rss
from tests.support.project import BASE_CONFIG, make_project, markdown_article

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "articles" / "000_d49d9c5f78f68bb1.txt"
# "2030-06-04 09:00" with no zone is the site's (Europe/London): 09:00 BST is 08:00 UTC.
EMBARGO = datetime(2030, 6, 4, 8, 0, tzinfo=UTC)
BEFORE = EMBARGO - timedelta(seconds=1)
TITLE = "Budget day: what “fiscal headroom” means for you"
OUT = ("rss.xml", "atom.xml", "feed.json")


def _site(tmp_path: Path, **overrides: Any) -> Settings:
    articles: dict[str, str | bytes] = {
        f"2024-03-{n + 10:02d}-story-{n}.md": markdown_article(
            f"Story {n}",
            f"2024-03-{n + 10:02d} 18:{n:02d}",
            f"Text of story {n}.",
            tags="[Politics]" if n % 2 else "[Schools]",
        )
        for n in range(5)
    }
    articles["000_d49d9c5f78f68bb1.txt"] = SEED.read_bytes()
    articles["2030-06-04-budget.md"] = markdown_article(
        TITLE,
        "2030-06-04 09:00",
        "The Chancellor’s statement — in full.",
        tags="[Politics, Budget 2030]",
        summary="Embargoed until the speech.",
    )
    return make_project(tmp_path, articles, **overrides)


def _titles(path: Path) -> list[str]:
    """The items' titles as a feed reader lists them (feedparser 6 reads RSS and Atom only)."""
    if path.suffix == ".json":
        return [item["title"] for item in json.loads(path.read_bytes())["items"]]
    return [entry.title for entry in feedparser.parse(path.read_bytes()).entries]


def _updated(path: Path) -> datetime:
    parsed = feedparser.parse(path.read_bytes()).feed.updated_parsed
    return datetime.fromtimestamp(calendar.timegm(parsed), UTC)


def _mentions(folder: Path, text: str) -> list[str]:
    """Every output file whose bytes hold ``text`` (plain ASCII: the same in XML, HTML, JSON)."""
    return sorted(
        str(p.relative_to(folder))
        for p in folder.rglob("*")
        if p.is_file() and text.encode() in p.read_bytes()
    )


def test_a_future_article_appears_in_the_feeds_at_its_moment(tmp_path: Path) -> None:
    settings = _site(tmp_path, feeds={"items": 2})
    clock = [BEFORE]
    builder = Builder(settings, fetch_upstreams=False, clock=lambda: clock[0])
    before = builder.build()
    out = settings.output_dir
    assert [a.title for a in before.embargoed] == [TITLE]
    assert before.next_embargo == EMBARGO and before.articles == 6
    # Nowhere: not the feeds, not an archive page, not a tag feed, not the index.
    assert _mentions(out, "fiscal headroom") == []
    assert not (out / "tags" / "budget-2030").exists()
    assert "budget" not in (out / "index.html").read_text(encoding="utf-8").lower()
    newest_past = datetime(2024, 3, 14, 18, 4, tzinfo=UTC)
    assert _updated(out / "atom.xml") == newest_past
    assert _updated(out / "rss.xml") == newest_past

    # Edited before its time: still nothing leaks, nothing is rewritten.
    path = settings.articles_dir / "2030-06-04-budget.md"
    path.write_text(path.read_text("utf-8").replace("in full", "as given"), "utf-8")
    assert builder.build().written == []

    clock[0] = EMBARGO
    after = builder.build()
    assert after.embargoed == [] and after.next_embargo is None and after.articles == 7
    for name in OUT:
        assert _titles(out / name)[0] == TITLE, name
        assert _titles(out / "tags" / "politics" / name)[0] == TITLE, name
        assert _titles(out / "tags" / "budget-2030" / name) == [TITLE], name
    assert _updated(out / "atom.xml") == EMBARGO
    assert _updated(out / "rss.xml") == EMBARGO
    assert check_rss((out / "rss.xml").read_bytes()) == []
    assert check_atom((out / "atom.xml").read_bytes()) == []
    assert check_json_feed((out / "feed.json").read_bytes()) == []
    assert "Budget 2030" in (out / "index.html").read_text(encoding="utf-8")
    assert "as given" in (out / "atom.xml").read_text(encoding="utf-8")
    # The archive pages were planned again: walking them from the current document reaches
    # every visible article, each archived once.
    archived = [
        e.title for page in sorted((out / "archive" / "atom").iterdir()) for e in _parse(page)
    ]
    assert len(archived) == len(set(archived)) == 6
    assert set(archived + _titles(out / "atom.xml")) == {
        TITLE,
        "What is happening in Kazakhstan?",
        *(f"Story {n}" for n in range(5)),
    }


def _parse(path: Path) -> list[feedparser.FeedParserDict]:
    return list(feedparser.parse(path.read_bytes()).entries)


def test_the_build_cache_on_disk_does_not_keep_the_embargo(tmp_path: Path) -> None:
    """A new process (`speakerfeed build` from cron) after the moment: the cached parse and the
    manifest of written files must not make it skip the article or the rebuild."""
    settings = _site(tmp_path)
    Builder(settings, fetch_upstreams=False, clock=lambda: BEFORE).build()
    assert TITLE not in _titles(settings.output_dir / "rss.xml")
    later = Builder(settings, fetch_upstreams=False, clock=lambda: EMBARGO).build()
    assert later.parsed == 0  # nothing parsed again: the cache was used ...
    assert "rss.xml" in later.written  # ... and the feeds were still rewritten
    assert _titles(settings.output_dir / "rss.xml")[0] == TITLE
    assert (settings.output_dir / "tags" / "budget-2030" / "atom.xml").exists()


def test_a_future_article_waits_for_its_moment_in_the_digest_and_web_copy(
    tmp_path: Path, engine: Engine
) -> None:
    settings = _site(
        tmp_path,
        email={
            "from_address": "The Speaker <digest@speakernews.co.uk>",
            "postal_address": "The Speaker, 20 Example Street, London",
        },
        lists=[{"name": "daily", "title": "The Speaker Daily", "schedule": "0 7 * * *"}],
    )
    (daily,) = settings.lists
    upgrade(engine)
    early = prepare(engine, settings, daily, fetch_upstreams=False, now=BEFORE)
    assert early is not None
    page = web_copy(early.rendered, settings).decode()
    assert "fiscal headroom" not in early.rendered.html + early.rendered.text + page
    assert b"fiscal headroom" not in early.message
    on_time = prepare(engine, settings, daily, fetch_upstreams=False, now=EMBARGO)
    assert on_time is not None
    assert on_time.rendered.digest.articles[0].title == TITLE
    assert "fiscal headroom" in on_time.rendered.html
    assert "fiscal headroom" in web_copy(on_time.rendered, settings).decode()


def test_check_lists_the_embargoed_articles_with_their_times(tmp_path: Path) -> None:
    make_project(
        tmp_path,
        {
            "000_d49d9c5f78f68bb1.txt": SEED.read_bytes(),
            "later/2099-budget.md": markdown_article(
                "The 2099 Budget", "2099-01-05 09:00", tags="[Politics]"
            ),
            "summer.md": markdown_article("Midsummer", "2099-06-21T12:30:00Z"),
        },
    )
    (tmp_path / "config.toml").write_text(BASE_CONFIG, encoding="utf-8")
    result = run_speakerfeed(tmp_path, "check", "--no-fetch", timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    start = lines.index("Embargoed until their time (2):")
    # Soonest first, in the site's time zone (GMT in January, BST in June).
    assert lines[start + 1 : start + 3] == [
        "  2099-01-05 09:00 GMT  later/2099-budget.md  The 2099 Budget",
        "  2099-06-21 13:30 BST  summer.md  Midsummer",
    ]
    assert "1 published" in lines[-1]
    assert "Traceback" not in result.stderr
