"""Where the templates are: the one place ``render.pages`` and ``render.email`` look them up.

The shipped templates are the repository's top-level ``templates/`` folder. The wheel carries a
copy inside the package (``speakerfeed/templates``, see ``[tool.hatch.build]`` in pyproject.toml);
an editable install or a checkout has none there and uses the repository's folder, so an edit to
``templates/`` shows at once. An editor's override folder (``[build] templates_dir``) comes
first: a file there replaces the shipped file of the same name under the same sub-path
(``email/digest.mjml.j2``, ``web/base.html``); every other template is still the shipped one.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import jinja2

__all__ = ["SHIPPED_TEMPLATES_DIR", "loader", "override_names", "search_path"]

_PACKAGE = Path(__file__).resolve().parents[1]  # src/speakerfeed or site-packages/speakerfeed


def _shipped() -> Path:
    installed = _PACKAGE / "templates"
    if installed.is_dir():
        return installed
    # A checkout (editable install): src/speakerfeed -> the repository root is two folders up.
    return _PACKAGE.parents[1] / "templates"


SHIPPED_TEMPLATES_DIR = _shipped()


def search_path(overrides: Path | None = None) -> tuple[Path, ...]:
    """The folders a template is looked up in, first match wins: the override folder (which must
    exist when given), then the shipped templates."""
    folders: list[Path] = []
    if overrides is not None:
        folder = overrides.resolve()
        if not folder.is_dir():
            raise FileNotFoundError(
                f"templates folder not found: {folder} (build.templates_dir: a folder of "
                "template overrides, by file name, such as email/digest.mjml.j2)"
            )
        folders.append(folder)
    shipped = SHIPPED_TEMPLATES_DIR.resolve()
    if not shipped.is_dir():
        raise FileNotFoundError(
            f"the shipped templates are missing: {shipped} (reinstall speakerfeed, or from a "
            "checkout `pip install -e .`)"
        )
    if shipped not in folders:
        folders.append(shipped)
    return tuple(folders)


def loader(folders: Sequence[Path]) -> jinja2.BaseLoader:
    """A Jinja2 loader over ``folders`` in order: the first that has a name serves it, so an
    override may extend or include shipped templates it does not replace."""
    return jinja2.FileSystemLoader([str(folder) for folder in folders])


def override_names(folder: Path) -> list[str]:
    """The template names an override folder replaces ("email/digest.mjml.j2"), sorted; dot files
    (an editor's swap files) are not templates."""
    return sorted(
        path.relative_to(folder).as_posix()
        for path in folder.rglob("*")
        if path.is_file()
        and not any(part.startswith(".") for part in path.relative_to(folder).parts)
    )
