"""Benchmark: one digest of 10 articles personalised into complete MIME messages for 1,000,000
synthetic subscribers.

The messages are made as the SMTP and outbox transports make them: the digest's MessageTemplate
gives a Batch per chunk of 1,000 subscribers (their signed links and headers), and the one MIME
encoder (speakerfeed.mail.mime.BatchTemplate, built per batch as a transport builds it) makes
each recipient's message. The subscribers are generated lazily and the messages streamed: each
is counted and dropped, so memory stays flat however many there are. Runs on one core (CPU 0)
where the OS allows it.

The digest is rendered by speakerfeed.render.email (Jinja2 -> MJML -> HTML) from 10 synthetic
articles, and its MJML compilations are counted over the whole run: one, however many subscribers.
``--renderer hand`` (or a renderer that fails) uses a hand-made digest of about 40 KB of HTML and
6 KB of text in the shape an MJML template produces instead: no MJML compilation at all.

Prints and writes to bench/results/personalise.json: messages per second, total bytes, MJML
compilations, peak RSS. Budget: >= 20,000 messages/s on one core, peak RSS <= 200 MB.

    python bench/personalise.py [--subscribers 1000000] [--renderer auto|hand]
"""

from __future__ import annotations

import argparse
import email.parser
import email.policy
import json
import os
import random
import resource
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import EmailMessage
from itertools import islice
from pathlib import Path
from typing import Any

from measure import SPEAKER_CONFIG
from speakerfeed.config import Settings, settings_from_mapping
from speakerfeed.digest.letter import MessageTemplate
from speakerfeed.mail.mime import BatchTemplate
from speakerfeed.mail.placeholders import ALL, NAME, PREFERENCES_URL, UNSUBSCRIBE_URL
from speakerfeed.mail.tokens import verify
from speakerfeed.models import Article, Digest, Image, RenderedDigest, Subscriber
from speakerfeed.render import email as email_renderer

HERE = Path(__file__).resolve().parent
BUDGET = {"messages_per_second": 20_000, "peak_rss_mb": 200.0}
SECRET = b"benchmark secret key, 32 bytes.."
CHUNK = 1_000  # subscribers per Batch: a send's batch size
# A name is "First Last"; a tenth of the subscribers have none. Many are not ASCII.
FIRST_NAMES = "Jane Amelia Tomás Zoë Ångström 李雷 Oluwaseun Siân Mohammed Priya Ólafur Дарья Chloé"
LAST_NAMES = "Hart Smith Núñez Jones Øvergaard 韩梅梅 Okafor Łukasz Brown Müller Patel O'Brien Ng"
TAGS = "politics economy world education environment culture sport science technology health"
TEXT = (
    "the government said on thursday that young people across the country would see changes to "
    "how schools colleges and universities are funded while critics argued the plans did not go "
    "far enough to address rising costs of living rent and transport for students"
)

CONFIG: dict[str, Any] = {
    **SPEAKER_CONFIG,
    "lists": [{"name": "daily", "title": "The Speaker Daily"}],
}

