"""`send`'s progress bar as an editor sees it in a terminal: counted in recipients, total and
position in the same unit, ending at 100 %. On SQLite and PostgreSQL."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from sqlalchemy import Engine

from tests.cli.test_send import SECRET, run
from tests.support.cli import run_speakerfeed_on_terminal

ROOT = Path(__file__).resolve().parents[2]
# Bar frames as click draws them: "sending to recipients  [####---]  12/25   48%".
FRAME = re.compile(r"sending to recipients\s+\[[#-]+\]\s+(\d+)/(\d+)\s+(\d+)%")


def _site(folder: Path, engine: Engine, readers: list[str]) -> Path:
    shutil.copytree(ROOT / "articles", folder / "articles")
    url = engine.url.render_as_string(hide_password=False).replace("+psycopg", "")
    config = (ROOT / "config.toml").read_text(encoding="utf-8")
    config += '\n[delivery]\ntransport = "outbox"\n\n[sending]\nbatch_size = 4\n'
    config += f'\n[store]\nurl = "{url}"\n'
    (folder / "config.toml").write_text(config, encoding="utf-8")
    # Messy but valid: mixed case, a plus address, a name with a comma; and one who leaves.
    rows = [f'{reader},"Reader {n}, Jr."' for n, reader in enumerate(readers)]
    (folder / "people.csv").write_text("email,name\n" + "\n".join(rows) + "\n")
    imported = run(folder, "subscribers", "import", "people.csv", "--list", "daily", "--confirmed")
    assert imported.returncode == 0, imported.stderr
    left = run(folder, "subscribers", "remove", readers[-1], "--list", "daily")
    assert left.returncode == 0, left.stderr
    return folder


def test_the_send_bar_counts_recipients_and_ends_at_100_percent(
    engine: Engine, tmp_path: Path
) -> None:
    readers = [f"Reader.{n}+news@Example.org" for n in range(26)]
    folder = _site(tmp_path, engine, readers)
    status, output = run_speakerfeed_on_terminal(
        folder, "send", "daily", "--no-fetch", secret=SECRET
    )
    assert status == 0, output
    assert "done (25 sent)" in output, output
    frames = [tuple(map(int, found)) for found in FRAME.findall(output)]
    assert frames, output
    for done, total, percent in frames:
        assert done <= total and percent <= 100, frames
        assert total == 25, frames  # recipients, the same unit as the position
    assert frames[-1] == (25, 25, 100), frames
    assert len(list((folder / "var" / "outbox").glob("*.eml"))) == 25


def test_without_a_terminal_there_is_no_bar(engine: Engine, tmp_path: Path) -> None:
    folder = _site(tmp_path, engine, ["ann@example.org", "bob@example.org"])
    sent = run(folder, "send", "daily", "--no-fetch")
    assert sent.returncode == 0, sent.stderr
    assert "sending to recipients" not in sent.stdout + sent.stderr
    assert "done (1 sent)" in sent.stdout
