"""A digest's subject line: the list's subject template, rendered in a sandbox.

The template is the editor's (config.toml's ``subject``), so it runs in a Jinja2 sandbox that
also refuses ``**`` and huge repetitions, and any failure is a ConfigError naming the setting.
"""

from __future__ import annotations

import functools
import operator
from typing import Any

import jinja2
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

from speakerfeed.config import ListSettings, Settings
from speakerfeed.errors import ConfigError, Problem
from speakerfeed.models import Digest
from speakerfeed.render.pages import long_date

__all__ = ["render_subject"]

_MAX_REPEAT = 1000  # the sandbox's cap on "x" * n


def render_subject(settings: Settings, list_settings: ListSettings, digest: Digest) -> str:
    """The list's subject template rendered in a sandbox, as one line of text."""
    where = _subject_key(settings, list_settings)
    try:
        template = _subject_environment().from_string(list_settings.subject)
        rendered = template.render(
            list=list_settings, articles=digest.articles, date=long_date(digest.issued)
        )
    except SecurityError as exc:
        raise ConfigError([Problem(where, f"not allowed in a subject template: {exc}")]) from None
    except jinja2.TemplateSyntaxError as exc:
        message = f"invalid template (line {exc.lineno}): {exc.message}"
        raise ConfigError([Problem(where, message)]) from None
    except Exception as exc:  # an editor's template can fail in any way; report it, never crash
        hint = " (this digest has no articles)" if not digest.articles else ""
        message = f"the subject template failed: {exc}{hint}"
        raise ConfigError([Problem(where, message)]) from None
    subject = " ".join(rendered.split())
    if not subject:
        raise ConfigError([Problem(where, "the subject template rendered an empty subject")])
    return subject


def _subject_key(settings: Settings, list_settings: ListSettings) -> str:
    for index, configured in enumerate(settings.lists):
        if configured.name == list_settings.name:
            return f"lists[{index}].subject"
    return f"lists[{list_settings.name!r}].subject"


class _SubjectSandbox(SandboxedEnvironment):
    """The sandbox for editors' subject templates: no attribute tricks (SandboxedEnvironment),
    and no ``**`` or huge ``"x" * n`` to eat the memory of the process."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(
        self, context: jinja2.runtime.Context, operator_name: str, left: Any, right: Any
    ) -> Any:
        if operator_name == "**":
            raise SecurityError("the ** operator is not allowed")
        sizes = [len(v) for v in (left, right) if isinstance(v, str | list | tuple)]
        counts = [v for v in (left, right) if isinstance(v, int)]
        if sizes and counts and sizes[0] * max(counts[0], 0) > _MAX_REPEAT:
            raise SecurityError(f"repetition longer than {_MAX_REPEAT} characters")
        return operator.mul(left, right)


@functools.cache
def _subject_environment() -> SandboxedEnvironment:
    return _SubjectSandbox(autoescape=False, undefined=jinja2.StrictUndefined)
