"""The W3C Nu Html Checker (vnu.jar) as a test harness.

Load it as a pytest plugin (tests/conftest.py does) to get the session fixture ``nu``: a
``NuChecker`` whose ``check({"name.html": bytes, ...})`` validates many documents in one Java run
(starting the JVM costs about two seconds, so batch) and returns the messages by document name, and
whose ``assert_valid(documents, ignore=...)`` fails the test listing every error left after the
``ignore`` patterns (for markup we do not write ourselves, such as MJML's table scaffolding).

vnu.jar comes from the npm package ``vnu-jar`` (VNU_VERSION), installed by .ci/run into
.cache/vnu (gitignored); set VNU_JAR to use another copy. Java is /usr/bin/java or JAVA. When either
is missing the tests that use the fixture skip, saying why; under CI=true a skip is a failure
(tests/conftest.py), so CI always validates.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import pytest

VNU_VERSION = "26.9.27"
ROOT = Path(__file__).resolve().parents[2]
DEFAULT_JAR = ROOT / ".cache" / "vnu" / "node_modules" / "vnu-jar" / "build" / "dist" / "vnu.jar"
INSTALL_HINT = (
    f"npm install --prefix .cache/vnu --ignore-scripts --no-save vnu-jar@{VNU_VERSION} "
    "(what .ci/run does)"
)


@dataclass(frozen=True, slots=True)
class NuMessage:
    document: str  # the name it was checked under
    type: str  # "error", "info" (with subtype "warning") or "non-document-error"
    message: str
    line: int
    extract: str
    subtype: str = ""

    @property
    def is_error(self) -> bool:
        return self.type in ("error", "non-document-error")

    def __str__(self) -> str:
        kind = self.subtype or self.type
        return f"{self.document}:{self.line}: {kind}: {self.message}\n    {self.extract.strip()}"


class NuChecker:
    def __init__(self, java: str, jar: Path) -> None:
        self.java = java
        self.jar = jar

    def check(self, documents: Mapping[str, bytes | str]) -> dict[str, list[NuMessage]]:
        """Every message about every document, by the name it was given (a file name whose
        suffix, .html or .xhtml, tells the checker how to parse it)."""
        if not documents:
            return {}
        messages: dict[str, list[NuMessage]] = {name: [] for name in documents}
        with tempfile.TemporaryDirectory(prefix="nu-") as tmp:
            by_path: dict[str, str] = {}
            for index, (name, data) in enumerate(documents.items()):
                # A flat, numbered file per document: names may hold folders.
                suffix = Path(name).suffix or ".html"
                path = Path(tmp) / f"{index:04d}{suffix}"
                path.write_bytes(data.encode() if isinstance(data, str) else data)
                by_path[path.as_uri()] = name
                by_path[f"file:{path}"] = name
            command = [self.java, "-jar", str(self.jar), "--format", "json", "--stdout"]
            files = sorted(str(Path(tmp) / p) for p in os.listdir(tmp))
            result = subprocess.run(
                [*command, "--exit-zero-always", *files],
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            try:
                report = json.loads(result.stdout)
            except json.JSONDecodeError:
                pytest.fail(
                    f"vnu.jar gave no JSON report (exit {result.returncode}): "
                    f"{(result.stderr or result.stdout)[:2000]}"
                )
        for raw in report.get("messages", []):
            name = by_path.get(raw.get("url", ""), raw.get("url", "?"))
            messages.setdefault(name, []).append(
                NuMessage(
                    document=name,
                    type=raw.get("type", ""),
                    subtype=raw.get("subType", ""),
                    message=raw.get("message", ""),
                    line=int(raw.get("lastLine", 0)),
                    extract=raw.get("extract", ""),
                )
            )
        return messages

    def errors(
        self,
        documents: Mapping[str, bytes | str],
        *,
        ignore: Iterable[str | re.Pattern[str]] = (),
    ) -> list[NuMessage]:
        """The errors (not warnings or infos) whose message matches none of ``ignore``."""
        patterns = [re.compile(p) if isinstance(p, str) else p for p in ignore]
        return [
            message
            for found in self.check(documents).values()
            for message in found
            if message.is_error and not any(p.search(message.message) for p in patterns)
        ]

    def assert_valid(
        self,
        documents: Mapping[str, bytes | str],
        *,
        ignore: Iterable[str | re.Pattern[str]] = (),
    ) -> None:
        errors = self.errors(documents, ignore=ignore)
        if errors:
            listing = "\n".join(map(str, errors))
            pytest.fail(f"the Nu Html Checker found {len(errors)} errors:\n{listing}", False)


def _skip(reason: str) -> NoReturn:
    print(f"Nu Html Checker tests skipped: {reason}")
    pytest.skip(reason)


def find_checker() -> NuChecker | str:
    """The checker, or why there is none."""
    java = os.environ.get("JAVA") or shutil.which("java") or "/usr/bin/java"
    if not Path(java).exists():
        return f"java not found ({java}): install a Java runtime (Debian: default-jre-headless)"
    jar = Path(os.environ.get("VNU_JAR") or DEFAULT_JAR)
    if not jar.is_file():
        return f"{jar} not found: {INSTALL_HINT}"
    return NuChecker(java, jar)


@pytest.fixture(scope="session")
def nu() -> NuChecker:
    checker = find_checker()
    if isinstance(checker, str):
        _skip(checker)
    return checker
