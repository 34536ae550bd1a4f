"""Markers for the values that differ per subscriber, left in a rendered digest and filled in per
message as bytes (see speakerfeed.mail.mime). Plain ASCII with no character that Jinja2, MJML,
HTML escaping, URL quoting or quoted-printable encoding would change, so each survives every step
unchanged and can be found again with a plain bytes search.
"""

NAME = "SFMARK0NAME0SFMARK"  # the subscriber's name, or nothing
UNSUBSCRIBE_URL = "SFMARK0UNSUBSCRIBE0SFMARK"  # https URL of the unsubscribe page, signed
PREFERENCES_URL = "SFMARK0PREFERENCES0SFMARK"  # https URL of the preferences page, signed

ALL = (NAME, UNSUBSCRIBE_URL, PREFERENCES_URL)
