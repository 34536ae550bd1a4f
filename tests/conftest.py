"""Shared test set-up.

Under CI=true a skipped test is a failure: a test that needs PostgreSQL or Chromium may skip on a
developer's machine (saying why), but CI must run everything.
"""

from __future__ import annotations

import os
from collections.abc import Generator

import pytest
from hypothesis import settings

# Property tests check behaviour, not speed (bench/ does that): no per-example deadline, which
# a loaded machine (CI on two cores) would turn into random failures.
settings.register_profile("speakerfeed", deadline=None)
settings.load_profile("speakerfeed")

IN_CI = os.environ.get("CI", "").lower() == "true"

# Fixtures shared across test modules: Chromium + axe-core, a static file server, the Nu checker.
pytest_plugins = ["tests.support.browser", "tests.support.databases", "tests.support.nu"]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, which counts as a failure: {reason}"
    return report
