"""Upstream feeds end to end, from a real HTTP server on 127.0.0.1 to Articles and Problems."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from speakerfeed.config import Settings, settings_from_mapping
from speakerfeed.models import Article
from speakerfeed.sources.remote import UpstreamResult, refresh_upstreams
from speakerfeed.sources.sanitize import clean_html as sanitize_html
from tests.support.feed_server import (
    FeedServer,
    RecordedRequest,
    Reply,
    running_server,
    unused_port,
)
from tests.support.project import BASE_CONFIG

T1 = datetime(2025, 5, 1, 9, 0, tzinfo=UTC)
T2 = T1 + timedelta(hours=6)
RSS_TYPE = "application/rss+xml; charset=utf-8"
JSON_TYPE = "application/feed+json"


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with running_server() as running:
        yield running


def make_settings(
    *upstreams: dict[str, Any], allow_hosts: tuple[str, ...] = ("127.0.0.1",)
) -> Settings:
    data = tomllib.loads(BASE_CONFIG)
    data["fetch"] = {
        "allow_hosts": list(allow_hosts),
        "timeout_seconds": 2.0,
        "max_bytes": 1_000_000,
    }
    data["upstream"] = list(upstreams)
    return settings_from_mapping(data, where="test", root=Path("."))


def refresh(settings: Settings, tmp_path: Path, now: datetime = T1) -> UpstreamResult:
    return refresh_upstreams(settings, tmp_path / "state" / "upstreams.json", now)


def served(
    server: FeedServer, body: bytes, path: str = "/feed", content_type: str = RSS_TYPE
) -> str:
    """Serve ``body`` at ``path``; returns its URL."""
    return server.route(path, Reply(headers={"Content-Type": content_type}, body=body))


def rss(*items: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<rss version="2.0" xmlns:media="http://search.yahoo.com/mrss/"'
        ' xmlns:content="http://purl.org/rss/1.0/modules/content/"'
        ' xmlns:dc="http://purl.org/dc/elements/1.1/">'
        f"<channel><title>Wire</title><link>http://wire.example/</link>{''.join(items)}"
        "</channel></rss>"
    ).encode()


def item(
    title: str, link: str, *, guid: str = "", date: str = "", body: str = "", more: str = ""
) -> str:
    parts = [f"<title>{title}</title>", f"<link>{link}</link>"]
    if guid:
        parts.append(f'<guid isPermaLink="false">{guid}</guid>')
    if date:
        parts.append(f"<pubDate>{date}</pubDate>")
    if body:
        parts.append(f"<content:encoded><![CDATA[{body}]]></content:encoded>")
    return f"<item>{''.join(parts)}{more}</item>"


def by_title(result: UpstreamResult) -> dict[str, Article]:
    return {a.title: a for a in result.articles}


def everything(result: UpstreamResult, tmp_path: Path) -> str:
    """All text a refresh produced or stored: a leaked secret would show up here."""
    state = (tmp_path / "state" / "upstreams.json").read_text(encoding="utf-8")
    return "\n".join([repr(result.articles), repr(result.problems), state])


# --- formats ------------------------------------------------------------------------------------

ATOM = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xmlns:media="http://search.yahoo.com/mrss/">
  <title>Atom upstream</title><id>urn:uuid:feed</id><updated>2025-04-02T08:00:00Z</updated>
  <entry>
    <id>urn:uuid:atom-1</id>
    <title type="html">&lt;em&gt;Council&lt;/em&gt; votes on budget</title>
    <link rel="alternate" href="https://atom.example/council"/>
    <published>2025-04-01T10:00:00+01:00</published>
    <updated>2025-04-02T08:00:00Z</updated>
    <author><name>Ann Reporter</name></author>
    <category term="politics"/>
    <summary>The council met.</summary>
    <content type="html">&lt;p&gt;The &lt;strong&gt;council&lt;/strong&gt; met.&lt;/p&gt;</content>
    <media:thumbnail url="https://atom.example/council.jpg"/>
  </entry>
</feed>"""

