"""The settings reference, read off the models: the rows of the README's reference (checked
against it) and the commented config.toml that `speakerfeed init` writes. One walk of the models
feeds both, so neither can drift from what the loader accepts."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from speakerfeed.config.settings import Settings

_WIDTH = 100


@dataclass(frozen=True, slots=True)
class _Table:
    heading: str  # "[site]", "[[lists]]", "[delivery.smtp]"
    path: str  # "site", "lists", "delivery.smtp"
    array: bool
    fields: tuple[tuple[str, FieldInfo], ...]


def settings_reference() -> list[tuple[str, str, str]]:
    """(key path, default, help) for every setting: the README's reference is checked against it.
    A sub-table such as [delivery.smtp] is listed under its own heading."""
    return [
        (f"{table.heading} {name}", _default_text(f), f.description or "")
        for table in _tables()
        for name, f in table.fields
    ]


def commented_config(values: Mapping[str, Mapping[str, Any]], intro: str = "") -> str:
    """A config.toml holding every setting: each with its help as a comment, those in ``values``
    (by table path: {"site": {"title": ...}, "lists": {...}}) set, every other one commented
    out at its default. A table of ``[[...]]`` without values is commented out whole."""
    lines = [f"# {line}" if line else "#" for line in intro.splitlines()]
    for table in _tables():
        given = values.get(table.path, {})
        unknown = set(given) - {name for name, _ in table.fields}
        if unknown:
            raise KeyError(f"{table.path}: no such settings: {', '.join(sorted(unknown))}")
        off = "# " if table.array and not given else ""
        lines += ["", off + table.heading]
        for name, f in table.fields:
            lines += _comment(f.description or "")
            if name in given:
                lines.append(f"{off}{name} = {toml_value(given[name])}")
            elif f.is_required():
                lines.append(f"# {name} = (required)")
            else:
                lines.append(f"# {name} = {toml_value(f.get_default(call_default_factory=True))}")
    return "\n".join(lines).lstrip("\n") + "\n"


def toml_value(value: Any) -> str:
    """A TOML literal for a setting's value (strings, numbers, booleans, arrays, tables)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a TOML basic string
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    if isinstance(value, Mapping):
        if not value:
            return "{}"
        pairs = ", ".join(f"{json.dumps(str(k))} = {toml_value(v)}" for k, v in value.items())
        return "{ " + pairs + " }"
    raise TypeError(f"no TOML form for {value!r}")


def _comment(text: str) -> list[str]:
    return textwrap.wrap(text, _WIDTH, initial_indent="# ", subsequent_indent="# ") if text else []


def _default_text(f: FieldInfo) -> str:
    return "(required)" if f.is_required() else repr(f.get_default(call_default_factory=True))


def _tables() -> Iterator[_Table]:
    for section_name, section_field in Settings.model_fields.items():
        if section_field.exclude:
            continue
        annotation = section_field.annotation
        inner = getattr(annotation, "__args__", (annotation,))[0]
        model = inner if isinstance(inner, type) and issubclass(inner, BaseModel) else annotation
        assert isinstance(model, type)
        assert issubclass(model, BaseModel)
        array = inner is not annotation
        heading = f"[[{section_name}]]" if array else f"[{section_name}]"
        yield from _model_tables(model, heading, section_name, array)


def _model_tables(model: type[BaseModel], heading: str, path: str, array: bool) -> Iterator[_Table]:
    plain: list[tuple[str, FieldInfo]] = []
    nested: list[tuple[str, type[BaseModel]]] = []
    for name, f in model.model_fields.items():
        if isinstance(f.annotation, type) and issubclass(f.annotation, BaseModel):
            nested.append((name, f.annotation))
        else:
            plain.append((name, f))
    yield _Table(heading, path, array, tuple(plain))
    for name, sub_model in nested:
        yield from _model_tables(sub_model, f"[{path}.{name}]", f"{path}.{name}", False)
