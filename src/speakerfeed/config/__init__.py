"""config.toml -> typed, frozen settings.

Every problem is reported at once, each naming its key path and what was expected. Unknown keys
are errors (with a "did you mean" hint) because a misspelt key silently ignored is a setting that
silently does nothing. Secrets never live in config.toml: they come from environment variables.
"""

from __future__ import annotations

import difflib
import email.utils
import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from speakerfeed.config.delivery import DeliverySettings
from speakerfeed.errors import ConfigError, Problem

DEFAULT_CONFIG_PATH = Path("config.toml")
CONFIG_PATH_ENV = "SPEAKERFEED_CONFIG"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("expected an absolute http:// or https:// URL")
    return value


def _list_to_tuple(value: Any) -> Any:
    # TOML arrays arrive as lists; settings are frozen, so they are kept as tuples.
    return tuple(value) if isinstance(value, list) else value


Strings = Annotated[tuple[str, ...], BeforeValidator(_list_to_tuple)]

# A URL string checked by _http_url in each model's validators.
HttpUrl = Annotated[str, Field(min_length=1)]


class SiteSettings(_Section):
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

    @field_validator("url")
    @classmethod
    def _site_url(cls, value: str) -> str:
        return _http_url(value).rstrip("/")

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


class FeedSettings(_Section):
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
        return _http_url(value).rstrip("/") + "/"

    @field_validator("websub_hub")
    @classmethod
    def _hub(cls, value: str) -> str:
        return _http_url(value) if value else value


class BuildSettings(_Section):
    articles_dir: str = Field("articles", description="Folder of Markdown and plain-text articles.")
    output_dir: str = Field("public", description="Folder the feeds and pages are written to.")
    cache_dir: str = Field("var/cache", description="Incremental-build and upstream state.")
    chrome_lines: Strings = Field(
        ("Skip to content",),
        description="Lines of site chrome dropped from plain-text articles scraped from the site.",
    )


class FetchSettings(_Section):
    timeout_seconds: float = Field(10.0, gt=0, le=300, description="Per-request timeout.")
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
        return _ip_networks(value)

    @property
    def allowed_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        return tuple(ipaddress.ip_network(item, strict=False) for item in self.allow_hosts)


class UpstreamSettings(_Section):
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
        return _http_url(value)


_HEADER_BREAKS = ("\r", "\n", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029")


def _single_line(value: str) -> str:
    if any(mark in value for mark in _HEADER_BREAKS) or "=?" in value:
        raise ValueError("expected one line of text without line breaks or encoded words (=?)")
    return value


class EmailSettings(_Section):
    from_address: str = Field(
        "", description='Sender of digests, e.g. "The Speaker <digest@example.org>".'
    )
    reply_to: str = Field("", description="Optional Reply-To address.")
    postal_address: str = Field(
        "", description="The publication's postal address, shown in every email's footer."
    )
    app_url: str = Field(
        "",
        description="Public URL of `speakerfeed serve` for unsubscribe, preferences and archive "
        "links [default: site.url].",
    )
    unsubscribe_mailto: str = Field(
        "", description="Address for mailto: one-click unsubscribe in List-Unsubscribe."
    )

    @field_validator("from_address", "reply_to", "unsubscribe_mailto", "postal_address")
    @classmethod
    def _one_line(cls, value: str) -> str:
        return _single_line(value)

    @field_validator("from_address", "reply_to", "unsubscribe_mailto")
    @classmethod
    def _address(cls, value: str) -> str:
        if value and "@" not in email.utils.parseaddr(value)[1]:
            raise ValueError(
                f"expected an email address such as Name <name@example.org>, got {value!r}"
            )
        return value

    @field_validator("app_url")
    @classmethod
    def _app(cls, value: str) -> str:
        return _http_url(value).rstrip("/") if value else value


_CADENCE_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,15}")


def _crontab_line(value: str) -> str:
    from speakerfeed.config.crontab import crontab_trigger

    try:
        crontab_trigger(value, "UTC")
    except ValueError as exc:
        raise ValueError(f"expected a crontab line such as '0 7 * * *': {exc}") from None
    return value