JSON_FEED = json.dumps(
    {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "JSON upstream",
        "items": [
            {
                "id": "json-1",
                "url": "https://json.example/posts/1",
                "title": "School wins award",
                "content_html": "<p>The school <em>won</em>.</p>",
                "summary": "A school won an award.",
                "date_published": "2025-03-01T12:00:00Z",
                "authors": [{"name": "Bo Writer"}],
                "tags": ["education"],
                "image": "/img/award.png",
            }
        ],
    }
).encode()


def test_rss_atom_and_json_feed_are_all_read(server: FeedServer, tmp_path: Path) -> None:
    rss_body = rss(
        item(
            "Storm hits coast",
            "https://rss.example/storm",
            guid="rss-1",
            date="Tue, 01 Apr 2025 10:00:00 GMT",
            body="<p>Wind &amp; rain.</p>",
            more="<dc:creator>Cy Journalist</dc:creator><category>weather</category>"
            '<enclosure url="https://rss.example/storm.jpg" type="image/jpeg" length="1"/>',
        )
    )
    settings = make_settings(
        {
            "name": "rss",
            "url": served(server, rss_body, "/rss"),
            "tags": ["wire"],
        },
        {
            "name": "atom",
            "url": served(server, ATOM, "/atom", "application/atom+xml"),
        },
        {
            "name": "json",
            "url": served(server, JSON_FEED, "/json", JSON_TYPE),
        },
    )
    result = refresh(settings, tmp_path)
    assert result.problems == []
    articles = by_title(result)

    storm = articles["Storm hits coast"]
    assert (storm.id, storm.url, storm.source, storm.slug) == (
        "rss-1",
        "https://rss.example/storm",
        "upstream:rss",
        "storm-hits-coast",
    )
    assert storm.published == datetime(2025, 4, 1, 10, 0, tzinfo=UTC)
    assert storm.authors == ("Cy Journalist",)
    assert storm.tags == ("weather", "wire")  # the entry's, then the upstream's
    assert storm.content_html == "<p>Wind &amp; rain.</p>"
    assert storm.summary == "Wind & rain."
    assert storm.image is not None
    assert (storm.image.url, storm.image.alt) == (
        "https://rss.example/storm.jpg",
        "Storm hits coast",
    )

    council = articles["Council votes on budget"]  # an HTML title becomes plain text
    assert council.id == "urn:uuid:atom-1"
    assert council.url == "https://atom.example/council"
    assert council.published == datetime(2025, 4, 1, 9, 0, tzinfo=UTC)
    assert council.updated == datetime(2025, 4, 2, 8, 0, tzinfo=UTC)
    assert council.authors == ("Ann Reporter",)
    assert council.tags == ("politics",)
    assert council.content_html == "<p>The <strong>council</strong> met.</p>"
    assert council.summary == "The council met."
    assert council.image is not None
    assert council.image.url == "https://atom.example/council.jpg"

    school = articles["School wins award"]
    assert (school.id, school.url, school.source) == (
        "json-1",
        "https://json.example/posts/1",
        "upstream:json",
    )
    assert school.published == datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    assert school.authors == ("Bo Writer",)
    assert school.tags == ("education",)
    assert school.summary == "A school won an award."
    assert school.content_html == "<p>The school <em>won</em>.</p>"
    assert school.image is not None
    assert school.image.url == "https://json.example/img/award.png"


# --- state: conditional GET, fallback, first-seen -----------------------------------------------


def test_conditional_get_reuses_the_stored_entries(server: FeedServer, tmp_path: Path) -> None:
    body = rss(
        item(
            "Only story", "https://wire.example/1", guid="w1", date="Tue, 01 Apr 2025 10:00:00 GMT"
        )
    )
    answered: list[int] = []

    def conditional(request: RecordedRequest) -> Reply:
        status = 304 if request.headers.get("if-none-match") == '"v1"' else 200
        answered.append(status)
        return Reply(
            status, {"ETag": '"v1"', "Content-Type": RSS_TYPE}, body if status == 200 else b""
        )

    settings = make_settings({"name": "wire", "url": server.route("/feed", conditional)})
    first = refresh(settings, tmp_path)
    second = refresh(settings, tmp_path, T2)
    assert answered == [200, 304]
    assert server.requests_to("/feed")[1].headers["if-none-match"] == '"v1"'
    assert second.problems == []
    assert second.articles == first.articles
    assert [a.title for a in second.articles] == ["Only story"]


