"""The settings of the publication and its build: [site], [feeds], [build], [fetch] and
[[upstream]]."""

from __future__ import annotations

import ipaddress
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator

from speakerfeed.config.fields import HttpUrl, Section, Strings, http_url, ip_networks


class SiteSettings(Section):
    title: str = Field(min_length=1, description="The publication's name.")
    description: str = Field("", description="One sentence about the publication, used by feeds.")
    url: HttpUrl = Field(description="The publication's web site, e.g. https://www.example.org.")
    language: str = Field(
        "en-GB", pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$", description="BCP 47 tag."
    )
    timezone: str = Field("Europe/London", description="IANA time zone for dates without one.")
    author: str = Field(min_length=1, description="Default author when an article names none.")
    author_email: str = Field("", description="Optional contact address shown in feeds.")
    article_path: str = Field(
        "/{slug}/", description="Path of an article on the site; must contain {slug}."
    )
    favicon: str = Field(
        "",
        description="The site's icon on every page: an .svg, .png or .ico file, relative to "
        "config.toml (at most 64 KB); empty: the icon shipped in templates/web/favicon.svg.",
    )

    @field_validator("favicon")
    @classmethod
    def _icon_file(cls, value: str) -> str:
        if value and not value.lower().endswith((".svg", ".png", ".ico")):
            raise ValueError(f"expected a path to an .svg, .png or .ico file, got {value!r}")
        return value

    @field_validator("url")
    @classmethod
    def _site_url(cls, value: str) -> str:
        return http_url(value).rstrip("/")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("expected an IANA time zone name such as Europe/London") from None
        return value

    @field_validator("article_path")
    @classmethod
    def _has_slug(cls, value: str) -> str:
        if "{slug}" not in value or not value.startswith("/"):
            raise ValueError("expected a path starting with / that contains {slug}")
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def article_url(self, slug: str) -> str:
        return self.url + self.article_path.replace("{slug}", slug)


class FeedSettings(Section):
    base_url: HttpUrl = Field(
        description="Public URL of the output folder: self links and archive links start here."
    )
    items: int = Field(
        20,
        ge=1,
        le=1000,
        description="Items per feed document: the newest in each subscription "
        "feed, and the size of each RFC 5005 archive page holding the older ones.",
    )
    tag_feeds: bool = Field(True, description="Also write one feed per tag.")
    full_content: bool = Field(True, description="Put the full article text in the feeds.")
    websub_hub: str = Field("", description="WebSub hub URL announced with <link rel=hub>.")

    @field_validator("base_url")
    @classmethod
    def _base(cls, value: str) -> str:
        return http_url(value).rstrip("/") + "/"

    @field_validator("websub_hub")
    @classmethod
    def _hub(cls, value: str) -> str:
        return http_url(value) if value else value


class BuildSettings(Section):
    articles_dir: str = Field("articles", description="Folder of Markdown and plain-text articles.")
    output_dir: str = Field("public", description="Folder the feeds and pages are written to.")
    cache_dir: str = Field("var/cache", description="Incremental-build and upstream state.")
    chrome_lines: Strings = Field(
        ("Skip to content",),
        description="Lines of site chrome dropped from plain-text articles scraped from the site.",
    )
    templates_dir: str = Field(
        "",
        description="Folder of template overrides: a file here replaces the shipped template of "
        "the same name, e.g. email/digest.mjml.j2 or web/base.html (`speakerfeed check` renders "
        "and lints each) [default: none, the shipped templates].",
    )
    notes_dir: str = Field(
        "notes",
        description="Folder of editors' notes: <list>.md is shown above the articles of the "
        "list's next digest, then moved to sent/<send id>.md once that digest is sent.",
    )


class FetchSettings(Section):
    timeout_seconds: float = Field(
        10.0,
        gt=0,
        le=300,
        description=(
            "Wall-clock deadline for fetching one upstream: DNS, connecting, TLS, redirects, "
            "headers and body together."
        ),
    )
    max_in_flight: int = Field(
        4,
        ge=1,
        le=32,
        description=(
            "Upstreams fetched at the same time at most; a slow one holds up only its own slot."
        ),
    )
    max_bytes: int = Field(
        5_000_000, ge=1024, description="Largest upstream body accepted, after decompression."
    )
    max_redirects: int = Field(5, ge=0, le=20, description="Redirect hops followed at most.")
    user_agent: str = Field(
        "speakerfeed/0.1 (+https://github.com/speakerfeed)",
        min_length=1,
        description="User-Agent sent to upstream servers.",
    )
    allow_hosts: Strings = Field(
        (),
        description=(
            "Addresses or networks (e.g. 127.0.0.1) exempt from the private-address block. "
            "For tests and trusted intranets only."
        ),
    )

    @field_validator("allow_hosts")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return ip_networks(value)

    @property
    def allowed_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        return tuple(ipaddress.ip_network(item, strict=False) for item in self.allow_hosts)


class UpstreamSettings(Section):
    name: str = Field(
        min_length=1,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        description="Short unique name used in messages and logs (letters, digits, . _ -).",
    )
    url: HttpUrl = Field(description="The feed's http(s) URL: RSS, Atom or JSON Feed.")
    tags: Strings = Field((), description="Tags added to every article from this feed.")
    max_items: int = Field(50, ge=1, le=10_000, description="Newest entries taken from the feed.")

    @field_validator("url")
    @classmethod
    def _upstream_url(cls, value: str) -> str:
        return http_url(value)
