"""Sign-ups from one network with the default limits, through a trusted proxy, on SQLite and
PostgreSQL: a class of 30 behind one school address (or one IPv6 /64) all get through in a couple
of minutes; a flood of 1,000 a minute from one address is refused after ``signup.per_ip``; the
per-address limit stays one email per address per window."""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine

from tests.support.webapp import ReaderSite, start

CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')
PUPILS = ["Zoë", "Oliver", "Siobhán", "Kwame", "Priya", "Mateusz", "Leïla", "Tom", "Aoife", "Jun"]


@pytest.fixture
def school_site(engine: Engine, tmp_path: Path) -> Iterator[ReaderSite]:
    """The defaults for [signup]; the app behind a proxy on 127.0.0.1."""
    yield from start(engine, tmp_path, server={"trusted_proxies": ["127.0.0.1"]})


def sign_ups(site: ReaderSite, people: list[tuple[str, str]]) -> list[int]:
    """Each (client address as the proxy names it, email) signs up; the status codes."""
    statuses = []
    with httpx.Client(base_url=site.url, timeout=10) as http:
        found = CSRF.search(http.get("/subscribe").text)
        assert found is not None
        for number, (client, email) in enumerate(people):
            answer = http.post(
                "/subscribe",
                data={
                    "csrf_token": found.group(1),
                    "list": "daily",
                    "name": PUPILS[number % len(PUPILS)],
                    "email": email,
                },
                headers={"X-Forwarded-For": client},
            )
            statuses.append(answer.status_code)
    return statuses


def test_a_class_of_thirty_behind_one_address_all_sign_up_and_a_flood_is_still_stopped(
    school_site: ReaderSite,
) -> None:
    # Thirty pupils at one school address; one types hers twice (a second try after a typo).
    pupils = [f"  Pupil.{n:02d}@Pupils.School.example " for n in range(30)]
    class_ = [("203.0.113.10", email) for email in pupils]
    started = time.monotonic()
    assert sign_ups(school_site, class_) == [303] * 30
    assert time.monotonic() - started < 120
    # A second class, in one IPv6 /64 with a new address for every request.
    rotating = [f"2001:db8:7:1:{n:x}:{n * 7919 % 65536:x}::{n + 1:x}" for n in range(30)]
    second = [(ip, f"reader{n}@second-school.example") for n, ip in enumerate(rotating)]
    assert sign_ups(school_site, second) == [303] * 30
    # The per-address limit is as strict as ever: the repeated address gets no second email.
    assert sign_ups(school_site, [("203.0.113.10", "pupil.07@pupils.school.example")]) == [303]
    sent = Counter(r.address for batch in school_site.outbox for r in batch.recipients)
    assert len(sent) == 60 and set(sent.values()) == {1}
    assert sent["pupil.07@pupils.school.example"] == 1

    # A flood from one address: 1,000 distinct addresses, as fast as the server answers.
    limit = school_site.settings.signup.per_ip
    flood = [("198.51.100.66", f"bot{n}@spam.example") for n in range(1000)]
    started = time.monotonic()
    statuses = sign_ups(school_site, flood)
    elapsed = time.monotonic() - started
    assert statuses[:limit] == [303] * limit
    # The window may roll over once if the flood takes longer than the window.
    assert statuses.count(429) >= 1000 - (2 if elapsed > 60 * 10 else 1) * limit
    assert sum(1 for batch in school_site.outbox for r in batch.recipients) <= 61 + 2 * limit
