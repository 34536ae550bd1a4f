"""A real HTTP/1.1 server on 127.0.0.1 that speaks SendGrid's v3 POST /v3/mail/send.

It checks what SendGrid checks (``payload_problems``: the bearer token, 1 to 1,000
personalizations and recipients, "to" in each and no address twice, a subject, content with
text/plain before text/html, from, header, substitution, custom_args and category rules) and
answers 400 with SendGrid's error shape when a rule is broken, else 202 with an X-Message-Id.
What it accepts it also "delivers" as SendGrid would: each personalization's substitutions
applied to the content, headers merged, so a test can read the email a reader would get.

Connections are kept alive, and counted. ``script`` makes the next requests get a canned answer
(429 with X-RateLimit-Reset, 500, 503, 400 with errors...) or ``DROP``: the body read, then the
connection closed without an answer.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DROP = "drop"
SEND_PATH = "/v3/mail/send"
RESERVED_HEADERS = frozenset(
    name.lower()
    for name in (
        "x-sg-id",
        "x-sg-eid",
        "received",
        "dkim-signature",
        "Content-Type",
        "Content-Transfer-Encoding",
        "To",
        "From",
        "Subject",
        "Reply-To",
        "CC",
        "BCC",
    )
)


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass(frozen=True, slots=True)
class Delivered:
    """One email as SendGrid would make it from an accepted request."""

    to: dict[str, str]
    sender: dict[str, str]
    reply_to: dict[str, str] | None
    subject: str
    text: str
    html: str
    headers: dict[str, str]
    custom_args: dict[str, str]
    categories: list[str]
    message_id: str  # the request's X-Message-Id


@dataclass(frozen=True, slots=True)
class Request:
    payload: Any  # the parsed JSON body, or None when it was not JSON
    status: int  # what it was answered (0: dropped)
    authorization: str


def payload_problems(payload: Any) -> list[tuple[str, str]]:
    """(field, message) for every SendGrid rule the request body breaks."""
    if not isinstance(payload, dict):
        return [("", "The request body must be a JSON object.")]
    problems: list[tuple[str, str]] = []

    def string_map(where: str, value: Any) -> dict[str, str]:
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            problems.append((where, f"All values of {where} must be strings."))
            return {}
        return value

    def check_headers(where: str, value: Any) -> None:
        for name in string_map(where, value):
            if not name.isascii() or " " in name or not name:
                problems.append((where, "Header keys cannot contain non-ASCII or spaces."))
            if name.lower() in RESERVED_HEADERS:
                problems.append((where, f"Header {name} is one of the reserved keys."))

    personalizations = payload.get("personalizations")
    if not isinstance(personalizations, list) or not personalizations:
        problems.append(("personalizations", "You must have at least one personalization."))
        personalizations = []
    if len(personalizations) > 1000:
        problems.append(
            (
                "personalizations",
                "The personalization block is limited to 1000 personalizations per API "
                f"request. You have provided {len(personalizations)} personalizations.",
            )
        )
    recipients = 0
    seen: set[str] = set()
    substitutions = 0
    global_args = string_map("custom_args", payload.get("custom_args", {}))
    for number, item in enumerate(personalizations):
        where = f"personalizations.{number}"
        if not isinstance(item, dict):
            problems.append((where, "Each personalization must be an object."))
            continue
        to = item.get("to")
        if not isinstance(to, list) or not to:
            problems.append((f"{where}.to", "The to parameter is required."))
            to = []
        for kind in ("to", "cc", "bcc"):
            addresses = item.get(kind, []) if kind != "to" else to
            for address in addresses:
                recipients += 1
                email = address.get("email") if isinstance(address, dict) else None
                if not isinstance(email, str) or "@" not in email or len(email) > 320:
                    problems.append((f"{where}.{kind}", "Each email must have a valid email."))
                    continue
                name = address.get("name", "")
                if not isinstance(name, str):
                    problems.append((f"{where}.{kind}", "The name must be a string."))
                if email.lower() in seen:
                    problems.append((where, f"You have included {email} more than once."))
                seen.add(email.lower())
        if "subject" in item and (not isinstance(item["subject"], str) or not item["subject"]):
            problems.append((f"{where}.subject", "The subject must be a non-empty string."))
        check_headers(f"{where}.headers", item.get("headers", {}))
        subs = string_map(f"{where}.substitutions", item.get("substitutions", {}))
        substitutions += len(subs)
        if sum(len(k.encode()) + len(v.encode()) for k, v in subs.items()) > 10_000:
            problems.append((f"{where}.substitutions", "Substitutions over 10,000 bytes."))
        args = global_args | string_map(f"{where}.custom_args", item.get("custom_args", {}))
        if "custom_args" in item and not item["custom_args"]:
            problems.append((f"{where}.custom_args", "custom_args cannot be empty."))
        if sum(len(k.encode()) + len(v.encode()) for k, v in args.items()) > 10_000:
            problems.append((f"{where}.custom_args", "Custom arguments over 10,000 bytes."))
    if recipients > 1000:
        problems.append(("personalizations", "There is a limit of 1000 total recipients."))
    if substitutions > 10_000:
        problems.append(("personalizations", "You are limited to 10,000 substitutions."))

    subject = payload.get("subject")
    if subject is not None and (not isinstance(subject, str) or not subject):
        problems.append(("subject", "The subject must be a string at least one character."))
    if not subject and not all(
        isinstance(item, dict) and item.get("subject") for item in personalizations
    ):
        problems.append(("subject", "The subject is required."))

    sender = payload.get("from")
    if not isinstance(sender, dict) or not isinstance(sender.get("email"), str):
        problems.append(("from", "The from object must be provided for every email send."))
    reply_to = payload.get("reply_to")
    if reply_to is not None and (
        not isinstance(reply_to, dict) or not isinstance(reply_to.get("email"), str)
    ):
        problems.append(("reply_to", "The reply_to object must have an email."))

    content = payload.get("content")
    if not isinstance(content, list) or not content:
        problems.append(("content", "The content param is required."))
        content = []
    types = []
    for block in content:
        if (
            not isinstance(block, dict)
            or not isinstance(block.get("type"), str)
            or not isinstance(block.get("value"), str)
            or not block["value"]
        ):
            problems.append(("content", "Each content needs a type and a non-empty value."))
            continue
        types.append(block["type"])
    expected = [t for t in ("text/plain", "text/html") if t in types]
    if types[: len(expected)] != expected:
        problems.append(("content.type", "text/plain needs to be first, followed by text/html."))

    check_headers("headers", payload.get("headers", {}))
    categories = payload.get("categories", [])
    if (
        not isinstance(categories, list)
        or len(categories) > 10
        or len(set(map(str, categories))) != len(categories)
        or not all(isinstance(c, str) and c.isascii() and len(c) <= 255 for c in categories)
    ):
        problems.append(("categories", "At most 10 unique ASCII categories of 255 characters."))
    return problems


class SendGridServer:
    def __init__(self, api_key: str) -> None:
        self.api_key = api_key
        self.requests: list[Request] = []
        self.delivered: list[Delivered] = []
        self.connections = 0
        self._scripted: list[Reply | str] = []
        self._lock = threading.Lock()
        # Cleared, requests are read but not answered until it is set again.
        self.answering = threading.Event()
        self.answering.set()
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.owner = self
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.02,))

    def script(self, *replies: Reply | str) -> None:
        """Answer the next requests with these (a Reply, or DROP), one each, then as usual."""
        with self._lock:
            self._scripted.extend(replies)

    def answered(self) -> list[int]:
        with self._lock:
            return [request.status for request in self.requests]

    def _next_script(self) -> Reply | str | None:
        with self._lock:
            return self._scripted.pop(0) if self._scripted else None

    def _connected(self) -> None:
        with self._lock:
            self.connections += 1

    def _record(self, request: Request, delivered: list[Delivered]) -> None:
        with self._lock:
            self.requests.append(request)
            self.delivered.extend(delivered)


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # server_close() joins handler threads: none outlives its test
    owner: SendGridServer

    def get_request(self) -> Any:
        accepted = super().get_request()
        self.owner._connected()
        return accepted


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the client reuses its connections
    timeout = 5  # an idle kept-alive connection lets go at last, so the server can stop

    def do_POST(self) -> None:
        assert isinstance(self.server, _Server)
        owner = self.server.owner
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        owner.answering.wait(30)
        authorization = self.headers.get("Authorization", "")
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
        scripted = owner._next_script()
        if scripted == DROP:
            owner._record(Request(payload, 0, authorization), [])
            self.close_connection = True  # and nothing written: the client hears nothing
            return
        if isinstance(scripted, Reply):
            owner._record(Request(payload, scripted.status, authorization), [])
            self._reply(scripted)
            return
        if self.path != SEND_PATH:
            self._answer(owner, payload, authorization, 404, [("", "Not found.")])
        elif authorization != f"Bearer {owner.api_key}":
            message = "The provided authorization grant is invalid, expired, or revoked"
            self._answer(owner, payload, authorization, 401, [("", message)])
        elif self.headers.get("Content-Type") != "application/json":
            self._answer(owner, payload, authorization, 415, [("", "Content-Type must be JSON")])
        else:
            problems = payload_problems(payload)
            if problems:
                self._answer(owner, payload, authorization, 400, problems)
                return
            message_id = secrets.token_urlsafe(16)
            owner._record(Request(payload, 202, authorization), _deliver(payload, message_id))
            self._reply(Reply(202, {"X-Message-Id": message_id}))

    def _answer(
        self,
        owner: SendGridServer,
        payload: Any,
        authorization: str,
        status: int,
        problems: list[tuple[str, str]],
    ) -> None:
        owner._record(Request(payload, status, authorization), [])
        errors = [{"message": m, "field": f or None, "help": None} for f, m in problems]
        self._reply(Reply(status, {}, json.dumps({"errors": errors}).encode()))

    def _reply(self, reply: Reply) -> None:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            if reply.body:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean


# What an account with SendGrid's default settings adds to an email whose request does not
# switch it off: an open pixel, and every link rewritten through the click tracker.
TRACKER = "https://u0.ct.sendgrid.net"


def _tracked(payload: dict[str, Any], rich: str) -> str:
    tracking = payload.get("tracking_settings", {})
    if tracking.get("click_tracking", {}).get("enable", True):
        rich = rich.replace('href="http', f'href="{TRACKER}/ls/click?upn=http')
    if tracking.get("open_tracking", {}).get("enable", True):
        pixel = f'<img src="{TRACKER}/wf/open?upn=x" alt="" width="1" height="1">'
        rich = rich.replace("</body>", pixel + "</body>") if "</body>" in rich else rich + pixel
    return rich


def _deliver(payload: dict[str, Any], message_id: str) -> list[Delivered]:
    """Each personalization's email, as SendGrid makes it: substitutions applied one after
    another to the content and subject, headers and custom_args merged over the shared ones,
    and the account's default tracking unless the request switches it off."""
    content = {block["type"]: block["value"] for block in payload["content"]}
    if "text/html" in content:
        content["text/html"] = _tracked(payload, content["text/html"])
    delivered = []
    for item in payload["personalizations"]:
        text, rich = content.get("text/plain", ""), content.get("text/html", "")
        subject = item.get("subject", payload.get("subject", ""))
        for key, value in item.get("substitutions", {}).items():
            text, rich, subject = (
                text.replace(key, value),
                rich.replace(key, value),
                subject.replace(key, value),
            )
        for to in item["to"]:
            delivered.append(
                Delivered(
                    to=to,
                    sender=payload["from"],
                    reply_to=payload.get("reply_to"),
                    subject=subject,
                    text=text,
                    html=rich,
                    headers=payload.get("headers", {}) | item.get("headers", {}),
                    custom_args=payload.get("custom_args", {}) | item.get("custom_args", {}),
                    categories=payload.get("categories", []),
                    message_id=message_id,
                )
            )
    return delivered


@contextlib.contextmanager
def running_sendgrid_server(api_key: str) -> Iterator[SendGridServer]:
    server = SendGridServer(api_key)
    server._thread.start()
    try:
        yield server
    finally:
        server._httpd.shutdown()
        server._httpd.server_close()
        server._thread.join()
