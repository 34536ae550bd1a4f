"""An editor's note: a short Markdown file shown above the articles of a list's next digest.

``notes/<list>.md`` ([build] notes_dir) is read when the digest is prepared, rendered and
sanitised exactly like an article body (sources.markdown.render_markdown: the same allow-list,
relative links resolved against the site), and goes into the HTML, the text part and so the web
copy. A note may start with front matter; its one key is ``heading`` (default "From the
editor")::

    ---
    heading: A word before the holidays
    ---
    We publish **twice** next week. [Tell us](mailto:desk@example.org) what you think.

An empty or blank note is no note. A note that cannot be read (not UTF-8, bad front matter) is
left out with a warning naming the file and line: the digest is not held up by it.

The note is frozen when a send opens: it is rendered into the send's HTML and text, which the
ledger keeps, and its Markdown is kept with the send (sends.editor_note). A crash and resume
sends the same note; an edit after opening changes nothing of that send. Once the send is done
(``file_sent_note``) the note is moved to ``notes/sent/<send id>.md`` (the send id starts with
the list's name), so the next digest has none; if the editor changed the note while the send was
going out, the changed note stays for the next issue and the sent text is written to
``notes/sent/`` instead. A cancelled send leaves the note in place.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, replace
from pathlib import Path

from speakerfeed.config import Settings
from speakerfeed.errors import ArticleError, Problem
from speakerfeed.output import write_atomic
from speakerfeed.render.email import DigestNote
from speakerfeed.sources.markdown import render_markdown, split_front_matter

__all__ = [
    "DEFAULT_HEADING",
    "SENT_FOLDER",
    "EditorNote",
    "NoteReading",
    "file_sent_note",
    "note_path",
    "parse_note",
    "read_note",
]

log = logging.getLogger(__name__)

DEFAULT_HEADING = "From the editor"
SENT_FOLDER = "sent"
_KEYS = ("heading",)
_MAX_HEADING = 120


@dataclass(frozen=True, slots=True)
class EditorNote:
    path: Path
    source: str  # the file's text as read: kept with the send, compared when it is done
    view: DigestNote  # what the templates show


@dataclass(frozen=True, slots=True)
class NoteReading:
    """The list's note (None: no note, or one that could not be read) and, for the latter,
    the warning that says why it was left out."""

    note: EditorNote | None = None
    problem: Problem | None = None


def note_path(settings: Settings, list_name: str) -> Path:
    return settings.notes_dir / f"{list_name}.md"


def read_note(settings: Settings, list_name: str) -> NoteReading:
    """The list's note for its next digest, if there is one that can be read."""
    path = note_path(settings, list_name)
    shown = _shown(settings, path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return NoteReading()
    except OSError as exc:
        return NoteReading(problem=_skipped(Problem(shown, f"cannot be read: {exc.strerror}")))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        message = f"is not UTF-8 text (byte {exc.start + 1}): save it as UTF-8"
        return NoteReading(problem=_skipped(Problem(shown, message, line)))
    try:
        view = parse_note(text, shown, base_url=settings.site.url + "/")
    except ArticleError as exc:
        return NoteReading(problem=_skipped(exc.problem))
    return NoteReading(EditorNote(path, text, view) if view is not None else None)


def parse_note(text: str, where: str, *, base_url: str) -> DigestNote | None:
    """A note's text as a DigestNote, None when it says nothing; ArticleError (naming ``where``
    and the line) for front matter that is not valid."""
    heading = DEFAULT_HEADING
    body = text
    if text.lstrip("\ufeff").startswith("---"):
        data, raw, body = split_front_matter(text, where)
        for key, value in data.items():
            line = _line_of(raw, str(key))
            if key not in _KEYS:
                expected = ", ".join(_KEYS)
                raise ArticleError(
                    where, f"front matter: unknown key {key!r} (expected: {expected})", line
                )
            if not isinstance(value, str) or not value.strip() or len(value) > _MAX_HEADING:
                message = f"front matter 'heading': expected text of 1 to {_MAX_HEADING} characters"
                raise ArticleError(where, message, line)
            heading = " ".join(value.split())
    if not body.strip():
        return None
    html = render_markdown(body, base_url).strip()
    if not html:  # only what the allow-list removes, e.g. a <script>: nothing left to show
        return None
    return DigestNote(heading=heading, html=html)


def file_sent_note(settings: Settings, list_name: str, send_id: str, sent: str) -> Path | None:
    """After the send ``send_id`` is done: file its note (``sent``, the Markdown it opened with)
    as notes/sent/<send id>.md. The note file is moved there (one rename: atomic) when it still
    holds that text; changed since, it stays for the next digest and the sent text is written
    beside the others. Safe to call more than once. The path filed to, or None without a note."""
    if not sent:
        return None
    current = note_path(settings, list_name)
    target = settings.notes_dir / SENT_FOLDER / f"{send_id}.md"
    try:
        now = current.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        now = None
    target.parent.mkdir(parents=True, exist_ok=True)
    if now == sent:
        try:
            current.replace(target)
            return target
        except FileNotFoundError:  # another process that finished the send moved it first
            pass
    if not target.exists():
        write_atomic(target, sent.encode("utf-8"))
    if now is not None and now != sent:
        log.info(
            "%s: the note was changed during send %s: it stays for the next digest",
            current,
            send_id,
        )
    return target


def _line_of(raw: str, key: str) -> int | None:
    for number, line in enumerate(raw.splitlines(), start=2):  # +1 for the opening ---
        if line.startswith(f"{key}:"):
            return number
    return None


def _skipped(problem: Problem) -> Problem:
    return replace(
        problem,
        message=f"editor's note left out of the digest: {problem.message}",
        warning=True,
    )


def _shown(settings: Settings, path: Path) -> str:
    try:
        return os.path.relpath(path, settings.root.resolve())
    except ValueError:  # another drive (Windows)
        return str(path)
