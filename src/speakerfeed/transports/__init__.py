"""Email transports: what moves rendered mail to readers (see ``base`` for the interface).

Kept light on purpose: the transports themselves are imported by name, or chosen from settings
by ``speakerfeed.transports.registry.transport_from_settings``, so that importing the interface
pulls in no SMTP, HTTP or provider package.
"""
