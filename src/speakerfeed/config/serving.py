"""The settings of the running service: [server], [schedule], [webhooks] and [store]."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from speakerfeed.config.fields import Section, Strings, ip_networks


class ServerSettings(Section):
    host: str = Field("127.0.0.1", min_length=1, description="Address `serve` listens on.")
    port: int = Field(8080, ge=1, le=65535, description="Port `serve` listens on.")
    trusted_proxies: Strings = Field(
        (),
        description="Addresses of reverse proxies whose X-Forwarded-For is believed, e.g. "
        '["127.0.0.1"] behind nginx on the same machine [default: none, the peer is the client]. '
        "Their X-Forwarded-Proto says whether the request came over https (for HSTS).",
    )
    max_header_bytes: int = Field(
        16 * 1024,
        ge=1024,
        le=1024 * 1024,
        description="Largest request line plus headers, in bytes; a larger one is answered 431 "
        "and the connection closed.",
    )
    request_head_seconds: float = Field(
        10.0,
        gt=0,
        le=300,
        description="A request's line and headers must arrive within this time (of the "
        "connection opening, or of their first byte on a kept-alive connection); else 408 and "
        "the connection is closed.",
    )
    request_body_seconds: float = Field(
        30.0,
        gt=0,
        le=600,
        description="A form's body must arrive within this time of its headers; else 408.",
    )
    keep_alive_seconds: int = Field(
        5, ge=1, le=300, description="An idle kept-alive connection is closed after this time."
    )
    max_connections: int = Field(
        1000,
        ge=1,
        description="Connections and requests handled at once; beyond that the answer is 503.",
    )

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return ip_networks(value)

    @property
    def listen_url(self) -> str:
        """http://host:port of `serve`, as a browser on this machine reaches it: a wildcard
        address (0.0.0.0, ::) is not one a browser can open, so its loopback stands in."""
        host = self.host
        try:
            address = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            return f"http://{host}:{self.port}"  # a name, such as localhost
        if address.is_unspecified:
            address = ipaddress.ip_address("::1" if address.version == 6 else "127.0.0.1")
        shown = f"[{address}]" if address.version == 6 else str(address)
        return f"http://{shown}:{self.port}"


class ScheduleSettings(Section):
    refresh_minutes: int = Field(
        10, ge=1, le=24 * 60, description="How often `serve` refreshes the sources and rebuilds."
    )
    watch_articles: bool = Field(
        True, description="Also rebuild as soon as a file in the articles folder changes."
    )
    leader_check_seconds: float = Field(
        10.0,
        gt=0,
        le=300,
        description="How often a `serve` process checks whether it should run the scheduler "
        "(one process does; another takes over within this time when it stops).",
    )
    send_poll_seconds: float = Field(
        5.0, gt=0, le=300, description="How often each process looks for send batches to work on."
    )


class WebhookSettings(Section):
    sendgrid_public_key: str = Field(
        "",
        description="The Event Webhook's verification key (base64, from SendGrid's mail settings); "
        "empty: /webhooks/sendgrid is not served.",
    )


class StoreSettings(Section):
    url: str = Field(
        "sqlite:///var/speakerfeed.sqlite3",
        min_length=1,
        description="Subscriber database: sqlite:///path (relative to the configuration file's "
        "folder) or postgresql://user@host:port/name. No password here: PostgreSQL reads "
        "PGPASSWORD or ~/.pgpass.",
    )

    @field_validator("url")
    @classmethod
    def _engine(cls, value: str) -> str:
        scheme = value.split("://", 1)[0] if "://" in value else ""
        backend, _, driver = scheme.partition("+")
        drivers = {"sqlite": ("", "pysqlite"), "postgresql": ("", "psycopg")}.get(backend, ())
        if driver not in drivers:
            raise ValueError("expected a sqlite:///path or postgresql://user@host/name URL")
        # Secrets never live in config.toml (see speakerfeed.config).
        if urlsplit(value).password:
            raise ValueError("expected no password in the URL; set PGPASSWORD or use ~/.pgpass")
        return value
