"""Reading config.toml: where it is, parsing it, and every problem reported at once, each naming
its key path and what was expected (unknown keys with a "did you mean" hint)."""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from speakerfeed.config.settings import Settings
from speakerfeed.errors import ConfigError, Problem

DEFAULT_CONFIG_PATH = Path("config.toml")
CONFIG_PATH_ENV = "SPEAKERFEED_CONFIG"


def config_path(environ: Mapping[str, str] | None = None, explicit: str | None = None) -> Path:
    env = os.environ if environ is None else environ
    return Path(explicit or env.get(CONFIG_PATH_ENV) or DEFAULT_CONFIG_PATH)


def load_settings(path: Path) -> Settings:
    """Read and validate config.toml, raising ConfigError with every problem found."""
    where = str(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError([Problem(where, "file not found")]) from None
    except OSError as exc:
        raise ConfigError([Problem(where, f"cannot read: {exc.strerror}")]) from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError([Problem(where, f"not UTF-8 (byte {exc.start})")]) from None
    except tomllib.TOMLDecodeError as exc:
        line = _toml_error_line(str(exc))
        raise ConfigError([Problem(where, f"invalid TOML: {exc}", line)]) from None
    return settings_from_mapping(data, where=where, root=path.parent)


def settings_from_mapping(data: dict[str, Any], *, where: str, root: Path) -> Settings:
    try:
        return Settings.model_validate({**data, "root": root})
    except ValidationError as exc:
        problems = [_describe(error, where) for error in exc.errors()]
        raise ConfigError(problems) from None


def _describe(error: Any, where: str) -> Problem:
    loc = tuple(error["loc"])
    key = _key_path(loc)
    kind = error["type"]
    if kind == "extra_forbidden":
        known = _known_keys(loc[:-1])
        hint = difflib.get_close_matches(str(loc[-1]), known, n=1)
        message = f"unknown key {key!r}"
        message += f"; did you mean {hint[0]!r}?" if hint else ""
        message += f" (expected one of: {', '.join(known)})" if known else ""
        return Problem(where, message)
    if kind == "missing":
        return Problem(where, f"{key}: required key is missing")
    message = str(error["msg"]).removeprefix("Value error, ")
    got = error.get("input")
    suffix = f" (got {got!r})" if got is not None and not isinstance(got, dict | list) else ""
    return Problem(where, f"{key}: {_plain(message)}{suffix}" if key else _plain(message))


def _plain(message: str) -> str:
    # pydantic says "Input should be a valid integer"; a reader of config expects "expected ...".
    return message.replace("Input should be", "expected").replace("String should", "expected to")


def _key_path(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _known_keys(loc: tuple[Any, ...]) -> list[str]:
    model: type[BaseModel] = Settings
    for part in loc:
        if isinstance(part, int):
            continue
        annotation = model.model_fields[str(part)].annotation
        inner = getattr(annotation, "__args__", (annotation,))[0]
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            model = inner
        elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
        else:
            return []
    return [name for name, f in model.model_fields.items() if not f.exclude]


def _toml_error_line(message: str) -> int | None:
    # tomllib reports "... (at line 3, column 7)"
    marker = "at line "
    if marker not in message:
        return None
    digits = message.split(marker, 1)[1].split(",", 1)[0].rstrip(")")
    return int(digits) if digits.isdigit() else None
