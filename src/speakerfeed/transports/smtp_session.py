"""One SMTP session (smtplib) of the SMTP transport's pool: opened when first needed (TLS from
the start, or STARTTLS, or neither; then AUTH), checked with NOOP when it has been idle,
replaced after ``messages_per_connection`` messages, and one SMTP transaction per message, whose
reply says what became of it: a DeliveryResult, or ``Retry`` when nothing was accepted and it
may be tried again. ``SessionError`` when no usable connection can be had.
"""

from __future__ import annotations

import re
import smtplib
import ssl
from collections.abc import Callable
from dataclasses import dataclass

from speakerfeed.config.delivery import SmtpSettings
from speakerfeed.models import DeliveryResult, Outcome, Recipient

NOOP_AFTER_IDLE_SECONDS = 10.0  # a connection idle longer is checked before it is used again
_ENHANCED_STATUS = re.compile(r"([245])\.(\d{1,3})\.(\d{1,3})(?!\S)")
_QUEUE_ID = re.compile(r"queued as (\S+)|\bid=(\S+)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Retry:
    """Not sent for now, and certainly not accepted: safe to try again."""

    detail: str


class SessionError(Exception):
    """No usable connection. ``fatal``: one that retrying cannot mend (AUTH refused, no TLS)."""

    def __init__(self, detail: str, *, fatal: bool) -> None:
        super().__init__(detail)
        self.detail = detail
        self.fatal = fatal


class Connection:
    """One SMTP session, used by one thread at a time, reconnected whenever it breaks."""

    def __init__(
        self,
        settings: SmtpSettings,
        password: str,
        context: ssl.SSLContext,
        clock: Callable[[], float],
    ) -> None:
        self._settings = settings
        self._password = password
        self._context = context
        self._clock = clock
        self._client: smtplib.SMTP | None = None
        self._messages = 0
        self._last_used = 0.0

    def deliver(self, sender: str, recipient: Recipient, data: bytes) -> DeliveryResult | Retry:
        """One SMTP transaction; raises SessionError when no connection can be had."""
        for _ in range(2):
            reused = self._client is not None
            client = self._session()
            try:
                refused = self._envelope(client, sender, recipient)
            except (smtplib.SMTPException, OSError) as exc:
                self.drop()
                if reused:  # the server closed an idle connection (or lost track of it): try
                    continue  # once on a fresh one
                return Retry(f"connection lost before the message was sent: {_said(exc)}")
            if refused is not None:
                return refused
            return self._data(client, recipient, data)
        return Retry("connection lost twice before the message was sent")

    def close(self) -> None:
        """QUIT, politely; a server that is gone already is no error."""
        client, self._client = self._client, None
        if client is None:
            return
        try:
            client.quit()
        except (smtplib.SMTPException, OSError):
            client.close()

    def drop(self) -> None:
        """Forget a connection in an unknown state, without a word to the server."""
        client, self._client = self._client, None
        if client is not None:
            client.close()

    def _envelope(
        self, client: smtplib.SMTP, sender: str, recipient: Recipient
    ) -> DeliveryResult | Retry | None:
        """MAIL, RCPT and DATA: None when the server waits for the message."""
        code, reply = client.mail(sender)
        if code == 503:  # bad sequence: the session's fault, not this recipient's
            raise smtplib.SMTPResponseException(code, reply)
        if code != 250:
            return self._refused(client, "MAIL FROM", code, reply, recipient)
        code, reply = client.rcpt(recipient.address)
        if code not in (250, 251):
            return self._refused(client, "RCPT TO", code, reply, recipient)
        code, reply = client.docmd("DATA")
        if code != 354:
            return self._refused(client, "DATA", code, reply, recipient)
        return None

    def _data(
        self, client: smtplib.SMTP, recipient: Recipient, data: bytes
    ) -> DeliveryResult | Retry:
        try:
            client.send(_dot_stuffed(data))
        except (smtplib.SMTPException, OSError) as exc:
            # The final "." was not sent, so the server cannot have taken the message.
            self.drop()
            return Retry(f"connection lost while sending the message: {_said(exc)}")
        try:
            code, reply = client.getreply()
        except (smtplib.SMTPException, OSError) as exc:
            self.drop()
            return DeliveryResult(
                recipient.key,
                Outcome.UNKNOWN,
                "connection lost after the message was sent, before the server's answer: "
                f"it may have been accepted ({_said(exc)})",
            )
        self._messages += 1
        self._last_used = self._clock()
        text = _text(reply)
        if 200 <= code < 300:
            found = _QUEUE_ID.search(text)
            queue_id = (found.group(1) or found.group(2)) if found else ""
            return DeliveryResult(recipient.key, Outcome.SENT, f"{code} {text}", queue_id)
        if not 400 <= code < 600:  # no SMTP answer at all: whether it was taken is unknown
            self.drop()
            return DeliveryResult(
                recipient.key, Outcome.UNKNOWN, f"not an SMTP answer to the message: {text!r}"
            )
        if code == 421:
            self.drop()
        else:  # some servers hold a refused message's transaction open: the next MAIL must
            self._reset(client)  # not meet "503 nested MAIL command"
        hard_bounce = _refuses_address(code, text, by_code=False)
        return _final_or_retry("end of DATA", code, text, recipient, hard_bounce=hard_bounce)

    def _refused(
        self, client: smtplib.SMTP, stage: str, code: int, reply: bytes, recipient: Recipient
    ) -> DeliveryResult | Retry:
        if code == 421 or not 400 <= code < 600:  # closing, or not speaking SMTP as we know it
            self.drop()
        else:
            self._reset(client)
        text = _text(reply)
        # Only an answer to RCPT is about the recipient's address: MAIL is about the sender.
        hard_bounce = stage == "RCPT TO" and _refuses_address(code, text, by_code=True)
        return _final_or_retry(stage, code, text, recipient, hard_bounce=hard_bounce)

    def _reset(self, client: smtplib.SMTP) -> None:
        """RSET after a refused transaction, so the connection can carry the next one."""
        try:
            code, _ = client.rset()
        except (smtplib.SMTPException, OSError):
            code = 0
        if code != 250:
            self.drop()

    def _session(self) -> smtplib.SMTP:
        client = self._client
        if client is not None and self._messages >= self._settings.messages_per_connection:
            self.close()
        elif client is not None and self._clock() - self._last_used > NOOP_AFTER_IDLE_SECONDS:
            try:
                alive = client.noop()[0] == 250
            except (smtplib.SMTPException, OSError):
                alive = False
            if not alive:
                self.drop()
        if self._client is None:
            self._client = self._connect()
            self._messages = 0
        self._last_used = self._clock()
        return self._client

    def _connect(self) -> smtplib.SMTP:
        """A new session: connected (TLS from the start, or STARTTLS), greeted, logged in."""
        settings = self._settings
        where = f"{settings.host}:{settings.port}"
        client: smtplib.SMTP | None = None
        try:
            # Given the host, smtplib connects at once, and closes what it opened on failure.
            if settings.security == "tls":
                client = smtplib.SMTP_SSL(
                    settings.host,
                    settings.port,
                    settings.helo_name or None,
                    timeout=settings.timeout_seconds,
                    context=self._context,
                )
            else:
                client = smtplib.SMTP(
                    settings.host,
                    settings.port,
                    settings.helo_name or None,
                    timeout=settings.timeout_seconds,
                )
            client.ehlo_or_helo_if_needed()
            if settings.security == "starttls":
                if not client.has_extn("starttls"):
                    raise SessionError(
                        f"{where} does not offer STARTTLS: not sending in clear (set "
                        "delivery.smtp.security = 'none' only for a relay on this machine)",
                        fatal=True,
                    )
                client.starttls(context=self._context)
                client.ehlo()
            if settings.username:
                client.login(settings.username, self._password)
        except SessionError:
            _close(client)
            raise
        except smtplib.SMTPConnectError as exc:  # greeted with something else than 220
            # 554 at the greeting: the server will not talk to us; no use trying again now.
            detail = f"{where} greeted with {_said(exc)}"
            raise SessionError(detail, fatal=exc.smtp_code >= 500) from None
        except smtplib.SMTPAuthenticationError as exc:
            _close(client)
            detail = f"{where} refused AUTH as {settings.username!r}: {_said(exc)}"
            raise SessionError(detail, fatal=exc.smtp_code >= 500) from None
        except (smtplib.SMTPNotSupportedError, ssl.SSLCertVerificationError) as exc:
            _close(client)
            raise SessionError(f"{where}: {_said(exc)}", fatal=True) from None
        except (smtplib.SMTPException, OSError) as exc:
            _close(client)
            raise SessionError(f"cannot connect to {where}: {_said(exc)}", fatal=False) from None
        return client


def _final_or_retry(
    stage: str, code: int, text: str, recipient: Recipient, *, hard_bounce: bool
) -> DeliveryResult | Retry:
    """A 5xx is FAILED; anything else (a 4xx) may be tried again."""
    detail = f"{stage}: {code} {text}"
    if not 500 <= code < 600:
        return Retry(detail)
    return DeliveryResult(recipient.key, Outcome.FAILED, detail, hard_bounce=hard_bounce)


def _refuses_address(code: int, text: str, *, by_code: bool) -> bool:
    """A permanent refusal of the recipient's mailbox itself (not of the sender or of this
    message): an enhanced status 5.1.x (other than 5.1.7 and 5.1.8, the sender's address) or
    5.2.1; without one, and when ``by_code`` (an answer to RCPT), 550, 551 or 553."""
    enhanced = _ENHANCED_STATUS.match(text)
    if enhanced:
        klass, subject, detail = enhanced.groups()
        mailbox = (subject == "1" and detail not in ("7", "8")) or (subject, detail) == ("2", "1")
        return klass == "5" and mailbox
    return by_code and code in (550, 551, 553)


def _dot_stuffed(data: bytes) -> bytes:
    """The message as DATA sends it (RFC 5321 4.5.2): a "." starting a line doubled, and the
    terminating line."""
    stuffed = data.replace(b"\r\n.", b"\r\n..")
    if stuffed.startswith(b"."):
        stuffed = b"." + stuffed
    if not stuffed.endswith(b"\r\n"):
        stuffed += b"\r\n"
    return stuffed + b".\r\n"


def _close(client: smtplib.SMTP | None) -> None:
    if client is not None:
        client.close()


def _text(reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    return text.replace("\n", " ")


def _said(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"{exc.smtp_code} {_text(exc.smtp_error)}"
    return str(exc) or type(exc).__name__
