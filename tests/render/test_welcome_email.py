"""The welcome email as rendered: the digest's layout and lint, nothing loaded from anywhere,
the list's own words escaped, and the per-subscriber markers once in each part."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import lxml.html

from speakerfeed.mail import placeholders
from speakerfeed.render.email import our_hosts, render_welcome
from speakerfeed.render.lint import lint_email
from speakerfeed.render.resources import foreign_resources, resources
from tests.render.test_email import DAILY, HOSTILE_TITLE, SETTINGS, personalise

NEXT = datetime(2026, 12, 5, 8, 0, tzinfo=UTC).astimezone(ZoneInfo("Asia/Kolkata"))
LATEST = "https://app.speakernews.co.uk/digests/daily/daily-2026-12-02-0700/"


def test_the_welcome_passes_the_email_lint_and_loads_nothing() -> None:
    rendered = render_welcome(SETTINGS, DAILY, next_issue=NEXT, latest_url=LATEST)
    assert lint_email(SETTINGS, rendered.html, rendered.text) == []
    document = lxml.html.document_fromstring(rendered.html)
    assert list(foreign_resources(document, our_hosts(SETTINGS))) == []
    assert list(resources(document)) == []  # not even from our own hosts
    for part in (rendered.html, rendered.text):
        for marker in placeholders.ALL:
            assert part.count(marker) == 1, marker
    assert document.find(".//main") is not None  # the base layout's landmark, for the skip link


def test_the_welcome_says_when_in_words_and_as_a_machine_readable_time() -> None:
    rendered = render_welcome(SETTINGS, DAILY, next_issue=NEXT, latest_url=LATEST)
    document: Any = lxml.html.document_fromstring(personalise(rendered.html))
    (time,) = document.iter("time")
    assert time.get("datetime") == "2026-12-05T13:30:00+05:30"
    assert time.text_content() == "Saturday 5 December 2026 at 13:30 (Asia/Kolkata)"
    text = " ".join(rendered.text.split())
    assert "planned for Saturday 5 December 2026 at 13:30 (Asia/Kolkata)." in text
    assert f"Read the latest issue: {LATEST}" in text
    assert rendered.subject == f"Welcome to {DAILY.title}"


def test_nothing_planned_and_no_issue_yet_are_said_plainly() -> None:
    rendered = render_welcome(SETTINGS, DAILY, next_issue=None, latest_url="")
    text = " ".join(rendered.text.split())
    assert "No issue is planned just now" in text and "latest issue" not in text
    assert "latest issue" not in rendered.html and "<time" not in rendered.html
    assert lint_email(SETTINGS, rendered.html, rendered.text) == []


def test_the_lists_words_are_escaped_in_the_html_and_kept_in_the_text() -> None:
    hostile = DAILY.model_copy(update={"title": HOSTILE_TITLE, "description": HOSTILE_TITLE})
    rendered = render_welcome(SETTINGS, hostile, next_issue=NEXT, latest_url=LATEST)
    assert "<script>" not in rendered.html and "&lt;script&gt;" in rendered.html
    assert HOSTILE_TITLE in " ".join(rendered.text.split())
    assert lint_email(SETTINGS, rendered.html, rendered.text) == []


def test_the_lint_catches_a_welcome_without_the_postal_address() -> None:
    careless = SETTINGS.model_copy(
        update={"email": SETTINGS.email.model_copy(update={"postal_address": ""})}
    )
    rendered = render_welcome(careless, DAILY, next_issue=NEXT, latest_url=LATEST)
    assert [f.rule for f in lint_email(careless, rendered.html, rendered.text)] == [
        "postal-address"
    ]
