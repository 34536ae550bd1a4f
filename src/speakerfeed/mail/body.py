"""A message body encoded once and filled in per recipient as bytes.

``MimeBody.encode`` turns a text and an HTML version (both holding the markers of
speakerfeed.mail.placeholders) into a ``multipart/alternative`` body: text/plain first, then
text/html (the last part is the preferred one), both UTF-8 and quoted-printable, with CRLF line
endings throughout (SMTP's, so the bytes go to the server as they are). Each part is kept as
quoted-printable bytes split at the markers; ``fill`` joins them with one recipient's values.

Quoted-printable keeps every body line within 76 characters whatever is filled in: each value is
encoded starting at the column where it lands, and a soft line break goes in wherever a value or
the text after it would run past the limit.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from speakerfeed.mail import placeholders

# The markers a body may hold; values are passed to ``fill`` in this order.
MARKERS = placeholders.ALL
MARKER_INDEX = {marker: index for index, marker in enumerate(MARKERS)}

_QP_WIDTH = 75  # characters before a soft line break's "=": lines stay within 76 (RFC 2045 6.7)
_SOFT_BREAK = b"=\r\n"
_END = -1  # in _PartTemplate.markers: the end of the part, no marker
_MARKER_SPLIT = re.compile("(" + "|".join(map(re.escape, MARKERS)) + ")")
# Quoted-printable: printable ASCII other than "=" stands for itself, and so do space and tab
# except at the end of a line (RFC 2045 6.7 rule 3); every other byte is "=XX".
_QP = [bytes([b]) if 33 <= b <= 126 and b != 61 else b"=%02X" % b for b in range(256)]
_QP[9], _QP[32] = b"\t", b" "
_QP_AT_LINE_END = {b"\t": b"=09", b" ": b"=20"}
# A value that is its own quoted-printable form: no "=", no byte outside printable ASCII, and
# no space at the end.
_PLAIN_VALUE = re.compile(rb"(?:[ !-<>-~]*[!-<>-~])?")


@dataclass(frozen=True, slots=True)
class _Segment:
    """Quoted-printable bytes of the text between two markers, encoded from column 0."""

    data: bytes
    first: int  # length of its first line
    last: int  # length of its last line
    multiline: bool

    @classmethod
    def encode(cls, text: str, *, ends_line: bool) -> _Segment:
        """``ends_line``: a line break or the end of the part may follow the text (when the
        values after it are empty), so a space or tab at its end must be encoded."""
        lines = text.split("\n")
        encoded = []
        for number, line in enumerate(lines):
            at_end = ends_line or number < len(lines) - 1
            encoded.append(_wrap(_qp_tokens(line.encode(), at_end), 0)[0])
        data = b"\r\n".join(encoded)
        first_end, last_start = data.find(b"\r\n"), data.rfind(b"\r\n")
        if first_end < 0:
            return cls(data, len(data), len(data), multiline=False)
        return cls(data, first_end, len(data) - last_start - 2, multiline=True)


@dataclass(frozen=True, slots=True)
class _PartTemplate:
    """One body part as quoted-printable segments with a marker (or _END) after each."""

    segments: tuple[_Segment, ...]
    markers: tuple[int, ...]  # indices into MARKERS

    @classmethod
    def encode(cls, text: str) -> _PartTemplate:
        """A marker's value may be empty, so the text before it is encoded as if a line break
        or the end of the part could follow it."""
        pieces = _MARKER_SPLIT.split(text.replace("\r\n", "\n").replace("\r", "\n"))
        texts, found = pieces[0::2], [MARKER_INDEX[m] for m in pieces[1::2]]
        markers = (*found, _END)
        segments = []
        following = ""  # the first character after each text, "" at the end of the part
        for text_piece in reversed(texts):
            segments.append(_Segment.encode(text_piece, ends_line=following in ("", "\n")))
            following = text_piece[:1] or following
        return cls(tuple(reversed(segments)), markers)

    def fill(self, values: Sequence[bytes], out: list[bytes]) -> None:
        """Append the part's bytes with ``values`` (in MARKERS order) in place of the markers."""
        column = 0
        for segment, marker in zip(self.segments, self.markers, strict=True):
            if segment.data:
                if column + segment.first > _QP_WIDTH:
                    out.append(_SOFT_BREAK)
                    column = 0
                out.append(segment.data)
                column = segment.last if segment.multiline else column + segment.first
            if marker != _END:
                encoded, column = _encode_value(values[marker], column)
                out.append(encoded)


