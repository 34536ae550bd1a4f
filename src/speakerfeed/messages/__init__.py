"""Email messages: a rendered digest becomes one complete MIME message per subscriber, as bytes.

``MessageTemplate.build`` encodes what every subscriber shares once; ``personalise`` fills in a
subscriber's name and signed links (``tokens``), with every header value checked or cleaned
(``headers``) on the way.
"""

from speakerfeed.messages.headers import HeaderError, safe_address, safe_header_value
from speakerfeed.messages.mime import MessageError, MessageTemplate
from speakerfeed.messages.tokens import PURPOSES, sign, verify

__all__ = [
    "PURPOSES",
    "HeaderError",
    "MessageError",
    "MessageTemplate",
    "safe_address",
    "safe_header_value",
    "sign",
    "verify",
]