MSO_OPEN = (
    '<!--[if mso | IE]><table align="center" border="0" cellpadding="0" cellspacing="0" '
    'class="" style="width:600px;" width="600" ><tr><td style="line-height:0px;font-size:0px;'
    'mso-line-height-rule:exactly;"><![endif]-->'
)
MSO_CLOSE = "<!--[if mso | IE]></td></tr></table><![endif]-->"
COLUMN_OPEN = (
    '<!--[if mso | IE]><table role="presentation" border="0" cellpadding="0" cellspacing="0">'
    '<tr><td class="" style="vertical-align:top;width:600px;" ><![endif]-->'
    '<div class="mj-column-per-100 mj-outlook-group-fix" style="font-size:0px;text-align:left;'
    'direction:ltr;display:inline-block;vertical-align:top;width:100%;">'
)
COLUMN_CLOSE = "</div><!--[if mso | IE]></td></tr></table><![endif]-->"
HEAD_STYLE = (
    "<style>#outlook a{padding:0}body{margin:0;padding:0;-webkit-text-size-adjust:100%;"
    "-ms-text-size-adjust:100%}table,td{border-collapse:collapse;mso-table-lspace:0pt;"
    "mso-table-rspace:0pt}img{border:0;height:auto;line-height:100%;outline:none;"
    "text-decoration:none;-ms-interpolation-mode:bicubic}p{display:block;margin:13px 0}</style>"
    "<!--[if mso]><noscript><xml><o:OfficeDocumentSettings><o:AllowPNG/><o:PixelsPerInch>96"
    "</o:PixelsPerInch></o:OfficeDocumentSettings></xml></noscript><![endif]-->"
    "<!--[if lte mso 11]><style>.mj-outlook-group-fix{width:100% !important}</style><![endif]-->"
    "<style>@media only screen and (min-width:480px){.mj-column-per-100{width:100% !important;"
    "max-width:100%}.mj-column-per-50{width:50% !important;max-width:50%}}</style>"
    "<style>.moz-text-html .mj-column-per-100{width:100% !important;max-width:100%}</style>"
    "<style>@media only screen and (max-width:480px){table.mj-full-width-mobile{width:100% "
    "!important}td.mj-full-width-mobile{width:auto !important}}</style>"
    "<style>a{color:#0b3d91}a:hover{text-decoration:none}.footer a{color:#555555}"
    "h1,h2{font-family:Georgia,serif;font-weight:normal}"
    "@media (prefers-color-scheme:dark){body,.body{background:#111111 !important}"
    "td,p,h1,h2{color:#eeeeee !important}a{color:#8ab4f8 !important}}</style>"
)
CELL = (
    'style="padding:0 24px 16px 24px;font-family:Georgia,serif;font-size:16px;'
    'line-height:1.5;color:#1a1a1a;"'
)


def _sentence(rng: random.Random, words: int) -> str:
    vocabulary = TEXT.split()
    text = " ".join(rng.choice(vocabulary) for _ in range(words))
    return text[0].upper() + text[1:] + "."


