"""WebSub: telling the hub that feeds changed (hub.mode=publish), so subscribers get them now.

The hub is the editors' own setting (feeds.websub_hub), so it is trusted like config.toml. A
hub that fails is retried a few times with a growing wait, then logged: publishing is a
courtesy, and nothing else waits for it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

import httpx

from speakerfeed.wording import counted

log = logging.getLogger(__name__)

ATTEMPTS = 4


def notify_hub(
    hub: str,
    feed_urls: Sequence[str],
    *,
    client: httpx.Client | None = None,
    sleep: Callable[[float], None] = time.sleep,
    first_wait: float = 2.0,
) -> bool:
    """POST hub.mode=publish for ``feed_urls``; True when the hub took it (2xx)."""
    if not hub or not feed_urls:
        return False
    body = {"hub.mode": "publish", "hub.url": list(feed_urls)}
    own = client is None
    http = client or httpx.Client(timeout=10, follow_redirects=False)
    try:
        wait = first_wait
        for attempt in range(1, ATTEMPTS + 1):
            try:
                answer = http.post(hub, data=body)
            except httpx.HTTPError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            else:
                if answer.is_success:
                    log.info("WebSub hub %s told about %s", hub, counted(len(feed_urls), "feed"))
                    return True
                problem = f"HTTP {answer.status_code}"
                if 400 <= answer.status_code < 500 and answer.status_code != 429:
                    break  # the hub refused the request itself: trying again will not help
            if attempt < ATTEMPTS:
                sleep(wait)
                wait *= 2
        log.warning(
            "WebSub hub %s not told about %s: %s", hub, counted(len(feed_urls), "feed"), problem
        )
        return False
    finally:
        if own:
            http.close()
