"""config.toml -> typed, frozen settings.

Every problem is reported at once, each naming its key path and what was expected. Unknown keys
are errors (with a "did you mean" hint) because a misspelt key silently ignored is a setting that
silently does nothing. Secrets never live in config.toml: they come from environment variables.

The package by job: the settings models by section (``publishing``: site, feeds, build, fetch,
upstream; ``mailing``: email, lists, signup, sending; ``serving``: server, schedule, webhooks,
store; ``delivery``: the transports), the whole in ``settings``, reading and problem reporting in
``load``, the settings reference in ``reference``. This module re-exports the public names.
"""

from speakerfeed.config.delivery import DeliverySettings
from speakerfeed.config.load import (
    CONFIG_PATH_ENV,
    DEFAULT_CONFIG_PATH,
    config_path,
    load_settings,
    settings_from_mapping,
)
from speakerfeed.config.mailing import EmailSettings, ListSettings, SendingSettings, SignupSettings
from speakerfeed.config.publishing import (
    BuildSettings,
    FeedSettings,
    FetchSettings,
    SiteSettings,
    UpstreamSettings,
)
from speakerfeed.config.reference import settings_reference
from speakerfeed.config.serving import (
    ScheduleSettings,
    ServerSettings,
    StoreSettings,
    WebhookSettings,
)
from speakerfeed.config.settings import Secrets, Settings

__all__ = [
    "CONFIG_PATH_ENV",
    "DEFAULT_CONFIG_PATH",
    "BuildSettings",
    "DeliverySettings",
    "EmailSettings",
    "FeedSettings",
    "FetchSettings",
    "ListSettings",
    "ScheduleSettings",
    "Secrets",
    "SendingSettings",
    "ServerSettings",
    "Settings",
    "SignupSettings",
    "SiteSettings",
    "StoreSettings",
    "UpstreamSettings",
    "WebhookSettings",
    "config_path",
    "load_settings",
    "settings_from_mapping",
    "settings_reference",
]
