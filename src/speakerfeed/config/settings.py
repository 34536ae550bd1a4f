"""The whole of config.toml as one frozen model, its sections in order, and the secrets that
never live in it."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from speakerfeed.config.delivery import DeliverySettings
from speakerfeed.config.fields import Section, list_to_tuple
from speakerfeed.config.mailing import (
    EmailSettings,
    ListSettings,
    SendingSettings,
    SignupSettings,
    check_digest_id_prefixes,
)
from speakerfeed.config.publishing import (
    BuildSettings,
    FeedSettings,
    FetchSettings,
    SiteSettings,
    UpstreamSettings,
)
from speakerfeed.config.serving import (
    ScheduleSettings,
    ServerSettings,
    StoreSettings,
    WebhookSettings,
)
from speakerfeed.errors import ConfigError, Problem


class Settings(Section):
    site: SiteSettings
    feeds: FeedSettings
    build: BuildSettings = BuildSettings()
    fetch: FetchSettings = FetchSettings()
    upstream: Annotated[tuple[UpstreamSettings, ...], BeforeValidator(list_to_tuple)] = ()
    server: ServerSettings = ServerSettings()
    email: EmailSettings = EmailSettings()
    lists: Annotated[tuple[ListSettings, ...], BeforeValidator(list_to_tuple)] = ()
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
        check_digest_id_prefixes(self.lists)
        return self

    @property
    def app_url(self) -> str:
        """Where links in emails lead (confirm, unsubscribe, preferences, view in browser):
        email.app_url, else the address `serve` listens on, so they work out of the box."""
        return self.email.app_url or self.server.listen_url

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

    @property
    def notes_dir(self) -> Path:
        return self.path(self.build.notes_dir)

    @property
    def templates_dir(self) -> Path | None:
        """The editor's template overrides, if [build] templates_dir names a folder."""
        return self.path(self.build.templates_dir) if self.build.templates_dir else None


class Secrets(BaseModel):
    """Values that must never be written in config.toml."""

    model_config = ConfigDict(frozen=True)

    secret_key: str = ""  # SPEAKERFEED_SECRET_KEY: signs links in emails (used from issue 3 on)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Secrets:
        env = os.environ if environ is None else environ
        return cls(secret_key=env.get("SPEAKERFEED_SECRET_KEY", ""))
