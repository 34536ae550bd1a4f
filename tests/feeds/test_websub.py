"""WebSub publish notifications to a real hub on 127.0.0.1 (a small Starlette app under uvicorn)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from speakerfeed.feeds.websub import ATTEMPTS, notify_hub
from tests.feeds.hub import Hub, running_hub


@pytest.fixture
def hub() -> Iterator[Hub]:
    with running_hub() as state:
        yield state


FEEDS = [
    "https://www.speakernews.co.uk/feeds/atom.xml",
    "https://www.speakernews.co.uk/feeds/rss.xml",
]


def test_the_hub_is_told_which_feeds_changed(hub: Hub) -> None:
    assert notify_hub(hub.url, FEEDS, sleep=lambda _: None)
    assert hub.received == [[("hub.mode", "publish"), *(("hub.url", url) for url in FEEDS)]]


def test_a_failing_hub_is_retried_then_given_up_without_raising(hub: Hub) -> None:
    waits: list[float] = []
    hub.statuses = [503, 500]
    assert notify_hub(hub.url, FEEDS, sleep=waits.append)
    assert len(hub.received) == 3 and waits == [2.0, 4.0]

    hub.received.clear()
    hub.statuses = [503] * ATTEMPTS
    assert not notify_hub(hub.url, FEEDS, sleep=waits.append)
    assert len(hub.received) == ATTEMPTS

    hub.received.clear()
    hub.statuses = [400]  # the hub refuses the request itself: no retry
    assert not notify_hub(hub.url, FEEDS, sleep=waits.append)
    assert len(hub.received) == 1


def test_an_unreachable_hub_is_only_logged(caplog: pytest.LogCaptureFixture) -> None:
    assert not notify_hub("http://127.0.0.1:9/hub", FEEDS, sleep=lambda _: None)
    assert "not told" in caplog.text
