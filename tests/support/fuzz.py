"""How long the fuzz targets run: seconds in the test command, as long as you like by hand.

Every fuzz target takes ``@fuzzing()``. The test command runs 150 examples of each; set
``SPEAKERFEED_FUZZ_EXAMPLES`` for a longer run by hand, e.g.

    SPEAKERFEED_FUZZ_EXAMPLES=20000 PYTHONPATH=src .venv/bin/python -m pytest \
        --timeout=0 tests -k fuzz

A failure prints the smallest input Hypothesis found; it becomes a regression test (an
``@example`` on the target, or a test of its own) before it is fixed.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

DEFAULT_EXAMPLES = 150


def fuzz_examples(default: int = DEFAULT_EXAMPLES) -> int:
    raw = os.environ.get("SPEAKERFEED_FUZZ_EXAMPLES", "")
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"SPEAKERFEED_FUZZ_EXAMPLES: expected a whole number above 0, got {raw!r}")
    return int(raw)


def fuzzing(default: int = DEFAULT_EXAMPLES) -> settings:
    """Hypothesis settings for a fuzz target: no per-example deadline (a shared, busy machine)."""
    return settings(
        max_examples=fuzz_examples(default),
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
