"""A transport that sends through SendGrid's v3 Mail Send API, 1,000 recipients per request.

The request bodies are made by speakerfeed.transports.sendgrid_payload. They go out over an
httpx.Client, whose connections are kept alive and shared by ``pool_connections`` requests in
flight (the sendgrid package's own client opens a new connection, TLS and all, per request),
with the API key as a bearer token read from an environment variable.

What each answer means for a request's recipients:

* 2xx: SENT, with the request's X-Message-Id (SendGrid's events carry it, and our
  ``speakerfeed_key`` custom argument names the recipient);
* 429: wait as X-RateLimit-Reset (epoch seconds) or Retry-After says, then try again;
* 5xx, or no connection made, or the body not all written: wait (exponential backoff with
  jitter, capped), then try again; after ``max_attempts`` they are DEFERRED;
* any other 4xx: FAILED with SendGrid's error messages (401/403: the key is refused, so the
  requests not yet made are DEFERRED rather than sent to be refused too);
* the connection lost, or the answer late, once the body was sent: UNKNOWN, never sent again,
  since SendGrid may have accepted it.
"""

from __future__ import annotations

import io
import json
import logging
import random
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

import httpx

from speakerfeed.config.delivery import SendGridSettings
from speakerfeed.errors import SpeakerfeedError, TransportError
from speakerfeed.models import Batch, DeliveryResult, Outcome, Recipient
from speakerfeed.transports.base import InFlight, Transport
from speakerfeed.transports.sendgrid_payload import SendGridPayload

log = logging.getLogger(__name__)

SEND_PATH = "/v3/mail/send"
_KEY_REFUSED = (401, 403)
_API_KEY = re.compile(r"[!-~]+")  # it goes into a header: printable ASCII, no space
_MAX_DETAIL = 500
# Raised before the request could have reached SendGrid (or, for a write, all of it).
_NOT_SENT = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.WriteError,
    httpx.WriteTimeout,
)


@dataclass(frozen=True, slots=True)
class _Answer:
    """What one request (all its attempts) came to."""

    indices: list[int]
    results: list[DeliveryResult]
    key_refused: str = ""  # SendGrid's words when it refused the API key


