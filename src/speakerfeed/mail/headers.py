"""Header safety and encoding, done here rather than by the email package.

Values in headers come from articles (the subject), config (names, list titles) and subscribers
(names, addresses). A line break in one would start a new header (a Bcc, say), and an encoded word
(``=?utf-8?q?=0A?=``) can smuggle a line break past a check and into a program that decodes and
re-encodes the header: Python 3.11.7's own email package does exactly that (CVE-2024-6923). So
every value is checked or cleaned before it reaches a header, and non-ASCII text is encoded here as
RFC 2047 encoded words (UTF-8, base64), each at most 75 characters, folded so that no line is
longer than 78.
"""

from __future__ import annotations

import binascii
import re

from speakerfeed.errors import HeaderError

MAX_LINE = 78  # RFC 5322 2.1.1: a line SHOULD be at most 78 characters (998 is the hard limit)
MAX_ADDRESS = 254  # RFC 5321 4.5.3.1.3: the longest usable path

# Control characters (C0, DEL, C1: among them CR, LF, \x0b, \x0c, \x1c-\x1e, \x85), the Unicode
# line and paragraph separators, and lone surrogates (which cannot be encoded at all).
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
_ENCODED_WORD_START = "=?"
# RFC 5322 atext: a display name made only of these (and spaces) needs no quotes.
_ATOM_PHRASE = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~ -]+")
# A deliberately plain addr-spec: dot-atom local part, host name domain. No quoted local parts,
# no IP literals, no non-ASCII (that needs SMTPUTF8): none is worth the risk in a mailing list.
_LOCAL = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
_DOMAIN = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+"
_ADDRESS = re.compile(f"{_LOCAL}@{_DOMAIN}")

# An encoded word is "=?utf-8?b?" + base64 + "?=": 12 characters around the base64 text.
_WORD_PREFIX = "=?utf-8?b?"
_WORD_OVERHEAD = len(_WORD_PREFIX) + 2
_MAX_WORD = 75  # RFC 2047 2


def safe_header_value(value: str, *, field: str, clean: bool = False) -> str:
    """``value`` when it is safe in the header ``field``; otherwise HeaderError, or with
    ``clean`` (for display text such as a subject made from article titles) the value with every
    line break and control character turned into a space, runs of spaces collapsed, and each
    ``=?`` neutralised as ``= ?`` so that no reader decodes it as an encoded word."""
    if clean:
        return " ".join(_UNSAFE.sub(" ", value).split()).replace(_ENCODED_WORD_START, "= ?")
    found = _UNSAFE.search(value)
    if found:
        raise HeaderError(field, f"{_describe(found.group())} in {_shown(value)}")
    if _ENCODED_WORD_START in value:
        raise HeaderError(field, f"an encoded word (=?) in {_shown(value)}")
    return value


def safe_address(value: str, *, field: str) -> str:
    """``value`` when it is a plain addr-spec (local@host.example) that is safe in a header;
    anything else (a line break, an encoded word, a second address, a comment) is refused."""
    # The usual case, checked at once: the pattern admits printable ASCII only, so nothing
    # safe_header_value looks for but an encoded word's start can be in a match.
    if len(value) <= MAX_ADDRESS and _ADDRESS.fullmatch(value) and _ENCODED_WORD_START not in value:
        return value
    safe_header_value(value, field=field)
    if len(value) > MAX_ADDRESS or not _ADDRESS.fullmatch(value):
        raise HeaderError(field, f"not a usable email address: {_shown(value)}")
    return value


def unstructured(field: str, text: str) -> str:
    """The header line(s) ``field: text`` with CRLF line endings, for text already made safe:
    plain ASCII folded at spaces when it fits, encoded words otherwise."""
    prefix = f"{field}: "
    if text.isascii():
        folded = _fold_words(prefix, text.split(" "))
        if folded is not None:
            return folded + "\r\n"
    return prefix + "\r\n ".join(_encoded_words(text, MAX_LINE - len(prefix))) + "\r\n"


def address_header(field: str, display_name: str, address: str) -> str:
    """The header line(s) ``field: display name <address>`` with CRLF line endings, for a safe
    name and address: the name bare when it is atoms, quoted when ASCII with specials, encoded
    words when not ASCII or too long for one line."""
    if not display_name:
        return f"{field}: {address}\r\n"
    return _name_and_angle(f"{field}: ", display_name, address)


def quoted_string(text: str) -> str:
    """``text`` as an RFC 5322 quoted string: in double quotes, each backslash and double quote
    escaped with a backslash. The one quoting of display names and list titles."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _quoted_phrase(text: str) -> str:
    """An ASCII display name as an RFC 5322 phrase: bare atoms, or a quoted string."""
    if _ATOM_PHRASE.fullmatch(text) and " " not in (text[0], text[-1]):
        return text
    return quoted_string(text)


def _name_and_angle(prefix: str, name: str, angle_text: str) -> str:
    phrase = _quoted_phrase(name) if name.isascii() else None
    if phrase is not None and len(prefix) + len(phrase) <= MAX_LINE:
        lines = [prefix + phrase]
    else:
        words = _encoded_words(name, MAX_LINE - len(prefix))
        lines = [prefix + words[0], *(" " + word for word in words[1:])]
    angle = f"<{angle_text}>"
    if len(lines[-1]) + 1 + len(angle) <= MAX_LINE:
        lines[-1] += " " + angle
    else:
        lines.append(" " + angle)
    return "\r\n".join(lines) + "\r\n"


def _fold_words(prefix: str, words: list[str]) -> str | None:
    """Words joined by spaces on lines of at most MAX_LINE, or None when one does not fit."""
    lines = fold_lines(prefix, words)
    if any(len(line) > MAX_LINE for line in lines):
        return None
    return "\r\n".join(lines)


def fold_lines(prefix: str, words: list[str]) -> list[str]:
    """``prefix`` and the words joined by spaces, broken before a word that would take a line
    over MAX_LINE (a word longer than a line keeps a line of its own)."""
    lines = [prefix + words[0]]
    for word in words[1:]:
        # An empty word (two spaces) stays on its line: a folded line must not be all blank.
        if not word or len(lines[-1]) + 1 + len(word) <= MAX_LINE:
            lines[-1] += " " + word
        else:
            lines.append(" " + word)
    return lines


def _encoded_words(text: str, first_room: int) -> list[str]:
    """``text`` as base64 encoded words: the first at most ``first_room`` characters long, the
    others at most 75 (each goes on a folded line after one space). A word never splits a
    character's UTF-8 bytes (RFC 2047 5)."""
    words: list[str] = []
    room = min(first_room, _MAX_WORD)
    chunk = b""
    for char in text:
        data = char.encode()
        if chunk and _word_length(len(chunk) + len(data)) > room:
            words.append(_encoded_word(chunk))
            chunk = b""
            room = _MAX_WORD
        chunk += data
    words.append(_encoded_word(chunk))
    return words


def _word_length(octets: int) -> int:
    return _WORD_OVERHEAD + 4 * ((octets + 2) // 3)


def _encoded_word(data: bytes) -> str:
    return f"{_WORD_PREFIX}{binascii.b2a_base64(data, newline=False).decode()}?="


def _describe(char: str) -> str:
    kind = "a line break" if char in "\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029" else "a control"
    return f"{kind} character (U+{ord(char):04X})"


def _shown(value: str) -> str:
    # Values can come from anyone: quoted (so control characters show) and cut short, after
    # quoting: an escape such as \U0001f600 is ten characters of the message.
    shown = repr(value[:80])
    return shown if len(shown) <= 80 and len(value) <= 80 else shown[:77] + "..."