def rendered_digest(seed: int = 7) -> RenderedDigest:
    """A 10-article digest as the email renderer would leave it: HTML and text with markers."""
    rng = random.Random(seed)
    digest = Digest(
        id="daily-2023-11-29-0700",
        list_name="daily",
        list_title="The Speaker Daily",
        articles=(),
        issued=datetime(2023, 11, 29, 7, tzinfo=UTC),
    )
    html = [
        '<!doctype html><html lang="en-GB" xmlns="http://www.w3.org/1999/xhtml"><head>'
        '<meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>The Speaker Daily</title>{HEAD_STYLE}</head>"
        '<body style="margin:0;padding:0;background:#f4f4f4;">',
        '<div style="display:none;max-height:0;overflow:hidden;">Today’s news in brief</div>',
        '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0">'
        f"<tr><td {CELL}><h1>The Speaker Daily</h1>"
        + " | ".join(
            f'<a href="https://www.speakernews.co.uk/tags/{tag}/" style="color:#0b3d91;'
            f'font-family:Helvetica,Arial,sans-serif;font-size:13px;">{tag.capitalize()}</a>'
            for tag in TAGS.split()
        )
        + f"<p>Hello{NAME},</p>"
        "<p>Here is today’s news from The Speaker.</p></td></tr>",
    ]
    text = [f"The Speaker Daily\n\nHello{NAME},\n\nHere is today’s news from The Speaker.\n"]
    titles = []
    for number in range(10):
        title = f"{_sentence(rng, 7)[:-1]} – “part {number}”"
        titles.append(title)
        url = f"https://www.speakernews.co.uk/2023/11/29/article-{number}-{rng.randint(1, 999)}/"
        summary = " ".join(_sentence(rng, rng.randint(12, 20)) for _ in range(5))
        html.append(
            f'{MSO_OPEN}<div style="margin:0 auto;max-width:600px;background:#ffffff;">'
            '<table align="center" border="0" cellpadding="0" cellspacing="0" role="presentation" '
            'style="width:100%;background:#ffffff;"><tbody><tr><td style="direction:ltr;'
            'font-size:0px;padding:20px 0;text-align:center;">'
            f'{COLUMN_OPEN}<table role="presentation" width="100%"><tr><td {CELL}>'
            f'<img src="https://www.speakernews.co.uk/media/{number}.jpg" width="552" '
            f'alt="{title}" style="width:100%;height:auto;border-radius:4px;"></td></tr>'
            f'<tr><td {CELL}><h2 style="font-size:22px;margin:16px 0 8px 0;"><a href="{url}" '
            f'style="color:#0b3d91;text-decoration:underline;">{title}</a></h2></td></tr>'
            f'<tr><td {CELL}><p style="margin:0 0 8px 0;color:#555555;font-size:14px;">'
            f"By Reporter {number} · Wednesday, 29 November 2023</p></td></tr>"
            f"<tr><td {CELL}><p>{summary}</p></td></tr>"
            f'<tr><td {CELL}><p style="margin:0;font-size:13px;color:#555555;">Filed under '
            + " · ".join(
                f'<a href="https://www.speakernews.co.uk/tags/{tag}/" style="color:#555555;'
                f'text-decoration:underline;">{tag.capitalize()}</a>'
                for tag in rng.sample(TAGS.split(), 3)
            )
            + f"</p></td></tr><tr><td {CELL}>"
            '<table role="presentation" cellpadding="0" cellspacing="0" border="0"><tr>'
            f'<td style="background:#0b3d91;border-radius:4px;padding:10px 18px;"><a href="{url}" '
            'style="color:#ffffff;font-weight:bold;text-decoration:none;">Read the article'
            f'<span style="position:absolute;left:-9999px;"> “{title}”</span></a></td></tr>'
            f"</table></td></tr></table>{COLUMN_CLOSE}</td></tr></tbody></table></div>"
            f"{MSO_CLOSE}\n"
        )
        text.append(f"\n{title}\nBy Reporter {number}\n{summary}\nRead it: {url}\n")
    html.append(
        f'<tr><td {CELL}><p style="font-size:13px;color:#555555;">You receive The Speaker Daily '
        "because you subscribed at speakernews.co.uk. The Speaker, 1 Fleet Street, London.</p>"
        f'<p style="font-size:13px;"><a href="{PREFERENCES_URL}" style="color:#0b3d91;">Your '
        f'preferences</a> · <a href="{UNSUBSCRIBE_URL}" style="color:#0b3d91;">Unsubscribe</a>'
        '</p><p><a href="https://www.speakernews.co.uk/digests/daily/daily-2023-11-29-0700/">'
        "View this email in your browser</a></p></td></tr></table></body></html>\n"
    )
    text.append(
        "\n--\nThe Speaker, 1 Fleet Street, London.\n"
        f"Your preferences: {PREFERENCES_URL}\nUnsubscribe: {UNSUBSCRIBE_URL}\n"
    )
    return RenderedDigest(
        digest=digest,
        subject=f"The Speaker Daily: {titles[0]}",
        preheader="Today’s news in brief",
        html="".join(html),
        text="".join(text),
        view_url="https://www.speakernews.co.uk/digests/daily/daily-2023-11-29-0700/",
    )


def articles(seed: int = 7) -> tuple[Article, ...]:
    """Ten articles for the real renderer, newest first, each with a picture and a summary."""
    rng = random.Random(seed)
    chosen = []
    for number in range(10):
        published = datetime(2023, 11, 29, 6, 50 - number * 5, tzinfo=UTC)
        slug = f"article-{number}"
        chosen.append(
            Article(
                id=f"tag:www.speakernews.co.uk,2023-11-29:{slug}",
                title=f"{_sentence(rng, 7)[:-1]} – “part {number}”",
                url=f"https://www.speakernews.co.uk/{slug}/",
                published=published,
                content_html="<p>Body.</p>",
                summary=" ".join(_sentence(rng, rng.randint(12, 20)) for _ in range(4)),
                source=f"articles/{slug}.md",
                slug=slug,
                authors=(f"Reporter {number}",),
                tags=tuple(rng.sample(TAGS.split(), 2)),
                image=Image(f"https://www.speakernews.co.uk/media/{number}.jpg", "A photograph"),
            )
        )
    return tuple(chosen)