def test_failing_upstream_keeps_serving_its_last_good_articles(
    server: FeedServer, tmp_path: Path
) -> None:
    good = Reply(
        headers={"Content-Type": RSS_TYPE},
        body=rss(item("Kept", "https://wire.example/kept", guid="k")),
    )
    replies = iter([good, Reply(500, body=b"oops")])
    settings = make_settings(
        {"name": "wire", "url": server.route("/feed", lambda _: next(replies))}
    )
    refresh(settings, tmp_path)
    result = refresh(settings, tmp_path, T2)
    assert [a.title for a in result.articles] == ["Kept"]
    [problem] = result.problems
    assert problem.where == "wire"
    assert problem.message.startswith("upstream 'wire': HTTP 500")
    assert problem.message.endswith("serving 1 article from the last good fetch")


def test_undated_entries_keep_their_first_seen_time(server: FeedServer, tmp_path: Path) -> None:
    old = item("Undated one", "https://wire.example/u1")
    new = item("Undated two", "https://wire.example/u2")
    bodies = iter([rss(old), rss(new, old)])
    settings = make_settings(
        {
            "name": "wire",
            "url": server.route(
                "/feed", lambda _: Reply(headers={"Content-Type": RSS_TYPE}, body=next(bodies))
            ),
        }
    )
    first = by_title(refresh(settings, tmp_path, T1))
    second = by_title(refresh(settings, tmp_path, T2))
    assert first["Undated one"].published == T1
    assert second["Undated one"].published == T1  # stable across runs, not "now" again
    assert second["Undated two"].published == T2
    assert second["Undated one"].id == "https://wire.example/u1"


def test_a_changed_upstream_url_does_not_reuse_the_old_validators(
    server: FeedServer, tmp_path: Path
) -> None:
    reply = Reply(
        headers={"ETag": '"v1"', "Content-Type": RSS_TYPE},
        body=rss(item("A", "https://wire.example/a")),
    )
    refresh(make_settings({"name": "wire", "url": server.route("/old", reply)}), tmp_path)
    refresh(make_settings({"name": "wire", "url": server.route("/new", reply)}), tmp_path)
    assert "if-none-match" not in server.requests_to("/new")[0].headers


def test_state_is_written_whole_and_a_corrupt_one_is_a_warning(
    server: FeedServer, tmp_path: Path
) -> None:
    settings = make_settings(
        {
            "name": "wire",
            "url": served(server, rss(item("A", "https://wire.example/a"))),
        }
    )
    state = tmp_path / "state" / "upstreams.json"
    state.parent.mkdir()
    state.write_text("{not json", encoding="utf-8")
    result = refresh(settings, tmp_path)
    [problem] = result.problems
    assert problem.warning
    assert "starting afresh" in problem.message
    assert [a.title for a in result.articles] == ["A"]
    assert (
        json.loads(state.read_text(encoding="utf-8"))["upstreams"]["wire"]["entries"][0]["title"]
        == "A"
    )
    assert [p.name for p in state.parent.iterdir()] == ["upstreams.json"]  # no temp file left


# --- failures are reported per upstream ---------------------------------------------------------


def test_one_failing_upstream_does_not_stop_the_others(server: FeedServer, tmp_path: Path) -> None:
    settings = make_settings(
        {
            "name": "good",
            "url": served(server, rss(item("Fine", "https://good.example/1")), "/good"),
        },
        {"name": "gone", "url": server.url("/missing")},
        {"name": "down", "url": f"http://127.0.0.1:{unused_port()}/feed"},
    )
    result = refresh(settings, tmp_path)
    assert [(a.title, a.source) for a in result.articles] == [("Fine", "upstream:good")]
    problems = {p.where: p.message for p in result.problems}
    assert set(problems) == {"gone", "down"}
    assert problems["gone"].startswith("upstream 'gone': HTTP 404")
    assert problems["down"].startswith("upstream 'down': cannot fetch")
    assert all(m.endswith("no earlier articles to serve") for m in problems.values())


