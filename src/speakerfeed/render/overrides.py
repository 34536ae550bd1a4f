"""The editor's template overrides ([build] templates_dir), tried before anyone sees them: every
override is compiled, every email and page it takes part in is rendered with sample data, and a
digest rendered with them goes through the pre-send lint. `speakerfeed check` reports what this
finds, each problem naming the override's file and line."""

from __future__ import annotations

import functools
import traceback
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2

from speakerfeed.config import ListSettings, Settings
from speakerfeed.errors import ConfigError, Problem
from speakerfeed.models import Article, Digest, Image
from speakerfeed.render.email import render_confirmation, render_digest
from speakerfeed.render.feed_pages import feed_page_version, render_feed_page
from speakerfeed.render.feeds import FeedDocument, FeedMeta
from speakerfeed.render.lint import lint_digest
from speakerfeed.render.pages import (
    FeedSetLink,
    base_context,
    render_blocks,
    render_feeds_index,
    render_page,
)
from speakerfeed.render.templates import override_names

__all__ = ["check_overrides"]

_ISSUED = datetime(2024, 3, 5, 7, 0, tzinfo=UTC)


def check_overrides(settings: Settings) -> list[Problem]:
    """What is wrong with the overrides in ``settings.templates_dir`` (none when it is unset):
    syntax errors, failures when rendered with sample data, and digest lint findings."""
    folder = settings.templates_dir
    if folder is None:
        return []
    key = "build.templates_dir"
    if not folder.is_dir():
        return [Problem(key, f"folder not found: {folder}")]
    names = override_names(folder)
    problems = [problem for name in names for problem in _compile(folder, name)]
    if problems:
        return problems  # rendering would only repeat the syntax errors
    if any(name.startswith("email/") for name in names):
        problems += _emails(settings, folder)
    if any(name.startswith("web/") for name in names):
        problems += [p for check in _pages(settings, folder) for p in _attempt(folder, check)]
    return problems


def _compile(folder: Path, name: str) -> list[Problem]:
    """Syntax only (filters and names are checked by rendering), so that an override no sample
    reaches is still checked."""
    if not name.endswith((".html", ".j2")):
        return []
    path = folder / name
    try:
        source = path.read_text(encoding="utf-8")
        jinja2.Environment(autoescape=True).parse(source, name, str(path))
    except UnicodeDecodeError as exc:
        return [Problem(str(path), f"not UTF-8 (byte {exc.start})")]
    except jinja2.TemplateSyntaxError as exc:
        return [Problem(str(path), f"template syntax: {exc.message}", exc.lineno)]
    return []


def _emails(settings: Settings, folder: Path) -> list[Problem]:
    list_settings = settings.lists[0] if settings.lists else _sample_list()
    sample = settings.model_copy(update={"lists": (list_settings,)})
    digest = Digest(
        id=f"{list_settings.name}-2024-03-05-0700",
        list_name=list_settings.name,
        list_title=list_settings.title,
        articles=_sample_articles(settings),
        issued=_ISSUED,
    )
    problems: list[Problem] = []
    rendered = []

    def digest_email() -> None:
        rendered.append(render_digest(sample, list_settings, digest, templates_dir=folder))

    def confirmation() -> None:
        url = f"{settings.app_url}/confirm/{list_settings.name}/sample-token"
        render_confirmation(sample, list_settings, url, templates_dir=folder)

    for check in (digest_email, confirmation):
        problems += _attempt(folder, check)
    for finding in lint_digest(sample, rendered[0]) if rendered else []:
        where = str(folder / "email")
        problems.append(
            Problem(where, f"digest lint: {finding}", warning=finding.severity == "warning")
        )
    return problems