@dataclass(frozen=True, slots=True, repr=False)
class MimeBody:
    """The MIME headers and the two parts of a ``multipart/alternative`` body."""

    head: bytes  # MIME-Version, Content-Type, the blank line, the text part's head
    text: _PartTemplate
    between_parts: bytes
    html: _PartTemplate
    tail: bytes
    used: tuple[bool, ...]  # per marker in MARKERS: found in the text or the HTML

    @classmethod
    def encode(cls, text: str, html: str) -> MimeBody:
        boundary = "=_" + secrets.token_hex(16)  # "=_" never occurs in quoted-printable text
        head = (
            "MIME-Version: 1.0\r\n"
            f'Content-Type: multipart/alternative;\r\n boundary="{boundary}"\r\n'
            "\r\n" + _part_head(boundary, "text/plain")
        )
        return cls(
            head=head.encode("ascii"),
            text=_PartTemplate.encode(text),
            between_parts=("\r\n" + _part_head(boundary, "text/html")).encode("ascii"),
            html=_PartTemplate.encode(html),
            tail=f"\r\n--{boundary}--\r\n".encode("ascii"),
            used=tuple(marker in text or marker in html for marker in MARKERS),
        )

    def __repr__(self) -> str:  # not 50 KB of body
        return f"<MimeBody {len(self.text.segments)} + {len(self.html.segments)} segments>"

    def fill(
        self, text_values: Sequence[bytes], html_values: Sequence[bytes], out: list[bytes]
    ) -> None:
        """Append the body: the MIME headers, then both parts with the values (UTF-8, in
        MARKERS order; the HTML ones already escaped) in place of the markers."""
        out.append(self.head)
        self.text.fill(text_values, out)
        out.append(self.between_parts)
        self.html.fill(html_values, out)
        out.append(self.tail)


def _part_head(boundary: str, content_type: str) -> str:
    return (
        f"--{boundary}\r\n"
        f"Content-Type: {content_type}; charset=utf-8\r\n"
        "Content-Transfer-Encoding: quoted-printable\r\n"
        "\r\n"
    )


def _qp_tokens(data: bytes, at_line_end: bool) -> list[bytes]:
    encoded = [_QP[byte] for byte in data]
    if at_line_end and encoded and encoded[-1] in _QP_AT_LINE_END:
        encoded[-1] = _QP_AT_LINE_END[encoded[-1]]
    return encoded


def _wrap(encoded: list[bytes], column: int) -> tuple[bytes, int]:
    """Quoted-printable tokens from ``column`` on, with a soft line break before any token that
    would pass the width; the bytes and the column where they end."""
    out = []
    for token in encoded:
        if column + len(token) > _QP_WIDTH:
            out.append(_SOFT_BREAK)
            column = 0
        out.append(token)
        column += len(token)
    return b"".join(out), column


def _encode_value(value: bytes, column: int) -> tuple[bytes, int]:
    """A per-recipient value as quoted-printable from ``column`` (a line break in it is
    encoded, as =0A, so it stays one line)."""
    if not _PLAIN_VALUE.fullmatch(value):
        return _wrap(_qp_tokens(value, at_line_end=True), column)
    if column + len(value) <= _QP_WIDTH:
        return value, column + len(value)
    # Already its own encoding (a URL, an ASCII name): cut it into lines by slicing.
    room = _QP_WIDTH - column
    lines = [value[:room]]
    lines += [value[start : start + _QP_WIDTH] for start in range(room, len(value), _QP_WIDTH)]
    return _SOFT_BREAK.join(lines), len(lines[-1])
