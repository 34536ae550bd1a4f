"""What the settings sections share: a strict, frozen base, and field types and checks that
several sections use."""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("expected an absolute http:// or https:// URL")
    return value


def list_to_tuple(value: Any) -> Any:
    # TOML arrays arrive as lists; settings are frozen, so they are kept as tuples.
    return tuple(value) if isinstance(value, list) else value


Strings = Annotated[tuple[str, ...], BeforeValidator(list_to_tuple)]

# A URL string checked by http_url in each model's validators.
HttpUrl = Annotated[str, Field(min_length=1)]


def ip_networks(value: tuple[str, ...]) -> tuple[str, ...]:
    """``value`` when each item is an IP address or network (a ValueError saying which is not)."""
    for item in value:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ValueError(f"expected IP addresses or networks, got {item!r}") from None
    return value
