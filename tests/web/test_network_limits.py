"""Sign-up rate limits per network, through a trusted proxy (X-Forwarded-For), on SQLite and
PostgreSQL: an IPv6 client is counted by its /64 (``signup.ipv6_prefix``), so rotating addresses
in one /64 does not get round ``signup.per_ip``; an IPv4 client by its address; an IPv4-mapped
IPv6 address as the IPv4 client it is."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine

from speakerfeed.web.forms import network_of
from tests.support.webapp import ReaderSite, start

CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')


@pytest.fixture
def proxied_site(engine: Engine, tmp_path: Path) -> Iterator[ReaderSite]:
    """The app behind a proxy on 127.0.0.1, ten sign-ups per client per window."""
    yield from start(
        engine, tmp_path, signup={"per_ip": 10}, server={"trusted_proxies": ["127.0.0.1"]}
    )


def sign_ups(site: ReaderSite, clients: list[str], tag: str) -> list[int]:
    """Each client (as the proxy names it) signs up a new address; the status codes."""
    statuses = []
    with httpx.Client(base_url=site.url, timeout=10) as http:
        found = CSRF.search(http.get("/subscribe").text)
        assert found is not None
        for number, client in enumerate(clients):
            answer = http.post(
                "/subscribe",
                data={
                    "csrf_token": found.group(1),
                    "list": "daily",
                    "email": f"reader.{tag}.{number}@example.org",
                },
                # nginx appends the peer to what the client sent: the client's own (forged,
                # changing) entry at the left must not count.
                headers={"X-Forwarded-For": f"198.51.100.{number}, {client}"},
            )
            statuses.append(answer.status_code)
            if answer.status_code == 429:
                assert int(answer.headers["retry-after"]) > 0
    return statuses


def test_forty_addresses_in_one_ipv6_64_share_one_limit_and_another_64_is_not_held_up(
    proxied_site: ReaderSite,
) -> None:
    rotating = [f"2001:db8:5:7:{n:x}:{n * 7919 % 65536:x}:1:{n + 1:x}" for n in range(40)]
    statuses = sign_ups(proxied_site, rotating, "v6")
    assert statuses == [303] * 10 + [429] * 30
    assert len(proxied_site.outbox) == 10  # no confirmation email for a refused sign-up
    assert sign_ups(proxied_site, ["2001:db8:5:8::1", "2001:db8:5:8::2"], "next") == [303, 303]


def test_ipv4_clients_count_by_address_and_a_mapped_address_is_the_same_client(
    proxied_site: ReaderSite,
) -> None:
    assert sign_ups(proxied_site, ["203.0.113.7"] * 10, "a") == [303] * 10
    assert sign_ups(proxied_site, ["::ffff:203.0.113.7", "203.0.113.7"], "b") == [429, 429]
    assert sign_ups(proxied_site, ["203.0.113.8", "203.0.113.6"], "c") == [303, 303]


def test_a_wider_prefix_is_a_setting(engine: Engine, tmp_path: Path) -> None:
    running = start(
        engine,
        tmp_path,
        signup={"per_ip": 2, "ipv6_prefix": 48},
        server={"trusted_proxies": ["127.0.0.1"]},
    )
    site = next(running)
    try:
        clients = ["2001:db8:5:1::1", "2001:db8:5:2::1", "2001:db8:5:3::1", "2001:db8:6::1"]
        assert sign_ups(site, clients, "wide") == [303, 303, 429, 303]
    finally:
        next(running, None)


@pytest.mark.parametrize(
    ("address", "prefix", "network"),
    [
        ("203.0.113.7", 64, "203.0.113.7"),
        ("2001:db8:5:7:a:b:c:d", 64, "2001:db8:5:7::/64"),
        ("2001:DB8:5:7::1", 64, "2001:db8:5:7::/64"),
        ("2001:db8:5:7:a:b:c:d", 56, "2001:db8:5::/56"),
        ("2001:db8::1", 128, "2001:db8::1/128"),
        ("::ffff:203.0.113.7", 64, "203.0.113.7"),
        ("::1", 64, "::/64"),
        ("", 64, ""),  # no client (a Unix socket): counted as it is
        ("not an address", 64, "not an address"),
    ],
)
def test_the_network_a_client_is_counted_in(address: str, prefix: int, network: str) -> None:
    assert network_of(address, prefix) == network


def test_an_ipv6_prefix_outside_32_to_128_is_refused_naming_the_key() -> None:
    from speakerfeed.errors import ConfigError
    from tests.support.project import project_settings

    for value in (16, 129):
        with pytest.raises(ConfigError, match=r"signup\.ipv6_prefix"):
            project_settings(signup={"ipv6_prefix": value})