class ListSettings(_Section):
    name: str = Field(
        min_length=1,
        max_length=40,
        pattern=r"^[a-z0-9][a-z0-9-]*$",
        description="Short name used in commands and URLs (lower-case letters, digits, -).",
    )
    title: str = Field(min_length=1, description="The list's name as readers see it.")
    description: str = Field(
        "", description="Why a reader receives this email; shown in every email's footer."
    )
    tags: Strings = Field((), description="Only articles with one of these tags [default: all].")
    max_items: int = Field(10, ge=1, le=100, description="Articles in one digest at most.")
    subject: str = Field(
        "{{ list.title }}{% if articles %}: {{ articles[0].title }}{% endif %}",
        min_length=1,
        description="Subject line: a Jinja2 template with `list`, `articles` and `date`.",
    )
    schedule: str = Field(
        "0 7 * * *",
        description="When the digest goes out: a crontab line (min hour dom mon dow; 0 or 7 is "
        "Sunday), or six fields with seconds first.",
    )
    timezone: str = Field("", description="Time zone of the schedule [default: site.timezone].")
    send_when_empty: bool = Field(False, description="Send even when no article is new.")
    cadences: dict[str, str] = Field(
        default_factory=dict,
        description="Other schedules a reader may choose on the preferences page, by name, e.g. "
        '{ weekly = "0 7 * * 1" }: each gets its own digest of what is new since its last one.',
    )

    @field_validator("schedule")
    @classmethod
    def _crontab(cls, value: str) -> str:
        return _crontab_line(value)

    @field_validator("cadences")
    @classmethod
    def _cadences(cls, value: dict[str, str]) -> dict[str, str]:
        for name, line in value.items():
            if not _CADENCE_NAME.fullmatch(name):
                raise ValueError(
                    f"cadence name {name!r}: expected lower-case letters, digits and - (at most 16)"
                )
            try:
                _crontab_line(line)
            except ValueError as exc:
                raise ValueError(f"cadence {name!r}: {exc}") from None
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        if value:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError("expected an IANA time zone name such as Europe/London") from None
        return value

    @field_validator("title", "description")
    @classmethod
    def _one_line(cls, value: str) -> str:
        return _single_line(value)


class ServerSettings(_Section):
    host: str = Field("127.0.0.1", min_length=1, description="Address `serve` listens on.")
    port: int = Field(8080, ge=1, le=65535, description="Port `serve` listens on.")
    trusted_proxies: Strings = Field(
        (),
        description="Addresses of reverse proxies whose X-Forwarded-For is believed, e.g. "
        '["127.0.0.1"] behind nginx on the same machine [default: none, the peer is the client].',
    )

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _ip_networks(value)


class SignupSettings(_Section):
    confirm_link_hours: int = Field(
        48, ge=1, le=24 * 30, description="How long the link in a confirmation email works."
    )
    per_ip: int = Field(
        10, ge=1, description="Sign-ups accepted from one IP address per window; then 429."
    )
    per_ip_window_minutes: int = Field(
        10, ge=1, le=24 * 60, description="The window of `per_ip`, in minutes."
    )
    per_address: int = Field(
        1, ge=1, description="Emails (confirmations, links) sent to one address per window."
    )
    per_address_window_minutes: int = Field(
        60, ge=1, le=7 * 24 * 60, description="The window of `per_address`, in minutes."
    )


class SendingSettings(_Section):
    batch_size: int = Field(
        1000,
        ge=1,
        le=100_000,
        description="Recipients claimed and handed to the transport at a time (SendGrid takes "
        "1,000 per request and sends several requests of a batch at once).",
    )
    messages_per_second: float = Field(
        0.0, ge=0, description="Average sending rate at most; 0: as fast as the transport goes."
    )
    max_errors: int = Field(
        1000, ge=0, description="Failed or deferred messages after which a send pauses; 0: never."
    )
    max_lateness_minutes: float = Field(
        180,
        gt=0,
        description="A send that would start this long after its scheduled time is cancelled.",
    )
    claim_lease_seconds: int = Field(
        600,
        ge=10,
        description="A batch in flight this long belongs to a sender that stopped: its rows "
        "become unknown (never resent automatically).",
    )
    processes: int = Field(
        1,
        ge=1,
        le=32,
        description="Processes that `speakerfeed send` and `sends resume` use for one send, each "
        "claiming its own batches (forked; messages_per_second is shared out among them). "
        "`serve` sends from one; start `speakerfeed worker` processes to add senders there.",
    )


