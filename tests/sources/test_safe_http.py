"""safe_http against a real server on 127.0.0.1: each test fails if its protection is removed."""

from __future__ import annotations

import gzip
import ipaddress
import itertools
import re
import socket
import threading
import time
import tracemalloc
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from speakerfeed.config import FetchSettings
from speakerfeed.errors import (
    BlockedAddressError,
    FetchError,
    ResponseTooLargeError,
    SchemeNotAllowedError,
    TooManyRedirectsError,
    UpstreamHTTPError,
)
from speakerfeed.sources import safe_http
from speakerfeed.sources.safe_http import fetch, is_blocked_address
from tests.support.feed_server import (
    ConnectionCounter,
    FeedServer,
    RecordedRequest,
    Reply,
    running_server,
    unused_port,
)

CAP = 1_000_000
SETTINGS = FetchSettings.model_validate(
    {"allow_hosts": ("127.0.0.1",), "timeout_seconds": 2.0, "max_bytes": CAP, "max_redirects": 3}
)
RSS = b"<rss version='2.0'><channel><title>t</title></channel></rss>"


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with running_server() as running:
        yield running


def get(url: str, settings: FetchSettings = SETTINGS) -> safe_http.FetchResult:
    return fetch(url, settings, etag=None, last_modified=None)


AddressInfo = tuple[socket.AddressFamily, socket.SocketKind, int, str, tuple[str, int]]


def address_info(address: str, port: int) -> AddressInfo:
    """One getaddrinfo() answer, as a stand-in DNS gives it."""
    return (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port))


# --- plain and conditional GET ------------------------------------------------------------------


def test_fetch_returns_body_validators_and_content_type(server: FeedServer) -> None:
    url = server.route(
        "/feed",
        Reply(headers={"Content-Type": "application/rss+xml", "ETag": '"v1"'}, body=RSS),
    )
    result = get(url)
    assert (result.status, result.body, result.etag) == (200, RSS, '"v1"')
    assert result.content_type == "application/rss+xml"
    assert result.final_url == url
    sent = server.requests_to("/feed")[0].headers
    assert sent["user-agent"] == SETTINGS.user_agent
    assert "if-none-match" not in sent


def test_conditional_get_sends_validators_and_returns_304_with_empty_body(
    server: FeedServer,
) -> None:
    stamp = "Tue, 01 Apr 2025 10:00:00 GMT"

    def conditional(request: RecordedRequest) -> Reply:
        if request.headers.get("if-none-match") == '"v1"':
            return Reply(304, {"ETag": '"v1"'})
        return Reply(headers={"ETag": '"v1"', "Last-Modified": stamp}, body=RSS)

    url = server.route("/feed", conditional)
    first = get(url)
    second = fetch(url, SETTINGS, etag=first.etag, last_modified=first.last_modified)
    assert (second.status, second.body) == (304, b"")
    assert (second.etag, second.last_modified) == ('"v1"', stamp)  # kept when not re-sent
    sent = server.requests_to("/feed")[1].headers
    assert (sent["if-none-match"], sent["if-modified-since"]) == ('"v1"', stamp)


def test_gzip_body_is_decoded(server: FeedServer) -> None:
    url = server.route(
        "/feed", Reply(headers={"Content-Encoding": "gzip"}, body=gzip.compress(RSS))
    )
    assert get(url).body == RSS
    assert server.requests_to("/feed")[0].headers["accept-encoding"] == "gzip"


def test_truncated_gzip_is_an_error(server: FeedServer) -> None:
    url = server.route(
        "/feed", Reply(headers={"Content-Encoding": "gzip"}, body=gzip.compress(RSS)[:-12])
    )
    with pytest.raises(FetchError, match="truncated"):
        get(url)


# --- redirects ----------------------------------------------------------------------------------


def redirect(to: str) -> Reply:
    return Reply(302, {"Location": to})


def test_redirect_is_followed_to_the_final_url(server: FeedServer) -> None:
    final = server.route("/final", Reply(body=RSS))
    url = server.route("/start", redirect("/final"))
    result = get(url)
    assert (result.body, result.final_url) == (RSS, final)


def test_redirect_loop_is_detected(server: FeedServer) -> None:
    server.route("/a", redirect("/b"))
    server.route("/b", redirect("/a"))
    with pytest.raises(TooManyRedirectsError, match="loop"):
        get(server.url("/a"), SETTINGS.model_copy(update={"max_redirects": 10}))
    assert len(server.requests) == 2


