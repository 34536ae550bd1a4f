"""The one address check (mail.addresses): what it stores, what it refuses and why, and that its
quick path for the usual address agrees with the full check."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from speakerfeed.config.delivery import DeliverySettings
from speakerfeed.errors import AddressError
from speakerfeed.mail.addresses import _plain, _validated, mailable_address, smtputf8_allowed
from speakerfeed.mail.headers import safe_address

# (what a reader typed, a phrase of the reason given): each refused by every entry point.
MESSY = [
    ("=?utf-8?q?ann?=@example.org", "encoded word"),
    ("=?iso-8859-1?q?caf=E9?=@example.org", "encoded word"),
    ("jöhn@example.org", "plain letters, digits"),
    ("café@example.org", "plain letters, digits"),
    ("ann\ufffd@example.org", "plain letters, digits"),  # raw latin-1 bytes, decoded as UTF-8
    ("a" * 65 + "@example.org", "too long before the @-sign"),
    ("ann@" + ".".join([c * 60 for c in "bcdef"]) + ".org", "too long"),
    ('"ann lee"@example.org', "Quoting the part before the @-sign"),
    ("ann@[192.0.2.1]", "bracketed IP address"),
    ("ann@printer.local", "special-use or reserved name"),
    ("ann@example", "should have a period"),
    ("ann..lee@example.org", "two periods in a row"),
    ("ann@example.org, bob@example.org", "invalid characters"),
    ("ann\u2028@example.org", "LINE SEPARATOR"),
    ("nobody", "must have an @-sign"),
    ("\u212aate@example.org", "plain letters, digits"),  # a Kelvin sign, which lower() makes "k"
]


@pytest.mark.parametrize(("typed", "stored"), [
    (" Ann@Example.ORG\n", "ann@example.org"),
    ("ann@bücher.example", "ann@xn--bcher-kva.example"),
    ("Ann@BÜCHER.Example", "ann@xn--bcher-kva.example"),
    ("ANN@XN--BCHER-KVA.EXAMPLE", "ann@xn--bcher-kva.example"),
    ("o'brien+news@mail.example.co.uk", "o'brien+news@mail.example.co.uk"),
    ("a" * 64 + "@example.org", "a" * 64 + "@example.org"),
])  # fmt: skip
def test_an_address_is_stored_as_it_is_sent(typed: str, stored: str) -> None:
    assert mailable_address(typed) == stored
    assert safe_address(stored, field="To") == stored  # the mailer takes it as it is


@pytest.mark.parametrize(("typed", "reason"), MESSY)
def test_what_the_mailer_cannot_send_is_refused_saying_why(typed: str, reason: str) -> None:
    with pytest.raises(AddressError) as caught:
        mailable_address(typed)
    assert reason in caught.value.reason
    assert "expected an email address such as name@example.org" in str(caught.value)
    assert caught.value.reason[0].isupper()


def test_a_non_ascii_local_part_needs_smtputf8_which_no_transport_offers() -> None:
    with pytest.raises(AddressError, match="'ö'"):
        mailable_address("Jöhn@Bücher.example")
    # The check itself can allow it, for a transport that one day sends SMTPUTF8 ...
    assert mailable_address("Jöhn@Bücher.example", smtputf8=True) == "jöhn@xn--bcher-kva.example"
    # ... but none does today, so every configured transport refuses it.
    for name in ("outbox", "smtp", "sendgrid", "memory"):
        assert smtputf8_allowed(DeliverySettings(transport=name)) is False


_ATEXT = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+/=?^_`{|}~-.é@[]\" "
_LABEL = st.text("abcdefghijklmnopqrstuvwxyz0123456789-_ü", min_size=1, max_size=70)


@given(
    local=st.text(_ATEXT, min_size=0, max_size=70),
    labels=st.lists(_LABEL, min_size=1, max_size=4),
    tld=st.sampled_from(["org", "com", "uk", "local", "test", "123", "xn--bcher-kva", "co.uk"]),
)
@example(local="a" * 64, labels=["example"], tld="org")
@example(local="=?utf-8?q?x?=", labels=["example"], tld="org")
@example(local="ann", labels=["xn--bcher-kva"], tld="example")
def test_the_quick_path_agrees_with_the_full_check(local: str, labels: list[str], tld: str) -> None:
    address = f"{local}@{'.'.join([*labels, tld])}"
    quick = _plain(address.lower())
    if quick is None:
        return  # the full check decides: nothing to compare
    assert _validated(address, smtputf8=False) == quick