class ScheduleSettings(_Section):
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


class WebhookSettings(_Section):
    sendgrid_public_key: str = Field(
        "",
        description="The Event Webhook's verification key (base64, from SendGrid's mail settings); "
        "empty: /webhooks/sendgrid is not served.",
    )


class StoreSettings(_Section):
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
        # Secrets never live in config.toml (see the module docstring).
        if urlsplit(value).password:
            raise ValueError("expected no password in the URL; set PGPASSWORD or use ~/.pgpass")
        return value


class Settings(_Section):
    site: SiteSettings
    feeds: FeedSettings
    build: BuildSettings = BuildSettings()
    fetch: FetchSettings = FetchSettings()
    upstream: Annotated[tuple[UpstreamSettings, ...], BeforeValidator(_list_to_tuple)] = ()
    server: ServerSettings = ServerSettings()
    email: EmailSettings = EmailSettings()
    lists: Annotated[tuple[ListSettings, ...], BeforeValidator(_list_to_tuple)] = ()
    store: StoreSettings = StoreSettings()
    signup: SignupSettings = SignupSettings()
    webhooks: WebhookSettings = WebhookSettings()
    delivery: DeliverySettings = DeliverySettings()
    sending: SendingSettings = SendingSettings()
    schedule: ScheduleSettings = ScheduleSettings()
    # Where the file was read from; paths in [build] are relative to its folder.
    root: Path = Field(Path(), exclude=True)

    @model_validator(mode="after")
    def _unique_upstream_names(self) -> Settings:
        for kind, names in (
            ("upstream", [u.name for u in self.upstream]),
            ("lists", [item.name for item in self.lists]),
        ):
            duplicates = sorted({n for n in names if names.count(n) > 1})
            if duplicates:
                raise ValueError(f"{kind} names must be unique; repeated: {', '.join(duplicates)}")
        if self.lists and not self.email.from_address:
            raise ValueError("email.from_address is required when [[lists]] are defined")
        _check_digest_id_prefixes(self.lists)
        return self

    @property
    def app_url(self) -> str:
        return self.email.app_url or self.site.url

    def mailing_list(self, name: str) -> ListSettings | None:
        return next((item for item in self.lists if item.name == name), None)

    def require_list(self, name: str) -> ListSettings:
        """The list called ``name``; a ConfigError naming the lists there are otherwise."""
        found = self.mailing_list(name)
        if found is None:
            known = ", ".join(item.name for item in self.lists) or "none are defined"
            raise ConfigError([Problem("lists", f"no list named {name!r} (lists: {known})")])
        return found

    def path(self, relative: str) -> Path:
        return (self.root / relative).resolve()

    @property
    def articles_dir(self) -> Path:
        return self.path(self.build.articles_dir)

    @property
    def output_dir(self) -> Path:
        return self.path(self.build.output_dir)

    @property
    def cache_dir(self) -> Path:
        return self.path(self.build.cache_dir)


class Secrets(BaseModel):
    """Values that must never be written in config.toml."""

    model_config = ConfigDict(frozen=True)

    secret_key: str = ""  # SPEAKERFEED_SECRET_KEY: signs links in emails (used from issue 3 on)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Secrets:
        env = os.environ if environ is None else environ
        return cls(secret_key=env.get("SPEAKERFEED_SECRET_KEY", ""))


def config_path(environ: Mapping[str, str] | None = None, explicit: str | None = None) -> Path:
    env = os.environ if environ is None else environ
    return Path(explicit or env.get(CONFIG_PATH_ENV) or DEFAULT_CONFIG_PATH)


def load_settings(path: Path) -> Settings:
    """Read and validate config.toml, raising ConfigError with every problem found."""
    where = str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError([Problem(where, "file not found")]) from None
    except OSError as exc:
        raise ConfigError([Problem(where, f"cannot read: {exc.strerror}")]) from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError([Problem(where, f"not UTF-8 (byte {exc.start})")]) from None
    except tomllib.TOMLDecodeError as exc:
        line = _toml_error_line(str(exc))
        raise ConfigError([Problem(where, f"invalid TOML: {exc}", line)]) from None
    return settings_from_mapping(data, where=where, root=path.parent)


