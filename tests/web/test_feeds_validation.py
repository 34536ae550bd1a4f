"""Validators over what we publish: the W3C Nu Html Checker over our pages (tests.support.nu)."""

from __future__ import annotations

from tests.support.nu import NuChecker

VALID = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Fine</title></head>
<body><p><time datetime="2026-03-01T09:30:00+00:00">1 March</time></p></body></html>
"""


def test_the_checker_reports_errors_in_our_markup_and_nothing_in_valid_markup(
    nu: NuChecker,
) -> None:
    broken = VALID.replace("09:30:00+00:00", "09:30:00.123456+00:00").replace(
        "<p>", "<p><div>unclosed</p>"
    )
    errors = nu.errors({"valid.html": VALID, "pages/broken.html": broken})
    assert {e.document for e in errors} == {"pages/broken.html"}
    texts = " ".join(e.message for e in errors)
    assert "fraction of a second" in texts
    assert nu.errors({"broken.html": broken}, ignore=[r".*"]) == []
    nu.assert_valid({"valid.html": VALID})