class SendGridTransport(Transport):
    name = "sendgrid"

    def __init__(
        self,
        settings: SendGridSettings,
        api_key: str,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        jitter: random.Random | None = None,
    ) -> None:
        """``sleep``, ``clock`` (epoch seconds, for X-RateLimit-Reset) and ``jitter``: for
        tests."""
        if not _API_KEY.fullmatch(api_key):
            raise TransportError("the SendGrid API key is empty or holds spaces or non-ASCII")
        self.settings = settings
        self._api_key = api_key
        self._sleep = sleep
        self._clock = clock
        self._jitter = jitter or random.Random()  # noqa: S311 - spreads retries, no secret
        self._client: httpx.Client | None = None
        self._executor: ThreadPoolExecutor | None = None

    @classmethod
    def from_settings(
        cls, settings: SendGridSettings, environ: Mapping[str, str]
    ) -> SendGridTransport:
        """The transport for [delivery.sendgrid], the API key read from the environment
        variable the settings name; TransportError naming it when it is not set."""
        api_key = environ.get(settings.api_key_env, "").strip()
        if not api_key:
            raise TransportError(
                f"the sendgrid transport needs an API key: set the environment variable "
                f"{settings.api_key_env} (named by delivery.sendgrid.api_key_env)"
            )
        return cls(settings, api_key)

    def __repr__(self) -> str:  # never the key
        return f"<SendGridTransport {self.settings.api_url}>"

    def open(self) -> None:
        if self._client is not None:
            return
        connections = self.settings.pool_connections
        self._client = httpx.Client(
            base_url=self.settings.api_url,
            headers={
                "Authorization": f"Bearer {self._api_key}",
                "Content-Type": "application/json",
                "Accept": "application/json",
                "User-Agent": "speakerfeed",
            },
            timeout=self.settings.timeout_seconds,
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
            follow_redirects=False,
            trust_env=False,  # no proxy or .netrc from the environment sees the key
        )
        self._executor = ThreadPoolExecutor(connections, "speakerfeed-sendgrid")

    def close(self) -> None:
        client, self._client = self._client, None
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown()
        if client is not None:
            client.close()

    def send(self, batch: Batch) -> list[DeliveryResult]:
        opened_here = self._client is None
        self.open()
        try:
            return self.start(batch).results()
        finally:
            if opened_here:
                self.close()

    def start(self, batch: Batch) -> InFlight:
        """Make the batch's request bodies here, in the caller's thread, and post them from the
        pool's (``pool_connections`` at a time): the caller gets on with the next batch while
        SendGrid answers. Once SendGrid refuses the API key, the batch's requests not yet made
        are DEFERRED rather than sent to be refused too."""
        self.open()
        assert self._executor is not None
        payload = SendGridPayload.build(batch)
        recipients = batch.recipients
        results: list[DeliveryResult | None] = [None] * len(recipients)
        key_refused: list[str] = []  # SendGrid's words, once it refuses the key
        posts = [
            self._executor.submit(
                self._post, indices, [recipients[index].key for index in indices], body, key_refused
            )
            for indices, body in _requests(payload, recipients, results)
        ]

        def collect() -> list[DeliveryResult]:
            for post in posts:
                answer = post.result()
                for index, result in zip(answer.indices, answer.results, strict=True):
                    results[index] = result
            assert all(result is not None for result in results)
            return [result for result in results if result is not None]

        return InFlight(collect)

    def _post(
        self, indices: list[int], keys: list[str], body: bytes, key_refused: list[str]
    ) -> _Answer:
        """One request, with its retries."""
        if key_refused:
            detail = f"not sent: SendGrid refused the API key ({key_refused[0]})"
            return _every(indices, keys, Outcome.DEFERRED, detail)
        try:
            answer = self._attempts(indices, keys, body)
        except Exception as exc:  # a bug: the batch's other results must not be lost
            log.exception("SendGrid request failed unexpectedly")
            detail = f"unexpected error, it may have been sent: {exc!r}"
            return _every(indices, keys, Outcome.UNKNOWN, detail)
        if answer.key_refused:
            key_refused.append(answer.key_refused)
        return answer

    def _attempts(self, indices: list[int], keys: list[str], body: bytes) -> _Answer:
        assert self._client is not None
        settings = self.settings
        detail = ""
        for attempt in range(1, settings.max_attempts + 1):
            try:
                # httpx keeps each request in a reference cycle (a response and its stream)
                # until the garbage collector runs: a body handed over as a BytesIO, closed
                # once answered, is let go at once instead of piling up, 1 MB a request.
                with io.BytesIO(body) as content:
                    response = self._client.post(SEND_PATH, content=content)
            except _NOT_SENT as exc:
                detail = f"not sent: {_said(exc)}"
                wait_seconds = self._backoff(attempt)
            except httpx.HTTPError as exc:
                detail = (
                    "the connection failed after the request was sent, before SendGrid's "
                    f"answer: it may have been accepted ({_said(exc)})"
                )
                return _every(indices, keys, Outcome.UNKNOWN, detail)
            else:
                status = response.status_code
                if 200 <= status < 300:
                    message_id = response.headers.get("X-Message-Id", "")
                    return _every(indices, keys, Outcome.SENT, f"{status}", message_id)
                detail = f"{status} {_errors(response)}"
                if status == 429:
                    wait_seconds = self._rate_limit_wait(response.headers, attempt)
                elif status >= 500:
                    wait_seconds = self._backoff(attempt)
                else:
                    answer = _every(indices, keys, Outcome.FAILED, detail)
                    if status in _KEY_REFUSED:
                        return _Answer(answer.indices, answer.results, key_refused=detail)
                    return answer
            if attempt < settings.max_attempts:
                self._sleep(wait_seconds)
        return _every(
            indices, keys, Outcome.DEFERRED, f"after {settings.max_attempts} attempts: {detail}"
        )

    def _backoff(self, attempt: int) -> float:
        """Exponential, capped, with "equal jitter": half of it fixed, half random, so retries
        spread out yet still grow."""
        ceiling = min(
            self.settings.backoff_cap_seconds,
            self.settings.backoff_base_seconds * 2.0 ** (attempt - 1),
        )
        return ceiling / 2 + self._jitter.uniform(0, ceiling / 2)

    def _rate_limit_wait(self, headers: httpx.Headers, attempt: int) -> float:
        """Until SendGrid's limit resets: X-RateLimit-Reset (epoch seconds) or Retry-After
        (seconds or an HTTP date); the backoff when neither says; never over the cap."""
        wait_seconds: float | None = None
        reset = headers.get("X-RateLimit-Reset", "")
        retry_after = headers.get("Retry-After", "")
        try:
            if reset:
                wait_seconds = float(reset) - self._clock()
            elif retry_after.isdigit():
                wait_seconds = float(retry_after)
            elif retry_after:
                wait_seconds = parsedate_to_datetime(retry_after).timestamp() - self._clock()
        except (ValueError, TypeError, OverflowError):
            wait_seconds = None
        if wait_seconds is None:
            return self._backoff(attempt)
        return min(max(wait_seconds, 0.0), self.settings.backoff_cap_seconds)