def real_digest(settings: Settings) -> RenderedDigest:
    chosen = articles()
    digest = Digest(
        "daily-2023-11-29-0700", "daily", "The Speaker Daily", chosen, chosen[0].published
    )
    return email_renderer.render_digest(settings, settings.lists[0], digest)


def subscribers(count: int, seed: int = 11) -> Iterator[Subscriber]:
    """Lazily: ids, addresses, and names (a tenth empty, many not ASCII)."""
    rng = random.Random(seed)
    first, last = FIRST_NAMES.split(), LAST_NAMES.split()
    for number in range(count):
        name = "" if rng.random() < 0.1 else f"{rng.choice(first)} {rng.choice(last)}"
        yield Subscriber(id=f"s{number:08d}", email=f"reader{number}@example.net", name=name)


def messages(template: MessageTemplate, people: Iterator[Subscriber]) -> Iterator[bytes]:
    """Each subscriber's complete message, a Batch of CHUNK at a time, as a transport makes
    them."""
    while chunk := list(islice(people, CHUNK)):
        batch = template.batch(chunk)
        personalise = BatchTemplate.build(batch).personalise
        for recipient in batch.recipients:
            yield personalise(recipient)


def check_sample(template: MessageTemplate, settings: Settings) -> None:
    """The benchmark measures real messages: parse one back and check what it holds."""
    sample = Subscriber("sample-1", "sample@example.net", "Zoë Ångström")
    (message,) = messages(template, iter([sample]))
    parsed = email.parser.BytesParser(policy=email.policy.default).parsebytes(message)
    parts = [part for part in parsed.iter_parts() if isinstance(part, EmailMessage)]
    assert [part.get_content_type() for part in parts] == ["text/plain", "text/html"]
    for part in parts:
        content = part.get_content()
        assert "Zoë Ångström" in content
        assert not any(marker in content for marker in ALL)
    assert all(len(line) <= 76 for line in message.partition(b"\r\n\r\n")[2].split(b"\r\n"))
    link = str(parsed["List-Unsubscribe"]).split(">")[0].lstrip("<")
    assert link.startswith(settings.app_url)
    assert verify(SECRET, link.rsplit("/", 1)[1], "unsubscribe", list_name="daily") == "sample-1"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--subscribers", type=int, default=1_000_000)
    parser.add_argument("--renderer", choices=["auto", "hand"], default="auto")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})

    settings = settings_from_mapping(CONFIG, where="bench", root=HERE)
    compilations_before = email_renderer.mjml_compilations()
    renderer = "hand-made RenderedDigest (--renderer hand)"
    rendered = rendered_digest()
    if args.renderer == "auto":
        try:
            rendered = real_digest(settings)
            renderer = "speakerfeed.render.email.render_digest"
        except Exception as exc:  # a renderer still being written: say so, measure the rest
            renderer = f"hand-made RenderedDigest (render_digest failed: {exc!r})"
    started = time.perf_counter()
    template = MessageTemplate.build(rendered, settings, settings.lists[0], SECRET)
    BatchTemplate.build(template.batch([]))  # the shared parts' encoding, once per batch
    build_ms = (time.perf_counter() - started) * 1000
    check_sample(template, settings)

    total = 0
    count = 0
    started = time.perf_counter()
    for message in messages(template, subscribers(args.subscribers)):
        total += len(message)
        count += 1
    seconds = time.perf_counter() - started

    rate = count / seconds
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    results = {
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "cores_used": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "renderer": renderer,
        "mjml_compilations": email_renderer.mjml_compilations() - compilations_before,
        "html_bytes": len(rendered.html.encode()),
        "text_bytes": len(rendered.text.encode()),
        "template_build_ms": round(build_ms, 1),
        "subscribers": count,
        "seconds": round(seconds, 2),
        "messages_per_second": round(rate),
        "microseconds_per_message": round(1e6 / rate, 2),
        "total_bytes": total,
        "average_message_bytes": round(total / count),
        "peak_rss_mb": round(peak_rss_mb, 1),
        "budget": BUDGET,
        "within_budget": rate >= BUDGET["messages_per_second"]
        and peak_rss_mb <= BUDGET["peak_rss_mb"],
    }
    out = HERE / "results" / "personalise.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    for key, value in results.items():
        print(f"{key:28} {value}")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
