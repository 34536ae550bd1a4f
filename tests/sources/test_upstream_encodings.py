"""Upstream XML in every encoding a feed parser detects: good feeds are read in each, and a
document declaring entities is refused in each, whether the encoding comes from a byte-order
mark, the first bytes, the XML declaration or the HTTP charset."""

from __future__ import annotations

import codecs
import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from speakerfeed.config import Settings, settings_from_mapping
from speakerfeed.sources.remote import UpstreamResult, refresh_upstreams
from tests.support.feed_server import FeedServer, Reply, running_server
from tests.support.project import BASE_CONFIG

NOW = datetime(2025, 5, 1, tzinfo=UTC)
BOMS = {
    "utf-16-le": codecs.BOM_UTF16_LE,
    "utf-16-be": codecs.BOM_UTF16_BE,
    "utf-32-le": codecs.BOM_UTF32_LE,
    "utf-32-be": codecs.BOM_UTF32_BE,
}
# Each encoding, and how the parser learns it: a case id -> (codec, BOM?, declared, HTTP type).
CASES = {
    "utf-8": ("utf-8", False, "utf-8", "application/rss+xml"),
    "utf-8, BOM": ("utf-8", True, "utf-8", "application/rss+xml"),
    "utf-16-le, BOM": ("utf-16-le", True, "utf-16", "application/rss+xml"),
    "utf-16-be, BOM": ("utf-16-be", True, "utf-16", "application/rss+xml"),
    "utf-16-le, sniffed": ("utf-16-le", False, "utf-16le", "application/rss+xml"),
    "utf-16-be, sniffed": ("utf-16-be", False, "utf-16be", "application/rss+xml"),
    "utf-32-le, BOM": ("utf-32-le", True, "utf-32", "application/rss+xml"),
    "utf-32-be, BOM": ("utf-32-be", True, "utf-32", "application/rss+xml"),
    "utf-32-le, sniffed": ("utf-32-le", False, "utf-32le", "application/rss+xml"),
    "utf-32-be, sniffed": ("utf-32-be", False, "utf-32be", "application/rss+xml"),
    "cp037, declared": ("cp037", False, "cp037", "application/rss+xml"),
    "utf-32-le, HTTP charset": ("utf-32-le", False, "", "application/xml; charset=utf-32le"),
    "cp037, HTTP charset, text/xml": ("cp037", False, "", "text/xml; charset=cp037"),
    "cp037, no Content-Type": ("cp037", False, "cp037", ""),
}
# Latin-1 repertoire, so cp037 can carry it too; not ASCII, so a wrong decoding shows.
TITLE = "Zoë's café reopens after the floods"


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with running_server() as running:
        yield running


def settings_for(url: str) -> Settings:
    data = tomllib.loads(BASE_CONFIG)
    data["fetch"] = {"allow_hosts": ["127.0.0.1"], "timeout_seconds": 5.0, "max_bytes": 1_000_000}
    data["upstream"] = [{"name": "wire", "url": url}]
    return settings_from_mapping(data, where="test", root=Path("."))


def document(declared: str, doctype: str = "", description: str = "The café is open.") -> str:
    declaration = (
        f'<?xml version="1.0" encoding="{declared}"?>' if declared else '<?xml version="1.0"?>'
    )
    return (
        f"{declaration}\n{doctype}<rss version='2.0'><channel><title>Wire</title>"
        "<link>https://wire.example/</link>"
        f"<item><title>{TITLE}</title><link>https://wire.example/cafe</link>"
        f"<guid isPermaLink='false'>cafe</guid><description>{description}</description></item>"
        "</channel></rss>"
    )


def encoded(text: str, codec: str, bom: bool) -> bytes:
    return (BOMS.get(codec, codecs.BOM_UTF8) if bom else b"") + text.encode(codec)


def fetched(server: FeedServer, body: bytes, content_type: str, tmp_path: Path) -> UpstreamResult:
    headers = {"Content-Type": content_type} if content_type else {}
    url = server.route("/feed", Reply(headers=headers, body=body))
    return refresh_upstreams(settings_for(url), tmp_path / "upstream.json", NOW)


# The review's body: 1,000 characters, a hundred times, eighty times: 11 KB in UTF-8 that
# became 8,000,000 characters of content once feedparser expanded it.
LAUGHS = '<!DOCTYPE rss [<!ENTITY a "' + "ha" * 500 + '"><!ENTITY b "' + "&a;" * 100 + '">]>'
LAUGHING_DESCRIPTION = "&b;" * 80


@pytest.mark.parametrize("case", list(CASES))
def test_a_clean_feed_is_read_in_every_encoding(
    case: str, server: FeedServer, tmp_path: Path
) -> None:
    codec, bom, declared, content_type = CASES[case]
    result = fetched(server, encoded(document(declared), codec, bom), content_type, tmp_path)
    assert result.problems == []
    [article] = result.articles
    assert (article.title, article.summary) == (TITLE, "The café is open.")


@pytest.mark.parametrize("case", list(CASES))
def test_entities_are_refused_in_every_encoding(
    case: str, server: FeedServer, tmp_path: Path
) -> None:
    codec, bom, declared, content_type = CASES[case]
    body = encoded(document(declared, LAUGHS, LAUGHING_DESCRIPTION), codec, bom)
    result = fetched(server, body, content_type, tmp_path)
    assert result.articles == []
    [problem] = result.problems
    assert (problem.where, problem.warning) == ("wire", False)
    assert problem.message == (
        "upstream 'wire': refused: the XML declares entities (EntitiesForbidden); "
        "no earlier articles to serve"
    )


@pytest.mark.parametrize("codec", ["utf-32-le", "utf-32-be", "cp037", "utf-16-le"])
def test_malformed_xml_declaring_entities_is_refused_in_any_encoding(
    codec: str, server: FeedServer, tmp_path: Path
) -> None:
    # Not well-formed before the DTD is even reached (text outside the root element), so only
    # feedparser's lenient parser would read it: the declaration must be found in the decoded
    # text, whatever the bytes looked like.
    text = document(codec.replace("-", ""), "stray text " + LAUGHS, LAUGHING_DESCRIPTION)
    body = encoded(text, codec, False)
    result = fetched(server, body, "application/rss+xml", tmp_path)
    assert result.articles == []
    [problem] = result.problems
    assert "refused: malformed XML that declares entities" in problem.message


def test_an_external_dtd_reference_alone_is_still_read(server: FeedServer, tmp_path: Path) -> None:
    # RSS 0.91's DOCTYPE declares nothing here and is never fetched: real feeds still carry it.
    doctype = (
        '<!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN" '
        '"http://my.netscape.com/publish/formats/rss-0.91.dtd">'
    )
    body = encoded(document("utf-32", doctype), "utf-32-le", True)
    result = fetched(server, body, "application/rss+xml", tmp_path)
    assert result.problems == []
    assert [a.title for a in result.articles] == [TITLE]
