"""The [delivery] settings: which transport sends mail, and how.

Made to sit in speakerfeed.config's Settings as ``delivery: DeliverySettings``: strict, unknown
keys refused, every field described. Secrets are never here: the SMTP password and the SendGrid
API key come from environment variables, and these settings only name the variables.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from speakerfeed.config.fields import Section

TransportName = Literal["outbox", "smtp", "sendgrid", "memory"]

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _env_name(value: str) -> str:
    if not _ENV_NAME.fullmatch(value):
        raise ValueError("expected the name of an environment variable, e.g. MY_SECRET")
    return value


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses: traffic that never leaves the machine."""
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class SmtpSettings(Section):
    host: str = Field("localhost", min_length=1, description="SMTP server (relay) host name.")
    port: int = Field(
        587, ge=1, le=65535, description="SMTP server port: 587 for STARTTLS, 465 for TLS."
    )
    security: Literal["starttls", "tls", "none"] = Field(
        "starttls",
        description="starttls: upgrade a plain connection (refused if the server cannot); "
        "tls: TLS from the start (SMTPS); none: no encryption, for a relay on this machine.",
    )
    username: str = Field("", description="SMTP AUTH user name; empty: no AUTH.")
    password_env: str = Field(
        "SPEAKERFEED_SMTP_PASSWORD",
        description="Environment variable holding the SMTP AUTH password (used with username).",
    )
    ca_file: str = Field(
        "",
        description="PEM file of CA certificates to verify the server with, relative to the "
        "configuration file's folder [default: the system's certificates].",
    )
    helo_name: str = Field(
        "", description="Name sent in EHLO [default: this machine's fully qualified name]."
    )
    pool_size: int = Field(
        4, ge=1, le=32, description="Connections used at once; each sends many messages."
    )
    messages_per_connection: int = Field(
        100,
        ge=1,
        le=100_000,
        description="Messages sent over one connection before it is closed and a new one made "
        "(many servers limit this).",
    )
    timeout_seconds: float = Field(
        30.0, gt=0, le=600, description="Timeout for connecting and for each server reply."
    )
    max_retries: int = Field(
        3,
        ge=0,
        le=10,
        description="Retries of a message refused for now (4xx) or not sent for a lost "
        "connection; after them it is reported deferred.",
    )
    retry_delay_seconds: float = Field(
        2.0,
        ge=0,
        le=600,
        description="Wait before the first retry; doubled before each next one.",
    )

    @field_validator("password_env")
    @classmethod
    def _password_env(cls, value: str) -> str:
        return _env_name(value)

    @model_validator(mode="after")
    def _no_password_in_clear(self) -> SmtpSettings:
        if self.username and self.security == "none" and not is_loopback(self.host):
            raise ValueError(
                "security = 'none' with a username would send the password unencrypted to "
                f"{self.host}: use 'starttls' or 'tls'"
            )
        return self


class SendGridSettings(Section):
    api_url: str = Field(
        "https://api.sendgrid.com",
        description="SendGrid API base URL (https; http only to this machine, for tests).",
    )
    api_key_env: str = Field(
        "SPEAKERFEED_SENDGRID_API_KEY",
        description="Environment variable holding the SendGrid API key (needs Mail Send access).",
    )
    timeout_seconds: float = Field(30.0, gt=0, le=600, description="Timeout for each request.")
    max_attempts: int = Field(
        5,
        ge=1,
        le=20,
        description="Attempts per request on 429, 5xx and connection errors; after them its "
        "recipients are reported deferred.",
    )
    backoff_base_seconds: float = Field(
        1.0, ge=0, le=600, description="Largest wait before the first retry (random below it)."
    )
    backoff_cap_seconds: float = Field(
        60.0,
        ge=0,
        le=3600,
        description="Longest wait before a retry, whatever the backoff or a 429's headers say.",
    )
    pool_connections: int = Field(
        8, ge=1, le=64, description="Requests in flight at once, over kept-alive connections."
    )

    @field_validator("api_key_env")
    @classmethod
    def _api_key_env(cls, value: str) -> str:
        return _env_name(value)

    @field_validator("api_url")
    @classmethod
    def _https(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("expected an https:// URL such as https://api.sendgrid.com")
        if parts.scheme == "http" and not is_loopback(parts.hostname):
            raise ValueError("expected https: the API key must not travel unencrypted")
        if parts.query or parts.fragment:
            raise ValueError("expected a base URL without ?query or #fragment")
        return value.rstrip("/")


class DeliverySettings(Section):
    transport: TransportName = Field(
        "outbox",
        description="How mail is sent: outbox (write .eml files to outbox_folder), smtp, "
        "sendgrid, or memory (kept in memory: tests only).",
    )
    outbox_folder: str = Field(
        "var/outbox",
        min_length=1,
        description="Folder the outbox transport writes one .eml file per message into, "
        "relative to the configuration file's folder.",
    )
    # Frozen, so one default instance is shared safely (as config.Settings does).
    smtp: SmtpSettings = Field(
        SmtpSettings(), description="The smtp transport's server and limits."
    )
    sendgrid: SendGridSettings = Field(
        SendGridSettings(), description="The sendgrid transport's API and limits."
    )
