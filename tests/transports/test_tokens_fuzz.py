"""Fuzz targets for the signed tokens in email links (speakerfeed.mail.tokens): a valid token
round-trips; any other string (random, mutated, cut short, padded, huge, non-ASCII) is refused
(``verify`` gives None, which the web pages show as a bad link), never another exception; and a
token made for one list, subscriber, purpose or key is never accepted for another.

Bounded in the test command (see tests/support/fuzz.py); SPEAKERFEED_FUZZ_EXAMPLES runs longer.
"""

from __future__ import annotations

from hypothesis import assume, example, given
from hypothesis import strategies as st

from speakerfeed.mail.tokens import MAX_TOKEN_CHARS, PURPOSES, Signer, sign, verify
from tests.support.fuzz import fuzzing

SECRET = b"s3cret-key-for-the-fuzz-targets!"
OTHER_SECRET = b"another-key-of-another-install!!"
NOW = 1_750_000_000
purposes = st.sampled_from(sorted(PURPOSES))
# Ids and list names as the project makes them (uuids, config names), and odd ones it might.
names = st.one_of(
    st.sampled_from(["daily", "weekly", "daily.", "daily-2", "é", "a b", "d\u202e"]),
    st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1),
)
subscriber_ids = st.one_of(
    st.uuids().map(str),
    st.text(st.characters(codec="utf-8"), min_size=1, max_size=40),
)
expiries = st.one_of(st.none(), st.integers(0, 2**40))
URLSAFE = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


@st.composite
def mutations(draw: st.DrawFn, token: str) -> str:
    """``token`` with a character changed, inserted or removed, cut short or padded."""
    chars = list(token)
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(chars)))
        action = draw(st.sampled_from(["change", "insert", "remove", "cut", "pad"]))
        char = draw(st.one_of(st.sampled_from(URLSAFE + ".=+/ %"), st.characters()))
        if action == "change" and at < len(chars):
            chars[at] = char
        elif action == "insert":
            chars.insert(at, char)
        elif action == "remove" and at < len(chars):
            del chars[at]
        elif action == "cut":
            del chars[at:]
        else:
            chars += "=" * draw(st.integers(1, 3))
    return "".join(chars)


@fuzzing()
@given(purposes, subscriber_ids, names, expiries)
def test_fuzz_a_valid_token_round_trips(
    purpose: str, subscriber_id: str, list_name: str, expires: int | None
) -> None:
    token = sign(SECRET, purpose, subscriber_id, list_name, expires)
    assert token.isascii() and token.isprintable() and " " not in token
    now = NOW if expires is None else expires - 1
    assert verify(SECRET, token, purpose, list_name=list_name, now=now) == subscriber_id
    if expires is not None:  # and not a second after
        assert verify(SECRET, token, purpose, list_name=list_name, now=expires) is None


@fuzzing()
@given(subscriber_ids, names)
def test_fuzz_the_signer_makes_the_tokens_sign_makes(subscriber_id: str, list_name: str) -> None:
    order = tuple(sorted(PURPOSES))
    made = Signer(SECRET, list_name, order).sign(subscriber_id)
    assert made == tuple(sign(SECRET, p, subscriber_id, list_name) for p in order)


@fuzzing()
@given(purposes, purposes, subscriber_ids, subscriber_ids, names, names, st.booleans())
def test_fuzz_a_token_is_never_accepted_for_another_list_purpose_or_key(
    purpose: str,
    other_purpose: str,
    subscriber_id: str,
    other_id: str,
    list_name: str,
    other_list: str,
    other_key: bool,
) -> None:
    token = sign(SECRET, purpose, subscriber_id, list_name)
    secret = OTHER_SECRET if other_key else SECRET
    found = verify(secret, token, other_purpose, list_name=other_list, now=NOW)
    if (other_purpose, other_list, secret) == (purpose, list_name, SECRET):
        assert found == subscriber_id
    else:
        assert found is None
    # Whoever the link was for, it never names another subscriber.
    assert found in (None, subscriber_id)
    assert verify(SECRET, token, purpose, list_name=list_name, now=NOW) != other_id or (
        other_id == subscriber_id
    )


@fuzzing()
@given(purposes, subscriber_ids, names, st.data())
@example("unsubscribe", "1", "daily", None)  # the token "Ljx.<mac>" and its edits
def test_fuzz_an_edited_token_is_refused(
    purpose: str, subscriber_id: str, list_name: str, data: st.DataObject | None
) -> None:
    token = sign(SECRET, purpose, subscriber_id, list_name)
    edits = [token[:-1], token + "=", token + "A", token[1:], token.replace(".", ""), token + "."]
    if data is not None:
        edits.append(data.draw(mutations(token)))
    for edited in edits:
        assume(edited != token)
        assert verify(SECRET, edited, purpose, list_name=list_name, now=NOW) is None, edited


@fuzzing()
@given(
    st.one_of(
        st.text(),
        st.text(URLSAFE + ".", max_size=80),
        st.text(URLSAFE + ".", min_size=MAX_TOKEN_CHARS - 2, max_size=MAX_TOKEN_CHARS + 2),
    ),
    purposes,
)
@example("", "confirm")
@example(".", "confirm")
@example("AA.AA", "confirm")
@example("LjE.", "confirm")
def test_fuzz_any_string_is_refused(token: str, purpose: str) -> None:
    assert verify(SECRET, token, purpose, list_name="daily", now=NOW) is None