def test_redirect_to_a_private_address_is_a_named_problem(
    server: FeedServer, tmp_path: Path
) -> None:
    settings = make_settings(
        {
            "name": "wire",
            "url": server.route("/feed", Reply(302, {"Location": "http://10.0.0.1/feed"})),
        }
    )
    [problem] = refresh(settings, tmp_path).problems
    assert problem.message.startswith("upstream 'wire': blocked address 10.0.0.1 for host 10.0.0.1")


def test_loopback_upstream_is_refused_without_allow_hosts(
    server: FeedServer, tmp_path: Path
) -> None:
    settings = make_settings(
        {"name": "wire", "url": server.route("/feed", Reply(body=rss()))}, allow_hosts=()
    )
    [problem] = refresh(settings, tmp_path).problems
    assert "blocked address 127.0.0.1" in problem.message
    assert server.requests == []


def test_oversized_upstream_is_a_named_problem(server: FeedServer, tmp_path: Path) -> None:
    chunk = b" " * 65536
    settings = make_settings(
        {"name": "big", "url": server.route("/feed", lambda _: Reply(body=iter([chunk] * 800)))}
    )
    [problem] = refresh(settings, tmp_path).problems
    assert "over the 1000000-byte cap" in problem.message


# --- hostile XML --------------------------------------------------------------------------------

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE rss [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<rss version="2.0"><channel><title>t</title>
<item><title>Laughs &lol9;</title><link>https://wire.example/lol</link></item>
</channel></rss>"""


def test_billion_laughs_is_refused(server: FeedServer, tmp_path: Path) -> None:
    settings = make_settings({"name": "wire", "url": served(server, BILLION_LAUGHS)})
    result = refresh(settings, tmp_path)
    assert result.articles == []
    [problem] = result.problems
    assert problem.message.startswith("upstream 'wire': refused: the XML declares entities")
    assert "lollol" not in everything(result, tmp_path)


TOKEN = "TOP-SECRET-7f3a9c"


@pytest.fixture
def secrets(tmp_path: Path) -> tuple[Path, Path]:
    """Local files that would surface TOKEN if read: a valid feed, and a DTD defining &secret;."""
    feed = tmp_path / "secret.xml"
    feed.write_bytes(rss(item(TOKEN, "https://leak.example/")))
    dtd = tmp_path / "secret.dtd"
    dtd.write_text(f'<!ENTITY secret "{TOKEN}">', encoding="utf-8")
    return feed, dtd


def with_doctype(doctype: str, title: str) -> bytes:
    feed = rss(item(title, "https://wire.example/leak")).split(b"?>", 1)[1]
    return b'<?xml version="1.0"?>' + doctype.encode() + feed


HOSTILE_XML: dict[str, Callable[[Path, Path], bytes]] = {
    "external entity": lambda feed, dtd: with_doctype(
        f'<!DOCTYPE rss [<!ENTITY xxe SYSTEM "{feed.as_uri()}">]>', "Leak &xxe;"
    ),
    "passwd entity": lambda feed, dtd: with_doctype(
        '<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>', "Leak &xxe;"
    ),
    "parameter entity": lambda feed, dtd: with_doctype(
        f'<!DOCTYPE rss [<!ENTITY % ext SYSTEM "{dtd.as_uri()}"> %ext;]>', "Leak &secret;"
    ),
    "external DTD": lambda feed, dtd: with_doctype(
        f'<!DOCTYPE rss SYSTEM "{dtd.as_uri()}">', "Leak &secret;"
    ),
    # feedparser.parse(bytes) opens the bytes as a file name when it can.
    "body naming a path": lambda feed, dtd: str(feed).encode(),
}


@pytest.mark.parametrize("kind", list(HOSTILE_XML))
def test_local_files_are_never_read(
    server: FeedServer, tmp_path: Path, secrets: tuple[Path, Path], kind: str
) -> None:
    body = HOSTILE_XML[kind](*secrets)
    settings = make_settings({"name": "wire", "url": served(server, body)})
    result = refresh(settings, tmp_path)
    seen = everything(result, tmp_path)
    assert TOKEN not in seen
    assert "root:" not in seen
    if kind.endswith("entity"):
        [problem] = result.problems
        assert "refused: the XML declares entities" in problem.message


def test_malformed_xml_that_still_has_entries_goes_through(
    server: FeedServer, tmp_path: Path
) -> None:
    body = rss(item("Fish & chips", "https://wire.example/fish"))  # a bare & is not well-formed
    settings = make_settings({"name": "wire", "url": served(server, body)})
    result = refresh(settings, tmp_path)
    assert result.problems == []
    assert [a.title for a in result.articles] == ["Fish & chips"]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"<html><body><p>Not a feed</p></body></html>", "not an RSS, Atom or JSON feed"),
        (b"\x00\x01<<garbage", "not a readable feed"),
        (b'{"items": []}', "not a JSON Feed"),
    ],
)
def test_unreadable_feed_is_a_named_problem(
    server: FeedServer, tmp_path: Path, body: bytes, reason: str
) -> None:
    settings = make_settings({"name": "wire", "url": server.route("/feed", Reply(body=body))})
    result = refresh(settings, tmp_path)
    assert result.articles == []
    [problem] = result.problems
    assert problem.where == "wire"
    assert reason in problem.message


# --- hostile HTML and text ----------------------------------------------------------------------

HOSTILE = (
    '<p onclick="steal()">Hello <a href="javascript:alert(1)">js</a>'
    ' <a href="JaVaScRiPt&#x3a;alert(2)">js2</a> <a href="java&#x09;script:alert(3)">js3</a>'
    ' <a href="data:text/html,&lt;script&gt;alert(4)&lt;/script&gt;">data</a>'
    ' <a href="vbscript:msgbox(5)">vb</a> <a href="/relative/page">rel</a>'
    ' <a href="mailto:desk@wire.example">mail</a></p>'
    "<script>alert('script')</script>"
    '<iframe src="https://evil.example/frame">iframe text</iframe>'
    '<img src="x.png" onerror="alert(6)" alt="a picture">'
    '<img src="data:image/svg+xml;base64,PHN2Zz4=" alt="data image">'
    '<div style="width: expression(alert(7))">styled</div>'
    '<svg onload="alert(8)"><circle r="1"/></svg>'
    '<form action="https://evil.example/"><input name="pw"></form>'
    "<blockquote><p>Quoted <strong>strongly</strong></p></blockquote>"
    '<figure><img src="https://img.example/a.jpg" alt="alt"><figcaption>Cap</figcaption></figure>'
    "<h1>Big</h1><h2>Sub</h2><table><tr><td>cell</td></tr></table>"
)
DANGEROUS = [
    "javascript", "JaVaScRiPt", "alert", "steal", "onclick", "onerror", "onload", "script",
    "iframe", "evil.example", "data:", "vbscript", "style=", "expression", "<svg", "<form",
    "<input", "<div", "<h1",
]  # fmt: skip


def check_sanitised(content: str) -> None:
    for needle in DANGEROUS:
        assert needle not in content, needle
    # Attribute order is not checked: feedparser's URL resolver re-serialises RSS content.
    assert (
        '<a href="https://wire.example/relative/page" rel="noopener noreferrer">rel</a>' in content
    )
    assert '<a href="mailto:desk@wire.example" rel="noopener noreferrer">mail</a>' in content
    assert 'src="https://wire.example/news/x.png"' in content
    assert 'src="https://img.example/a.jpg"' in content
    assert "<figcaption>Cap</figcaption></figure>" in content
    assert "<blockquote><p>Quoted <strong>strongly</strong></p></blockquote>" in content
    assert "<h2>Sub</h2>" in content
    assert "<td>cell</td>" in content


def test_hostile_html_is_sanitised_in_rss_and_json_feed(server: FeedServer, tmp_path: Path) -> None:
    link = "https://wire.example/news/story"
    json_body = json.dumps(
        {
            "version": "https://jsonfeed.org/version/1.1",
            "items": [{"id": "j", "url": link, "title": "J", "content_html": HOSTILE}],
        }
    ).encode()
    settings = make_settings(
        {
            "name": "rss",
            "url": served(server, rss(item("R", link, body=HOSTILE)), "/rss"),
        },
        {
            "name": "json",
            "url": served(server, json_body, "/json", JSON_TYPE),
        },
    )
    result = refresh(settings, tmp_path)
    assert result.problems == []
    assert len(result.articles) == 2
    for article in result.articles:
        check_sanitised(article.content_html)
        assert "alert" not in article.summary
        assert "Hello" in article.summary


def test_sanitiser_resolves_relative_urls_against_the_base() -> None:
    cleaned = sanitize_html(
        '<a href="../up">u</a><img src="//cdn.example/i.png" alt="">', "https://a.example/x/y"
    )
    assert cleaned == (
        '<a href="https://a.example/up" rel="noopener noreferrer">u</a>'
        '<img src="https://cdn.example/i.png" alt="">'
    )


def test_titles_are_plain_text_and_control_characters_are_stripped(
    server: FeedServer, tmp_path: Path
) -> None:
    body = json.dumps(
        {
            "version": "https://jsonfeed.org/version/1.1",
            "items": [
                {
                    "id": "c\u0001",
                    "url": "https://wire.example/c",
                    "title": "Bell\u0007 and\u000b tab\u0000",
                    "content_html": "<p>Null\u0000 here\u001f \ufffe</p>",
                    "authors": [{"name": "Ed\u0008"}],
                    "tags": ["t\u0002"],
                }
            ],
        }
    ).encode()
    rss_title = "&lt;b&gt;Breaking&lt;/b&gt; &lt;em&gt;news&lt;/em&gt;"
    settings = make_settings(
        {
            "name": "json",
            "url": served(server, body, "/json", JSON_TYPE),
        },
        {
            "name": "rss",
            "url": served(server, rss(item(rss_title, "https://wire.example/b")), "/rss"),
        },
    )
    articles = by_title(refresh(settings, tmp_path))
    control = articles["Bell and tab"]
    assert (control.id, control.authors, control.tags) == ("c", ("Ed",), ("t",))
    assert control.content_html == "<p>Null here </p>"
    assert "Breaking news" in articles  # an HTML title becomes its text


# --- entry selection ----------------------------------------------------------------------------


def test_duplicate_entries_are_merged_keeping_the_latest(
    server: FeedServer, tmp_path: Path
) -> None:
    body = rss(
        item(
            "Old version",
            "https://wire.example/s",
            guid="story",
            date="Tue, 01 Apr 2025 10:00:00 GMT",
        ),
        item(
            "New version",
            "https://wire.example/s2",
            guid="story",
            date="Wed, 02 Apr 2025 10:00:00 GMT",
        ),
        item("No guid", "https://wire.example/same"),
        item("No guid again", "https://wire.example/same"),
        item("Other", "https://wire.example/other", guid="other"),
    )
    settings = make_settings({"name": "wire", "url": served(server, body)})
    result = refresh(settings, tmp_path)
    assert sorted(a.title for a in result.articles) == ["New version", "No guid", "Other"]
    assert sorted(a.id for a in result.articles) == ["https://wire.example/same", "other", "story"]


def test_only_the_newest_max_items_are_kept(server: FeedServer, tmp_path: Path) -> None:
    items = [
        item(f"Day {d}", f"https://wire.example/{d}", date=f"{d:02d} Apr 2025 10:00:00 GMT")
        for d in range(1, 6)
    ]
    settings = make_settings(
        {
            "name": "wire",
            "url": served(server, rss(*items)),
            "max_items": 2,
        }
    )
    assert [a.title for a in refresh(settings, tmp_path).articles] == ["Day 5", "Day 4"]


def test_entries_without_an_http_link_are_skipped_and_named(
    server: FeedServer, tmp_path: Path
) -> None:
    body = rss(
        item("Script link", "javascript:alert(1)"),
        item("Data link", "data:text/html,hi"),
        item("File link", "file:///etc/passwd"),
        item("Broken link", "http://[broken"),
        item("Good link", "https://wire.example/good"),
    )
    settings = make_settings({"name": "wire", "url": served(server, body)})
    result = refresh(settings, tmp_path)
    assert [a.title for a in result.articles] == ["Good link"]
    messages = [p.message for p in result.problems]
    assert all(p.where == "wire" and p.warning for p in result.problems)
    for title in ("Script link", "Data link", "File link", "Broken link"):
        assert any(f"skipped entry {title!r}" in m for m in messages), title