def _requests(
    payload: SendGridPayload,
    recipients: Sequence[Recipient],
    results: list[DeliveryResult | None],
) -> Iterator[tuple[list[int], bytes]]:
    """(recipient indices, body) per request. A recipient whose personalization cannot be made
    is FAILED in ``results`` and left out; an address already in a request waits for a later
    one (SendGrid refuses a request naming one twice)."""
    fragments: list[str] = []
    todo: list[int] = []
    for index, recipient in enumerate(recipients):
        try:
            fragments.append(payload.personalization(recipient))
        except SpeakerfeedError as exc:
            results[index] = DeliveryResult(recipient.key, Outcome.FAILED, f"not sent: {exc}")
            fragments.append("")
            continue
        todo.append(index)
    size = payload.max_recipients
    addresses = [recipients[index].address.lower() for index in todo]
    if len(set(addresses)) == len(addresses):  # as usual, every address once: cut in requests
        for start in range(0, len(todo), size):
            indices = todo[start : start + size]
            yield indices, payload.body([fragments[index] for index in indices])
        return
    while todo:
        later: list[int] = []
        indices = []
        seen: set[str] = set()
        for index in todo:
            address = recipients[index].address.lower()
            if address in seen:
                later.append(index)
                continue
            seen.add(address)
            indices.append(index)
            if len(indices) == size:
                yield indices, payload.body([fragments[i] for i in indices])
                indices, seen = [], set()
        if indices:
            yield indices, payload.body([fragments[i] for i in indices])
        todo = later


def _every(
    indices: list[int], keys: list[str], outcome: Outcome, detail: str, provider_id: str = ""
) -> _Answer:
    return _Answer(indices, [DeliveryResult(key, outcome, detail, provider_id) for key in keys])


def _errors(response: httpx.Response) -> str:
    """SendGrid's error messages ({"errors": [{"field", "message"}]}), or the body's start."""
    try:
        errors = json.loads(response.content)["errors"]
        said = "; ".join(
            f"{error['field']}: {error['message']}" if error.get("field") else str(error["message"])
            for error in errors
        )
    except (ValueError, KeyError, TypeError, IndexError, AttributeError):
        said = response.text
    return " ".join(said.split())[:_MAX_DETAIL] or response.reason_phrase


def _said(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
