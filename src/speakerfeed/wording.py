"""How messages count things: "1 article", "2 articles", "0 problems"."""

from __future__ import annotations


def counted(number: int, noun: str, plural: str = "") -> str:
    """``number`` and ``noun``, in the plural unless it is one (``plural`` when adding an "s"
    is wrong: "1 entry", "2 entries"); thousands separated, "12,345 readers"."""
    return f"{number:,} {noun if number == 1 else plural or noun + 's'}"
