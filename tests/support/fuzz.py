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
from hypothesis import strategies as st

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


@st.composite
def mutated(draw: st.DrawFn, bodies: st.SearchStrategy[bytes]) -> bytes:
    """A body with a few bytes overwritten, inserted or cut out: nearly valid, broken somewhere."""
    body = bytearray(draw(bodies))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(body)))
        action = draw(st.sampled_from(["flip", "insert", "cut"]))
        if action == "flip" and at < len(body):
            body[at] = draw(st.integers(0, 255))
        elif action == "insert":
            body[at:at] = draw(st.binary(min_size=1, max_size=8))
        else:
            del body[at : at + draw(st.integers(1, 8))]
    return bytes(body)
