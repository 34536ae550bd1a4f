"""Template overrides ([build] templates_dir) as an editor uses them, and what `check` says about
them and about where links in emails lead."""

from __future__ import annotations

import shutil
from email import message_from_bytes, policy
from pathlib import Path

import pytest

from speakerfeed.actions.project import create_project
from speakerfeed.actions.site import app_url_problems
from speakerfeed.render.templates import SHIPPED_TEMPLATES_DIR, override_names
from tests.support.cli import run_speakerfeed
from tests.support.project import project_settings


@pytest.fixture
def project(tmp_path: Path) -> Path:
    create_project(tmp_path / "site", title="The Gazette")
    return tmp_path / "site"


def _override(
    project: Path, name: str, edit: tuple[str, str] | None = None, text: str = ""
) -> Path:
    path = project / "templates" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if edit is not None:
        source = (SHIPPED_TEMPLATES_DIR / name).read_text(encoding="utf-8")
        assert edit[0] in source, f"{name} no longer holds {edit[0]!r}"
        text = source.replace(*edit)
    path.write_text(text, encoding="utf-8")
    return path


def _preview_text(project: Path) -> tuple[str, str]:
    preview = run_speakerfeed(project, "digest", "preview", "news", "--out", "preview")
    assert preview.returncode == 0, preview.stderr
    (eml,) = (project / "preview").glob("*.eml")
    message = message_from_bytes(eml.read_bytes(), policy=policy.default)
    html, text = message.get_body(("html",)), message.get_body(("plain",))
    assert html is not None
    assert text is not None
    return html.get_content(), text.get_content().replace("\r\n", "\n")


def test_an_override_replaces_one_template_and_the_rest_stay_shipped(project: Path) -> None:
    unsubscribe = "Unsubscribe: {{ unsubscribe_url }}"
    _override(project, "email/digest.txt.j2", (unsubscribe, "EDITOR'S CUT\n" + unsubscribe))
    _override(
        project, "web/base.html", ("</footer>", "<p>Printed on recycled pixels.</p></footer>")
    )
    checked = run_speakerfeed(project, "check", "--no-fetch")
    assert checked.returncode == 0, checked.stderr
    assert "config.toml: ok; articles: ok, " in checked.stdout

    html, text = _preview_text(project)
    assert "EDITOR'S CUT\nUnsubscribe: http://127.0.0.1:8080/unsubscribe/news/" in text
    assert "EDITOR'S CUT" not in html  # the HTML part is still the shipped template
    assert "Welcome to The Gazette" in html

    assert run_speakerfeed(project, "build", "--no-fetch").returncode == 0
    index = (project / "public" / "index.html").read_text(encoding="utf-8")
    assert "Printed on recycled pixels." in index  # feeds_index.html extends the override


def test_a_copy_of_every_shipped_template_checks_clean(project: Path) -> None:
    """Every sample context matches what the shipped templates need: an editor who copies them
    all gets no false alarm, and each was really rendered (see the next test for the proof)."""
    shutil.copytree(SHIPPED_TEMPLATES_DIR, project / "templates", dirs_exist_ok=True)
    assert override_names(project / "templates") == override_names(SHIPPED_TEMPLATES_DIR)
    checked = run_speakerfeed(project, "check", "--no-fetch")
    assert checked.returncode == 0, checked.stderr
    assert "config.toml: ok; articles: ok, " in checked.stdout


@pytest.mark.parametrize(
    "name",
    [
        name
        for name in override_names(SHIPPED_TEMPLATES_DIR)
        if name.startswith("web/") and name.endswith(".html")
    ],
)
def test_check_renders_each_page_override(project: Path, name: str) -> None:
    if name == "web/_forms.html":
        edit = ("{{ csrf_token }}", "{{ csrf_tokn }}")
    elif name == "web/_cta.html":
        edit = ("{{ signup_url }}", "{{ signup_urll }}")
    elif name == "web/_nav.html":
        edit = ("{{ link.label }}", "{{ link.label.no_such_value.deeper }}")
    elif name == "web/web_copy_header.html":
        edit = ("{% block header %}", "{% block header %}{{ no_such_value }}")
    else:
        source = (SHIPPED_TEMPLATES_DIR / name).read_text(encoding="utf-8")
        # base.html's own content block is replaced by every page: add to what it keeps.
        block = "</body>" if name == "web/base.html" else "{% block content %}"
        assert block in source
        edit = (block, block + "{{ no_such_value }}")
    path = _override(project, name, edit)
    checked = run_speakerfeed(project, "check", "--no-fetch")
    assert checked.returncode == 1
    assert f"{path}:" in checked.stderr
    assert "rendering with sample data failed" in checked.stderr
    assert "Traceback" not in checked.stderr


