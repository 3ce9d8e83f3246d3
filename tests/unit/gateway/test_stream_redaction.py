"""The sliding-window stream redactor: a stream stays a stream, and no PII value escapes."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from gateway.query.stream_redaction import StreamRedactor
from services.presidio_redactor import apply_spans
from services.records import EntitySpan, Redaction

pytestmark = pytest.mark.unit

PHONE = re.compile(r"\d{3}-\d{3}-\d{4}")


class PhoneRedactor:
    def find(self, text: str) -> list[EntitySpan]:
        return [EntitySpan(m.start(), m.end(), "PHONE_NUMBER") for m in PHONE.finditer(text)]

    def redact(self, text: str) -> Redaction:
        return apply_spans(text, self.find(text))


def run(pieces: list[str], window: int = 16) -> tuple[list[str], Counter[str]]:
    tally: Counter[str] = Counter()
    stream = StreamRedactor(PhoneRedactor(), tally, window_chars=window)
    out = [stream.feed(p) for p in pieces]
    out.append(stream.flush())
    return out, tally


def test_a_value_split_across_pieces_is_never_emitted() -> None:
    text = "Call the desk on 212-555-0143 or write, whichever comes first for you today."
    pieces = [text[i : i + 3] for i in range(0, len(text), 3)]
    out, tally = run(pieces)
    joined = "".join(out)
    assert "212" not in joined and "0143" not in joined
    assert (
        joined == "Call the desk on <PHONE_NUMBER> or write, whichever comes first for you today."
    )
    assert tally == {"PHONE_NUMBER": 1}
    for emitted in out:  # no fragment of the value in any single emission either
        assert not re.search(r"\d{3}", emitted)


def test_long_answers_are_released_before_the_end() -> None:
    words = [f"word{i} " for i in range(40)]
    out, _ = run(words)
    assert any(out[:-1]), "text must flow before the stream ends"
    assert "".join(out) == "".join(words)


def test_without_a_redactor_pieces_pass_straight_through() -> None:
    stream = StreamRedactor(None, Counter(), window_chars=64)
    assert stream.feed("212-555-0143") == "212-555-0143"
    assert stream.flush() == ""