def test_too_many_redirects(server: FeedServer) -> None:
    for hop in range(10):
        server.route(f"/{hop}", redirect(f"/{hop + 1}"))
    server.route("/10", Reply(body=RSS))
    with pytest.raises(TooManyRedirectsError, match="more than 3 redirects"):
        get(server.url("/0"))
    assert len(server.requests) == 4  # the first request and three hops, then stop
    # Exactly at the cap is fine.
    assert get(server.url("/7")).body == RSS


@pytest.mark.parametrize(
    "location",
    ["file:///etc/passwd", "ftp://example.org/feed", "javascript:alert(1)", "data:,hello"],
)
def test_redirect_to_another_scheme_is_refused(server: FeedServer, location: str) -> None:
    url = server.route("/start", redirect(location))
    with pytest.raises(SchemeNotAllowedError, match="only http and https"):
        get(url)


@pytest.mark.parametrize(
    "url",
    ["/etc/passwd", "file:///etc/passwd", "etc/passwd", "javascript:alert(1)", "ftp://a.example/"],
)
def test_paths_and_file_urls_are_never_fetched(url: str) -> None:
    with pytest.raises(SchemeNotAllowedError):
        get(url)


@pytest.mark.parametrize(
    ("location", "address"),
    [
        ("http://10.0.0.1/latest", "10.0.0.1"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254"),
        ("http://100.64.0.1/", "100.64.0.1"),
        # How Python spells it: ::ffff:a00:1 up to 3.12, ::ffff:10.0.0.1 from 3.13 on.
        ("http://[::ffff:10.0.0.1]/", str(ipaddress.ip_address("::ffff:10.0.0.1"))),
        ("http://[fd00::1]/", "fd00::1"),
    ],
)
def test_redirect_to_a_private_address_is_refused(
    server: FeedServer, location: str, address: str
) -> None:
    url = server.route("/start", redirect(location))
    started = time.monotonic()
    with pytest.raises(BlockedAddressError, match=re.escape(f"blocked address {address} for host")):
        get(url)
    assert time.monotonic() - started < 1.0  # refused, not a connection attempt timing out


@pytest.mark.parametrize("host", ["127.0.0.2", "::1"])
def test_redirect_to_other_loopback_address_is_refused_without_connecting(
    server: FeedServer, host: str
) -> None:
    try:
        listener = ConnectionCounter(host)
    except OSError:
        pytest.skip(f"cannot listen on {host} here")
    try:
        url = server.route("/start", redirect(listener.url("/feed")))
        with pytest.raises(BlockedAddressError, match=re.escape(f"blocked address {host} ")):
            get(url)
        assert listener.connections == 0
    finally:
        listener.close()


def test_loopback_is_refused_without_allow_hosts(server: FeedServer) -> None:
    url = server.route("/feed", Reply(body=RSS))
    with pytest.raises(BlockedAddressError, match=r"blocked address 127\.0\.0\.1"):
        get(url, SETTINGS.model_copy(update={"allow_hosts": ()}))
    assert server.requests == []


def test_host_names_are_checked_at_connect_time(
    server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Stand-in DNS: the check and the connection must use one and the same look-up.
    answers = {"feed.test": ["127.0.0.1"], "rebind.test": ["127.0.0.1", "10.1.2.3"]}
    looked_up: list[str] = []

    def getaddrinfo(host: str, port: int, *args: Any, **kwargs: Any) -> list[AddressInfo]:
        if host not in answers:  # the connect's own look-up of the vetted IP literal
            return [address_info(host, port)]
        looked_up.append(host)
        return [address_info(address, port) for address in answers[host]]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    server.route("/feed", Reply(body=RSS))
    result = get(f"http://feed.test:{server.port}/feed")
    assert result.body == RSS
    # Connected to the vetted address, while the request still names the host.
    assert server.requests[0].headers["host"] == f"feed.test:{server.port}"
    assert looked_up == ["feed.test"]
    with pytest.raises(
        BlockedAddressError, match=r"blocked address 10\.1\.2\.3 for host rebind\.test"
    ):
        get(f"http://rebind.test:{server.port}/feed")
    assert len(server.requests) == 1


# --- addresses ----------------------------------------------------------------------------------

BLOCKED = [
    "0.0.0.0",
    "10.0.0.1",
    "100.64.0.1",
    "127.0.0.1",
    "169.254.169.254",
    "172.16.0.1",
    "192.0.0.1",
    "192.168.1.1",
    "198.18.0.1",
    "224.0.0.1",
    "240.0.0.1",
    "255.255.255.255",
    "::",
    "::1",
    "::ffff:127.0.0.1",
    "::ffff:169.254.169.254",
    "2002:a00:1::",  # 6to4 wrapping 10.0.0.1
    "64:ff9b::a00:1",  # NAT64 wrapping 10.0.0.1
    "fc00::1",
    "fd12:3456::1",
    "fe80::1",
    "fec0::1",
    "ff02::1",
]
PUBLIC = ["1.1.1.1", "8.8.8.8", "93.184.216.34", "2606:4700:4700::1111", "::ffff:8.8.8.8"]


@pytest.mark.parametrize("text", BLOCKED)
def test_special_addresses_are_blocked(text: str) -> None:
    assert is_blocked_address(ipaddress.ip_address(text))


@pytest.mark.parametrize("text", PUBLIC)
def test_public_addresses_are_allowed(text: str) -> None:
    assert not is_blocked_address(ipaddress.ip_address(text))


def test_allow_list_exempts_only_its_networks() -> None:
    settings = FetchSettings.model_validate({"allow_hosts": ["127.0.0.1", "10.8.0.0/16"]})
    allowed = settings.allowed_networks
    assert not is_blocked_address(ipaddress.ip_address("127.0.0.1"), allowed)
    assert not is_blocked_address(ipaddress.ip_address("::ffff:127.0.0.1"), allowed)
    assert not is_blocked_address(ipaddress.ip_address("10.8.9.9"), allowed)
    assert is_blocked_address(ipaddress.ip_address("127.0.0.2"), allowed)
    assert is_blocked_address(ipaddress.ip_address("10.9.0.1"), allowed)
    assert is_blocked_address(ipaddress.ip_address("::1"), allowed)


PRIVATE_V4 = [ipaddress.IPv4Network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")]


@given(st.sampled_from(PRIVATE_V4), st.integers(min_value=0, max_value=2**20 - 1))
def test_private_ipv4_is_blocked_in_every_spelling(
    network: ipaddress.IPv4Network, offset: int
) -> None:
    address = network[offset % network.num_addresses]
    mapped = ipaddress.IPv6Address(f"::ffff:{address}")
    nat64 = ipaddress.IPv6Address(int(ipaddress.IPv6Address("64:ff9b::")) | int(address))
    for spelling in (address, mapped, nat64):
        assert is_blocked_address(spelling), spelling


# --- size caps ----------------------------------------------------------------------------------

MB = 1024 * 1024
CHUNK = bytes(64 * 1024)


def fifty_megabytes() -> Iterator[bytes]:
    return itertools.repeat(CHUNK, 50 * MB // len(CHUNK))


def test_declared_oversized_body_is_refused_before_reading(server: FeedServer) -> None:
    url = server.route(
        "/big", lambda _: Reply(headers={"Content-Length": str(50 * MB)}, body=fifty_megabytes())
    )
    with pytest.raises(ResponseTooLargeError, match=f"{50 * MB} bytes is over"):
        get(url)


def test_streamed_50_megabytes_is_stopped_at_the_cap(server: FeedServer) -> None:
    url = server.route("/big", lambda _: Reply(body=fifty_megabytes()))  # no Content-Length
    error, peak = failing_fetch_with_peak_memory(url)
    assert isinstance(error, ResponseTooLargeError)
    assert "over the 1000000-byte cap" in str(error)
    assert peak < 8 * MB


@pytest.fixture(scope="module")
def gzip_bomb() -> bytes:
    """256 MiB of zeros in about 250 KB, compressed a piece at a time."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    parts = [packer.compress(bytes(MB)) for _ in range(256)]
    return b"".join([*parts, packer.flush()])


def test_gzip_bomb_is_stopped_at_the_cap_without_inflating_it(
    server: FeedServer, gzip_bomb: bytes
) -> None:
    assert len(gzip_bomb) < CAP  # the compressed size alone passes every raw-size check
    url = server.route("/bomb", Reply(headers={"Content-Encoding": "gzip"}, body=gzip_bomb))
    started = time.monotonic()
    error, peak = failing_fetch_with_peak_memory(url)
    assert isinstance(error, ResponseTooLargeError)
    assert "decoded body is over" in str(error)
    assert time.monotonic() - started < 2.0
    assert peak < 8 * MB  # 256 MiB were never inflated


def failing_fetch_with_peak_memory(url: str) -> tuple[FetchError, int]:
    """The error fetching ``url`` raises, and the most memory allocated meanwhile (any thread)."""
    tracemalloc.start()
    try:
        with pytest.raises(FetchError) as caught:
            get(url)
        return caught.value, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


# --- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [404, 410, 500, 503])
def test_error_status_is_an_upstream_http_error(server: FeedServer, status: int) -> None:
    url = server.route("/feed", Reply(status, body=b"nope"))
    with pytest.raises(UpstreamHTTPError, match=f"HTTP {status} "):
        get(url)


def test_connection_refused_is_a_one_line_fetch_error() -> None:
    with pytest.raises(FetchError) as caught:
        get(f"http://127.0.0.1:{unused_port()}/feed")
    assert type(caught.value) is FetchError
    assert "\n" not in str(caught.value)
    assert "cannot fetch http://127.0.0.1" in str(caught.value)


# --- one wall-clock deadline per fetch ------------------------------------------------------------
# Each test's server keeps every single operation well inside a per-operation timeout of 0.5 s,
# so only a deadline on the fetch as a whole ends it; each fails if that deadline is removed.

FAST = SETTINGS.model_copy(update={"timeout_seconds": 0.5})
MARGIN = 1.5  # scheduling slack on a busy machine; the servers would take 5 s or more


def timed_failure(url: str) -> tuple[str, float]:
    started = time.monotonic()
    with pytest.raises(FetchError) as caught:
        get(url, FAST)
    return str(caught.value), time.monotonic() - started


def test_a_header_trickle_ends_at_the_deadline(server: FeedServer) -> None:
    # A byte every 50 ms: the status line and headers would take over 12 s.
    url = server.route("/slowloris", Reply(body=RSS, header_trickle=0.05))
    message, elapsed = timed_failure(url)
    assert message == f"timed out after 0.5s fetching {url}"
    assert 0.5 <= elapsed < 0.5 + MARGIN


def test_a_body_trickle_ends_at_the_deadline(server: FeedServer) -> None:
    def trickle() -> Iterator[bytes]:
        for _ in range(100):  # one byte every 50 ms for 5 s
            if server.stopping.wait(0.05):
                return
            yield b" "

    url = server.route("/trickle", lambda _: Reply(body=trickle()))
    message, elapsed = timed_failure(url)
    assert message == f"timed out after 0.5s fetching {url}"
    assert 0.5 <= elapsed < 0.5 + MARGIN


def test_the_deadline_covers_every_redirect_hop(server: FeedServer) -> None:
    # Each hop answers in 0.2 s, inside any per-request timeout; the chain takes 0.8 s.
    server.route("/a", Reply(302, {"Location": "/b"}, delay=0.2))
    server.route("/b", Reply(302, {"Location": "/c"}, delay=0.2))
    server.route("/c", Reply(302, {"Location": "/d"}, delay=0.2))
    server.route("/d", Reply(body=RSS, delay=0.2))
    message, elapsed = timed_failure(server.url("/a"))
    assert message.startswith("timed out after 0.5s fetching http://127.0.0.1")
    assert elapsed < 0.5 + MARGIN
    assert server.requests_to("/d") == []  # the last hop would start after 0.6 s


def test_a_slow_dns_answer_ends_at_the_deadline(
    server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    resolver_done = threading.Event()

    def getaddrinfo(host: str, port: int, *args: Any, **kwargs: Any) -> list[AddressInfo]:
        resolver_done.wait(5)  # a resolver that takes 5 s to answer
        return [address_info("127.0.0.1", port)]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    server.route("/feed", Reply(body=RSS))
    try:
        message, elapsed = timed_failure(f"http://slow-dns.test:{server.port}/feed")
    finally:
        resolver_done.set()
    assert message == f"timed out after 0.5s fetching http://slow-dns.test:{server.port}/feed"
    assert elapsed < 0.5 + MARGIN
    assert server.requests == []


def test_slow_server_times_out(server: FeedServer) -> None:
    url = server.route("/slow", Reply(body=RSS, delay=5.0))
    message, elapsed = timed_failure(url)
    assert message == f"timed out after 0.5s fetching {url}"
    assert elapsed < 0.5 + MARGIN
