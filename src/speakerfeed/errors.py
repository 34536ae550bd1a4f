"""One exception tree for everything speakerfeed reports to a user.

::

    SpeakerfeedError
    ├── ConfigError            config.toml is missing, unreadable or invalid (holds every problem)
    ├── ArticleError           one article could not be read (path, line, what was expected)
    ├── HeaderError            a value cannot go into an email header (mail.headers)
    ├── MessageError           a digest or batch cannot become messages (digest.letter, mail.mime)
    ├── TransportError         a transport cannot work at all: a missing secret, a bad setting
    ├── WebhookError           a webhook delivery refused (its ``status`` is the HTTP answer)
    │   ├── SignatureError         missing or bad signature
    │   ├── StaleTimestampError    signed too long ago
    │   ├── PayloadTooLargeError   body over the cap
    │   └── MalformedPayloadError  not the JSON the provider sends
    ├── StoreError             the database named by [store] url could not be used
    ├── AddressError           not an email address we can send to (mail.addresses)
    ├── SubscriptionRefusedError   an editor may not subscribe this address to the list
    │   ├── SuppressedAddressError     the address is suppressed
    │   └── UnsubscribedAddressError   the person left the list: only they can come back
    ├── SendNotFoundError      no send in the ledger has the id asked for
    └── FetchError             an upstream feed could not be fetched safely
        ├── BlockedAddressError    a hop resolved to a private, loopback or link-local address
        ├── SchemeNotAllowedError  a URL (or redirect) that is not http or https
        ├── TooManyRedirectsError  the redirect cap was reached, or a redirect loop
        ├── ResponseTooLargeError  the (decoded) body is over the size cap
        └── UpstreamHTTPError      the server answered with an error status

A user's mistake is reported as one of these, never as a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with one input, located as precisely as we can."""

    where: str  # a file path, a config key path, or an upstream's name
    message: str
    line: int | None = None
    warning: bool = False  # reported, but does not fail `check` or `build --strict`

    def __str__(self) -> str:
        location = f"{self.where}:{self.line}" if self.line is not None else self.where
        label = "warning: " if self.warning else ""
        return f"{location}: {label}{self.message}"


class SpeakerfeedError(Exception):
    """Root of every error speakerfeed raises on purpose."""


class ConfigError(SpeakerfeedError):
    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class ArticleError(SpeakerfeedError):
    def __init__(self, path: str, message: str, line: int | None = None) -> None:
        self.problem = Problem(path, message, line)
        super().__init__(str(self.problem))


class FetchError(SpeakerfeedError):
    """An upstream could not be fetched; the message says why, without a traceback."""


class BlockedAddressError(FetchError):
    pass


class SchemeNotAllowedError(FetchError):
    pass


class TooManyRedirectsError(FetchError):
    pass


class ResponseTooLargeError(FetchError):
    pass


class UpstreamHTTPError(FetchError):
    pass


class TransportError(SpeakerfeedError):
    """A transport cannot work at all (a missing secret, an unusable setting, a batch no
    message can be made of): raised before anything is sent, the message says what to fix."""


class HeaderError(SpeakerfeedError):
    """A value that cannot go into a header safely; the message names the header field."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


class MessageError(SpeakerfeedError):
    """The digest cannot be turned into messages: the message says which setting to fix."""


class StoreError(SpeakerfeedError):
    """The database could not be reached or used: the message names it (password hidden) and
    gives the driver's first line."""

    def __init__(self, database: str, detail: str) -> None:
        self.database = database
        super().__init__(f"database {database}: {detail}")


class AddressError(SpeakerfeedError):
    """What was typed is not an email address we can send to; the message shows it, and
    ``reason`` says why in a sentence for a form field (mail.addresses)."""

    def __init__(self, message: str, *, reason: str = "") -> None:
        self.reason = reason or message
        super().__init__(message)


class SubscriptionRefusedError(SpeakerfeedError):
    """An editor asked to subscribe an address that may not be subscribed to the list."""

    def __init__(self, address: str, list_name: str, message: str) -> None:
        self.address, self.list_name = address, list_name
        super().__init__(message)


class SuppressedAddressError(SubscriptionRefusedError):
    def __init__(self, address: str, list_name: str) -> None:
        super().__init__(address, list_name, f"{address} is suppressed; not added")


class UnsubscribedAddressError(SubscriptionRefusedError):
    def __init__(self, address: str, list_name: str) -> None:
        super().__init__(address, list_name, f"{address} unsubscribed from {list_name}; not added")


class SendNotFoundError(SpeakerfeedError):
    """No send in the delivery ledger has this id (`sends show`, `sends resume`, a send run)."""

    def __init__(self, send_id: str) -> None:
        self.send_id = send_id
        super().__init__(f"no send with id {send_id!r}")


class WebhookError(SpeakerfeedError):
    """A webhook request was refused; ``status`` is the HTTP answer, the message says why."""

    status = 400


class SignatureError(WebhookError):
    status = 401


class StaleTimestampError(WebhookError):
    status = 403


class PayloadTooLargeError(WebhookError):
    status = 413


class MalformedPayloadError(WebhookError):
    status = 400
