"""The next digest of a list, rendered, linted and written out for an editor to look at.

Nothing is sent and nothing is recorded: a preview can be made as often as an editor likes. The
database is read for which articles earlier digests held.
"""

from __future__ import annotations

import email.parser
import email.policy
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

from sqlalchemy import Engine

from speakerfeed.config import ListSettings, Secrets, Settings
from speakerfeed.digest.letter import MessageTemplate
from speakerfeed.digest.note import EditorNote, NoteReading, read_note
from speakerfeed.digest.select import cadence_schedule, candidates, next_digest
from speakerfeed.errors import Problem
from speakerfeed.mail.mime import BatchTemplate
from speakerfeed.models import RenderedDigest, Subscriber
from speakerfeed.output import write_atomic
from speakerfeed.render.email import render_digest
from speakerfeed.render.lint import Finding, lint_digest
from speakerfeed.sources.read import read_articles
from speakerfeed.store import inclusions

SAMPLE_SUBSCRIBER = Subscriber(id="preview-sample", email="reader@example.org", name="Sam Reader")
# Links in a preview are never followed for real; without a configured key they are signed with
# this one, so a preview works on a machine that holds no secrets.
PREVIEW_KEY = b"speakerfeed preview: links in this message are not valid"


@dataclass(frozen=True, slots=True)
class Preview:
    rendered: RenderedDigest
    findings: list[Finding]
    message: bytes
    problems: list[Problem]  # articles that could not be read
    note: EditorNote | None = None  # the editor's note it shows, if any

    @property
    def blocked(self) -> bool:
        return any(finding.severity == "error" for finding in self.findings)


def prepare(
    engine: Engine,
    settings: Settings,
    list_settings: ListSettings,
    *,
    fetch_upstreams: bool = True,
    now: datetime | None = None,
    secrets: Secrets | None = None,
    cadence: str = "",
) -> Preview | None:
    """The next digest of the list's ``cadence`` ("": its own schedule) for the sample
    subscriber, or None when no article is due: none that the cadence's earlier digests, as
    ``engine``'s database records them, did not hold."""
    cadence_schedule(list_settings, cadence)  # refused before the articles are read
    articles, report = read_articles(settings, fetch_upstreams=fetch_upstreams)
    moment = now or datetime.now(UTC)
    due = [article.id for article in candidates(articles, list_settings, now=moment)]
    with engine.connect() as conn:
        held = inclusions.included(conn, list_settings.name, cadence, due)
    digest = next_digest(
        settings, list_settings, articles, included=held, now=moment, cadence=cadence
    )
    if digest is None:
        return None
    note = read_note(settings, list_settings.name)
    rendered = render_digest(
        settings, list_settings, digest, note=note.note.view if note.note else None
    )
    key = (secrets or Secrets.from_env()).secret_key.encode() or PREVIEW_KEY
    # Through the Batch and the MIME encoder that the SMTP and outbox transports use: the
    # preview is the message they would send.
    batch = MessageTemplate.build(rendered, settings, list_settings, key).batch([SAMPLE_SUBSCRIBER])
    return Preview(
        rendered=rendered,
        findings=[*_note_findings(note), *lint_digest(settings, rendered)],
        message=BatchTemplate.build(batch).personalise(batch.recipients[0]),
        problems=report.problems,
        note=note.note,
    )


def _note_findings(note: NoteReading) -> list[Finding]:
    """A note that could not be read, as a warning: it is left out, the digest goes."""
    if note.problem is None:
        return []
    problem = note.problem
    where = f"{problem.where}:{problem.line}" if problem.line is not None else problem.where
    return [Finding("warning", "editor-note", problem.message, where)]


def write_preview(preview: Preview, folder: Path) -> list[Path]:
    """The message as .eml, and its two parts, exactly as sent, as .html and .txt."""
    parsed = email.parser.BytesParser(policy=email.policy.default).parsebytes(preview.message)
    assert isinstance(parsed, EmailMessage)
    stem = folder / preview.rendered.digest.id
    files = {stem.with_suffix(".eml"): preview.message}
    for subtype, suffix in (("html", ".html"), ("plain", ".txt")):
        part = parsed.get_body(preferencelist=(subtype,))
        if part is not None:
            files[stem.with_suffix(suffix)] = part.get_content().encode("utf-8")
    for path, data in files.items():
        write_atomic(path, data)
    return list(files)
