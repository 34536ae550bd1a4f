"""The settings reference: (key path, default, help) for every setting, read off the models (the
README's reference is checked against it)."""

from __future__ import annotations

from pydantic import BaseModel

from speakerfeed.config.settings import Settings


def settings_reference() -> list[tuple[str, str, str]]:
    """(key path, default, help) for every setting: the README's reference is checked against it.
    A sub-table such as [delivery.smtp] is listed under its own heading."""
    rows: list[tuple[str, str, str]] = []
    for section_name, section_field in Settings.model_fields.items():
        if section_field.exclude:
            continue
        annotation = section_field.annotation
        inner = getattr(annotation, "__args__", (annotation,))[0]
        model = inner if isinstance(inner, type) and issubclass(inner, BaseModel) else annotation
        assert isinstance(model, type)
        assert issubclass(model, BaseModel)
        heading = f"[[{section_name}]]" if inner is not annotation else f"[{section_name}]"
        rows += _model_rows(model, heading, section_name)
    return rows


def _model_rows(model: type[BaseModel], heading: str, path: str) -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = []
    nested: list[tuple[str, type[BaseModel]]] = []
    for name, f in model.model_fields.items():
        if isinstance(f.annotation, type) and issubclass(f.annotation, BaseModel):
            nested.append((name, f.annotation))
            continue
        default = (
            "(required)" if f.is_required() else repr(f.get_default(call_default_factory=True))
        )
        rows.append((f"{heading} {name}", default, f.description or ""))
    for name, sub_model in nested:
        rows += _model_rows(sub_model, f"[{path}.{name}]", f"{path}.{name}")
    return rows