def test_a_broken_override_names_its_file_and_line(project: Path) -> None:
    path = _override(
        project,
        "email/digest.txt.j2",
        text="{{ list_title }}\n\n{% for article in articles %}\n{{ article.title }\n{% endfor %}",
    )
    checked = run_speakerfeed(project, "check", "--no-fetch")
    assert checked.returncode == 1
    assert f"{path}:4: template syntax: unexpected '}}'" in checked.stderr
    assert "Traceback" not in checked.stderr

    path.write_text("{{ list_title }}\n{{ articles[0].headline }}\n", encoding="utf-8")
    checked = run_speakerfeed(project, "check", "--no-fetch")
    assert checked.returncode == 1
    assert f"{path}:2: rendering with sample data failed: UndefinedError" in checked.stderr
    assert "has no attribute 'headline'" in checked.stderr


def test_the_digest_lint_runs_on_email_overrides(project: Path) -> None:
    # An editor's banner: a remote image without alt text, a relative link, "click here".
    banner = (
        '<mj-section><mj-column><mj-text><img src="https://cdn.example.net/b.png">'
        '<a href="/offers">click here</a></mj-text></mj-column></mj-section>'
    )
    _override(
        project, "email/digest.mjml.j2", ("{% block content %}", "{% block content %}" + banner)
    )
    checked = run_speakerfeed(project, "check", "--no-fetch")
    assert checked.returncode == 1
    errors = [line for line in checked.stderr.splitlines() if "digest lint" in line]
    assert any("img-alt" in line for line in errors), checked.stderr
    assert any("absolute-url" in line and "/offers" in line for line in errors), checked.stderr
    assert any("link-name" in line for line in errors), checked.stderr
    assert all(line.startswith(str(project / "templates" / "email")) for line in errors)


def test_a_missing_templates_folder_is_reported(project: Path) -> None:
    shutil.rmtree(project / "templates")
    checked = run_speakerfeed(project, "check", "--no-fetch")
    assert checked.returncode == 1
    assert f"build.templates_dir: folder not found: {project / 'templates'}" in checked.stderr


# ------------------------------------------------------------------------------- app_url


def test_check_warns_when_mail_leaves_but_links_lead_to_this_machine(project: Path) -> None:
    config = project / "config.toml"
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace('# transport = "outbox"', 'transport = "smtp"'), "utf-8")
    checked = run_speakerfeed(project, "check", "--no-fetch")
    assert checked.returncode == 0  # a warning, not an error
    assert (
        "email.app_url: warning: links in emails lead to http://127.0.0.1:8080 (email.app_url "
        "is unset: where `serve` listens), not a public https URL, but delivery is smtp"
    ) in checked.stderr
    assert "config.toml: 0 errors, 1 warning; articles: ok, " in checked.stdout

    config.write_text(
        text.replace('# transport = "outbox"', 'transport = "smtp"').replace(
            '# app_url = ""', 'app_url = "https://news.example.org/app"'
        ),
        "utf-8",
    )
    checked = run_speakerfeed(project, "check", "--no-fetch")
    assert "app_url" not in checked.stderr
    assert "config.toml: ok; articles: ok, " in checked.stdout


@pytest.mark.parametrize(
    ("transport", "app_url", "warned"),
    [
        ("outbox", "", False),  # the emails stay on this machine
        ("sendgrid", "", True),
        ("sendgrid", "http://news.example.org", True),  # not https
        ("sendgrid", "https://localhost:8443", True),
        ("smtp", "https://10.0.0.7", True),
        ("smtp", "https://intranet", True),
        ("smtp", "https://speakerfeed.internal", True),
        ("smtp", "https://news.example.org", False),
        ("sendgrid", "https://[2001:4860:4860::8888]", False),
    ],
)
def test_which_app_urls_are_public(transport: str, app_url: str, warned: bool) -> None:
    settings = project_settings(email={"app_url": app_url}, delivery={"transport": transport})
    assert bool(app_url_problems(settings)) is warned


@pytest.mark.parametrize(
    ("host", "port", "url"),
    [
        ("127.0.0.1", 8080, "http://127.0.0.1:8080"),
        ("0.0.0.0", 9000, "http://127.0.0.1:9000"),  # a wildcard: this machine
        ("::", 8080, "http://[::1]:8080"),
        ("::1", 8080, "http://[::1]:8080"),
        ("localhost", 80, "http://localhost:80"),
        ("192.0.2.10", 8080, "http://192.0.2.10:8080"),
    ],
)
def test_app_url_defaults_to_where_serve_listens(host: str, port: int, url: str) -> None:
    assert project_settings(server={"host": host, "port": port}).app_url == url
    chosen = project_settings(server={"host": host}, email={"app_url": "https://a.example.org/"})
    assert chosen.app_url == "https://a.example.org"
