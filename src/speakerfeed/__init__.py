"""speakerfeed: feeds and email digests for The Speaker."""

__version__ = "0.1.0"