def _pages(settings: Settings, folder: Path) -> Iterator[Callable[[], object]]:
    """One renderer per page, with a context like the one the web app passes."""
    lists = settings.lists or (_sample_list(),)
    first = lists[0]
    common = {**base_context(settings), "csrf_field": "csrf_token", "csrf_token": "0" * 32}
    link = f"{settings.app_url}/preferences/{first.name}/sample-token"
    contexts: dict[str, dict[str, Any]] = {
        "web/subscribe.html": {
            "title": "Subscribe",
            "lists": lists,
            "values": {"list": first.name, "email": "not-an-address"},
            "errors": {"email": "Enter an email address such as name@example.org."},
            "honeypot": "website",
        },
        "web/subscribe_sent.html": {
            "title": "Check your inbox",
            "list_title": first.title,
            "hours": settings.signup.confirm_link_hours,
        },
        "web/confirm.html": {
            "title": "Confirm your subscription",
            "list": first,
            "email": "ann@example.org",
            "status": "pending",
            "action": "/confirm/x",
            "preferences_url": link,
        },
        "web/unsubscribe.html": {
            "title": f"Unsubscribe from {first.title}",
            "list": first,
            "email": "ann@example.org",
            "left": False,
            "action": "/unsubscribe/x",
            "preferences_url": link,
        },
        "web/unsubscribe_help.html": {"title": "Unsubscribe", "manage_url": "/preferences/"},
        "web/preferences_help.html": {"title": "Manage your subscriptions"},
        "web/preferences.html": {
            "title": "Your preferences",
            "email": "ann@example.org",
            "values": {"name": "Ann", "timezone": "", "lists": {first.name}, "cadences": {}},
            "errors": {"timezone": "Choose a time zone from the list."},
            "saved": True,
            "lists": [(item, [("", "Every issue")]) for item in lists],
            "zone_groups": [
                ("This newsletter's time zone", ("Europe/London",)),
                ("Europe", ("Europe/Paris",)),
            ],
            "action": "/preferences/x",
        },
        "web/unsubscribe_new_link.html": {
            "title": "This link is not valid",
            "list_name": first.name,
            "values": {"email": "not-an-address"},
            "errors": {"email": "Enter an email address in the right form."},
            "action": "/unsubscribe/new-link",
            "sent": False,
        },
        "web/problem.html": {
            "title": "This link is not valid",
            "message": "Ask for a new one.",
            "subscribe_url": "/subscribe",
        },
        "web/digest_archive.html": {
            "lists": [{"name": first.name, "title": first.title, "issues": []}]
        },
    }
    for name, context in contexts.items():
        yield functools.partial(render_page, name, {**common, **context}, templates_dir=folder)
    yield functools.partial(render_feed_page, _sample_feed_page(settings, folder))
    # What a digest's web copy adds to the email's HTML (digest.archive.web_copy).
    yield functools.partial(
        render_blocks,
        "web/web_copy_header.html",
        base_context(settings, root="../../../"),
        templates_dir=folder,
    )
    yield lambda: render_feeds_index(
        settings,
        [FeedSetLink(settings.site.title, ""), FeedSetLink("News", "tags/news/")],
        templates_dir=folder,
    )


def _attempt(folder: Path, check: Callable[[], object]) -> list[Problem]:
    """The check's failure, located in the override that caused it when one did."""
    try:
        check()
    except ConfigError as exc:
        return exc.problems
    except Exception as exc:  # an editor's template can fail in any way: report, never crash
        path, line = _template_frame(exc, folder)
        message = f"{type(exc).__name__}: {exc}" if not isinstance(exc, ValueError) else str(exc)
        return [Problem(path, f"rendering with sample data failed: {message}", line)]
    return []


def _template_frame(exc: BaseException, folder: Path) -> tuple[str, int | None]:
    # Jinja2 rewrites tracebacks so a template's frames carry its file name and line.
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename.startswith(str(folder)):
            return frame.filename, frame.lineno
    return str(folder), None


def _sample_feed_page(settings: Settings, folder: Path) -> FeedDocument:
    """The page of the main RSS feed, holding the sample articles."""
    site = settings.site
    base = settings.feeds.base_url
    meta = FeedMeta(
        id=f"{base}rss.xml",
        title=site.title,
        description=site.description,
        home_url=site.url,
        language=site.language,
        author=site.author,
        site_title=site.title,
        timezone=site.timezone,
    )
    return FeedDocument(
        format="rss",
        path="rss.html",
        meta=meta,
        items=_sample_articles(settings),
        self_url=f"{base}rss.html",
        subscription_url=f"{base}rss.xml",
        page_version=feed_page_version(folder),
        templates_dir=folder,
    )


def _sample_list() -> ListSettings:
    return ListSettings(name="sample", title="Sample list", description="A sample list.")


def _sample_articles(settings: Settings) -> tuple[Article, ...]:
    """Three articles with what real ones have: an image, two authors, quotes and an ampersand,
    a long title, no summary."""
    site = settings.site
    shapes = [
        (
            "Students & teachers react to the “phone ban”",
            ("Amelia Hart",),
            True,
            "Pupils at three schools told us what they think.",
        ),
        (
            "Young voters turn out in record numbers across the country, and what it means",
            ("Sam Lee", "Priya Shah"),
            False,
            "Turnout among 18–24s rose for the first time.",
        ),
        ("What has caused the unrest?", (), False, ""),
    ]
    articles = []
    for number, (title, authors, with_image, summary) in enumerate(shapes):
        slug = f"sample-{number}"
        url = site.article_url(slug)
        image = (
            Image(f"{site.url}/media/{slug}.jpg", "Pupils queue outside a school")
            if (with_image)
            else None
        )
        articles.append(
            Article(
                id=f"tag:example.org,2024-03-04:{slug}",
                title=title,
                url=url,
                published=_ISSUED.replace(day=4, hour=18 - number),
                content_html=f"<p>{summary}</p>",
                summary=summary,
                source=f"sample/{slug}",
                slug=slug,
                authors=authors,
                tags=("news",),
                image=image,
            )
        )
    return tuple(articles)
