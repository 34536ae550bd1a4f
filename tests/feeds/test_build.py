"""The build end to end on a real folder: outputs, incremental rebuilds, bad input, stable files."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import feedparser
from lxml import etree

from speakerfeed.config import Settings
from speakerfeed.feeds.build import Builder
from tests.support.feed_server import Reply, running_server
from tests.support.feedcheck import ATOM, check_atom, check_json_feed, check_rss
from tests.support.project import make_project, markdown_article

ROOT = Path(__file__).resolve().parents[2]
RSS_HEADERS = {"Content-Type": "application/rss+xml"}
SEED = ROOT / "articles" / "000_d49d9c5f78f68bb1.txt"


def _snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _project(tmp_path: Path, count: int = 6, **overrides: Any) -> Settings:
    articles: dict[str, str | bytes] = {
        f"2024-01-{n + 1:02d}-story-{n}.md": markdown_article(
            f"Story {n}", f"2024-01-{n + 1:02d} 09:00", f"Text of story {n}.", tags=f"[t{n % 2}]"
        )
        for n in range(count)
    }
    articles["000_d49d9c5f78f68bb1.txt"] = SEED.read_bytes()
    return make_project(tmp_path, articles, **overrides)


def test_repository_build_has_seed_and_samples_and_no_drafts(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "articles", tmp_path / "articles")
    settings = make_project(tmp_path)
    report = Builder(settings, fetch_upstreams=False).build()
    assert report.errors == []
    assert report.drafts == 1
    out = settings.output_dir
    rss, atom = (out / "rss.xml").read_bytes(), (out / "atom.xml").read_bytes()
    assert check_rss(rss) == [] and check_atom(atom) == []
    assert check_json_feed((out / "feed.json").read_bytes()) == []
    titles = [e.title for e in feedparser.parse(atom).entries]
    assert "What is happening in Kazakhstan?" in titles
    assert "Autumn Statement 2023: what it means for students" in titles
    assert not any("work in progress" in t for t in titles)
    assert feedparser.parse(rss).bozo == 0
    assert (out / "index.html").exists() and (out / "rss.html").exists()
    assert not (out / "feed.xsl").exists()
    assert (out / "tags" / "politics" / "atom.xml").exists()


def test_second_build_rewrites_nothing_and_parses_nothing(tmp_path: Path) -> None:
    settings = _project(tmp_path)
    first = Builder(settings, fetch_upstreams=False).build()
    assert first.parsed == 7 and first.written
    before = _snapshot(settings.output_dir)
    second = Builder(settings, fetch_upstreams=False).build()  # a new process: cache from disk
    assert (second.parsed, second.written, second.removed) == (0, [], [])
    assert _snapshot(settings.output_dir) == before


def test_one_changed_article_is_the_only_one_parsed(tmp_path: Path) -> None:
    settings = _project(tmp_path)
    builder = Builder(settings, fetch_upstreams=False)
    builder.build()
    before = _snapshot(settings.output_dir)
    path = settings.articles_dir / "2024-01-03-story-2.md"
    path.write_text(path.read_text().replace("Text of story 2.", "Corrected text."), "utf-8")
    report = builder.build()
    assert report.parsed == 1
    after = _snapshot(settings.output_dir)
    changed = sorted(name for name in after if after[name] != before.get(name))
    # the main feed and story 2's tag feed, in three formats, and their pages (the summary
    # changed); nothing else
    assert changed == sorted(
        f"{folder}{name}"
        for folder in ("", "tags/t0/")
        for name in ("atom.xml", "feed.json", "rss.xml", "atom.html", "feed.html", "rss.html")
    )
    assert b"Corrected text." in (settings.output_dir / "atom.xml").read_bytes()


def test_touched_but_unchanged_file_is_not_parsed(tmp_path: Path) -> None:
    settings = _project(tmp_path)
    Builder(settings, fetch_upstreams=False).build()
    os.utime(settings.articles_dir / "2024-01-01-story-0.md", ns=(1, 1))
    assert Builder(settings, fetch_upstreams=False).build().parsed == 0


def test_bad_articles_are_reported_and_the_rest_still_build(tmp_path: Path) -> None:
    settings = _project(
        tmp_path,
        count=3,
    )
    folder = settings.articles_dir
    (folder / "latin1.md").write_bytes(b"---\ntitle: caf\xe9\ndate: 2024-01-01\n---\nx\n")
    (folder / "broken.md").write_text("---\ntitle: [oops\ndate: 2024-01-01\n---\n", "utf-8")
    (folder / "nodate.txt").write_text("The Speaker\nsome day\n\nTitle\n\nBody.\n", "utf-8")
    (folder / "gone.md").symlink_to(folder / "does-not-exist.md")
    (folder / "notes.docx").write_bytes(b"PK")
    (folder / "control.md").write_text(
        "---\ntitle: Bell\x07 title\ndate: 2024-02-01\n---\nText\x0b with a control.\n", "utf-8"
    )
    before = _snapshot(folder)
    report = Builder(settings, fetch_upstreams=False).build()
    problems = {(p.where, p.line, p.warning) for p in report.problems}
    messages = "\n".join(str(p) for p in report.problems)
    assert ("latin1.md", 2, False) in problems and "not UTF-8" in messages
    assert ("broken.md", 2, False) in problems  # where the unclosed "[" is
    assert ("nodate.txt", 2, False) in problems
    assert any(w == "gone.md" and not warn for w, _, warn in problems)
    assert ("notes.docx", None, True) in problems
    assert report.articles == 5  # 3 stories, the seed, the control-character one
    atom = (settings.output_dir / "atom.xml").read_bytes()
    assert check_atom(atom) == []
    assert b"Bell title" in atom
    assert _snapshot(folder) == before  # articles/ is never modified


def test_duplicate_ids_are_reported(tmp_path: Path) -> None:
    settings = make_project(
        tmp_path,
        {
            "a.md": markdown_article("A", "2024-01-01", id="tag:x.org,2024:same"),
            "b.md": markdown_article("B", "2024-01-02", id="tag:x.org,2024:same"),
        },
    )
    report = Builder(settings, fetch_upstreams=False).build()
    assert [str(p) for p in report.problems] == [
        "b.md: same id as a.md (tag:x.org,2024:same); left out"
    ]


def test_removed_tag_removes_its_feed_files(tmp_path: Path) -> None:
    settings = _project(tmp_path, count=2)
    builder = Builder(settings, fetch_upstreams=False)
    builder.build()
    assert (settings.output_dir / "tags" / "t1" / "rss.xml").exists()
    (settings.articles_dir / "2024-01-02-story-1.md").unlink()
    report = builder.build()
    assert "tags/t1/rss.xml" in report.removed
    assert not (settings.output_dir / "tags" / "t1").exists()


def test_edited_output_file_is_restored(tmp_path: Path) -> None:
    settings = _project(tmp_path, count=1)
    Builder(settings, fetch_upstreams=False).build()
    target = settings.output_dir / "rss.xml"
    original = target.read_bytes()
    target.write_bytes(b"tampered")
    report = Builder(settings, fetch_upstreams=False).build()
    assert report.written == ["rss.xml"]
    assert target.read_bytes() == original


def test_archives_are_written_and_linked(tmp_path: Path) -> None:
    settings = _project(tmp_path, count=12, feeds={"items": 5, "tag_feeds": False})
    Builder(settings, fetch_upstreams=False).build()
    out = settings.output_dir
    assert sorted(p.name for p in (out / "archive" / "atom").iterdir()) == ["1.xml", "2.xml"]
    root = etree.fromstring((out / "atom.xml").read_bytes())
    links = {link.get("rel"): link.get("href") for link in root.findall(f"{ATOM}link")}
    assert links["prev-archive"] == "https://www.speakernews.co.uk/feeds/archive/atom/2.xml"
    page = json.loads((out / "archive" / "json" / "2.json").read_bytes())
    assert page["next_url"] == "https://www.speakernews.co.uk/feeds/archive/json/1.json"
    assert not (out / "tags").exists()


UPSTREAM_RSS = b"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>Wire</title><link>https://wire.example/</link>
<description>A wire service</description>
<item><title>From the wire</title><link>https://wire.example/story</link>
<guid>https://wire.example/story</guid><pubDate>Tue, 02 Jan 2024 10:00:00 GMT</pubDate>
<description>&lt;p onclick="x()"&gt;Wire text
&lt;script&gt;alert(1)&lt;/script&gt;&lt;/p&gt;</description>
</item></channel></rss>"""


def test_upstream_articles_join_the_feeds_and_a_failing_upstream_is_named(tmp_path: Path) -> None:
    with running_server() as server:
        good = server.route("/wire.xml", Reply(body=UPSTREAM_RSS, headers=RSS_HEADERS))
        bad = server.route("/gone.xml", Reply(status=404))
        settings = _project(
            tmp_path,
            count=1,
            fetch={"allow_hosts": ["127.0.0.1"], "timeout_seconds": 5},
            upstream=[
                {"name": "wire", "url": good, "tags": ["world"]},
                {"name": "gone", "url": bad},
            ],
        )
        report = Builder(settings).build()
    assert report.upstream_articles == 1
    assert [p.where for p in report.errors] == ["gone"]
    assert "404" in report.errors[0].message
    atom = (settings.output_dir / "atom.xml").read_bytes()
    assert check_atom(atom) == []
    entry = next(e for e in feedparser.parse(atom).entries if e.title == "From the wire")
    assert entry.link == "https://wire.example/story"
    assert "alert" not in atom.decode() and "onclick" not in atom.decode()
    assert (settings.output_dir / "tags" / "world" / "rss.xml").exists()