def settings_from_mapping(data: dict[str, Any], *, where: str, root: Path) -> Settings:
    try:
        return Settings.model_validate({**data, "root": root})
    except ValidationError as exc:
        problems = [_describe(error, where) for error in exc.errors()]
        raise ConfigError(problems) from None


def _describe(error: Any, where: str) -> Problem:
    loc = tuple(error["loc"])
    key = _key_path(loc)
    kind = error["type"]
    if kind == "extra_forbidden":
        known = _known_keys(loc[:-1])
        hint = difflib.get_close_matches(str(loc[-1]), known, n=1)
        message = f"unknown key {key!r}"
        message += f"; did you mean {hint[0]!r}?" if hint else ""
        message += f" (expected one of: {', '.join(known)})" if known else ""
        return Problem(where, message)
    if kind == "missing":
        return Problem(where, f"{key}: required key is missing")
    message = str(error["msg"]).removeprefix("Value error, ")
    got = error.get("input")
    suffix = f" (got {got!r})" if got is not None and not isinstance(got, dict | list) else ""
    return Problem(where, f"{key}: {_plain(message)}{suffix}" if key else _plain(message))


def _plain(message: str) -> str:
    # pydantic says "Input should be a valid integer"; a reader of config expects "expected ...".
    return message.replace("Input should be", "expected").replace("String should", "expected to")


def _key_path(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _known_keys(loc: tuple[Any, ...]) -> list[str]:
    model: type[BaseModel] = Settings
    for part in loc:
        if isinstance(part, int):
            continue
        annotation = model.model_fields[str(part)].annotation
        inner = getattr(annotation, "__args__", (annotation,))[0]
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            model = inner
        elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
        else:
            return []
    return [name for name, f in model.model_fields.items() if not f.exclude]


def _toml_error_line(message: str) -> int | None:
    # tomllib reports "... (at line 3, column 7)"
    marker = "at line "
    if marker not in message:
        return None
    digits = message.split(marker, 1)[1].split(",", 1)[0].rstrip(")")
    return int(digits) if digits.isdigit() else None


def _ip_networks(value: tuple[str, ...]) -> tuple[str, ...]:
    """``value`` when each item is an IP address or network (a ValueError saying which is not)."""
    for item in value:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ValueError(f"expected IP addresses or networks, got {item!r}") from None
    return value


def _check_digest_id_prefixes(lists: Sequence[ListSettings]) -> None:
    """Digest ids start with the list's name, and a cadence's with "<list>-<cadence>": list
    "a-b" and list "a" with cadence "b" would share ids (and so sends)."""
    owners: dict[str, str] = {}
    for item in lists:
        for cadence in ("", *item.cadences):
            prefix = f"{item.name}-{cadence}" if cadence else item.name
            owner = f"list {item.name!r}" + (f" cadence {cadence!r}" if cadence else "")
            if prefix in owners:
                raise ValueError(
                    f"{owners[prefix]} and {owner} would give their digests the same ids "
                    f"({prefix}-<date>); rename one of them"
                )
            owners[prefix] = owner


def settings_reference() -> list[tuple[str, str, str]]:
    """(key path, default, help) for every setting: the README's reference is checked against it.
    A sub-table such as [delivery.smtp] is listed under its own heading."""
    rows: list[tuple[str, str, str]] = []
    for section_name, section_field in Settings.model_fields.items():
        if section_field.exclude:
            continue
        annotation = section_field.annotation
        inner = getattr(annotation, "__args__", (annotation,))[0]
        model = inner if isinstance(inner, type) and issubclass(inner, BaseModel) else annotation
        assert isinstance(model, type)
        assert issubclass(model, BaseModel)
        heading = f"[[{section_name}]]" if inner is not annotation else f"[{section_name}]"
        rows += _model_rows(model, heading, section_name)
    return rows


def _model_rows(model: type[BaseModel], heading: str, path: str) -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = []
    nested: list[tuple[str, type[BaseModel]]] = []
    for name, f in model.model_fields.items():
        if isinstance(f.annotation, type) and issubclass(f.annotation, BaseModel):
            nested.append((name, f.annotation))
            continue
        default = (
            "(required)" if f.is_required() else repr(f.get_default(call_default_factory=True))
        )
        rows.append((f"{heading} {name}", default, f.description or ""))
    for name, sub_model in nested:
        rows += _model_rows(sub_model, f"[{path}.{name}]", f"{path}.{name}")
    return rows
