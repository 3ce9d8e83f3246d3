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


EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)*\.[a-z]{2,}\b")


class CountingEmailRedactor:
    """Finds an e-mail address only once it is complete, as a pattern recognizer does."""

    def __init__(self) -> None:
        self.calls = 0

    def find(self, text: str) -> list[EntitySpan]:
        self.calls += 1
        return [EntitySpan(m.start(), m.end(), "EMAIL_ADDRESS") for m in EMAIL.finditer(text)]

    def redact(self, text: str) -> Redaction:
        return apply_spans(text, self.find(text))


def test_a_long_value_streamed_in_small_tokens_never_lets_its_start_out() -> None:
    email = "jonathan.whitfield.procurement-liaison@northbridge-industrial-holdings-group.co.uk"
    before = "Thanks for asking. The address on file, as confirmed last spring, is "
    text = before + email + " and it was checked in the annual review. " * 3
    for size in (1, 3, 4, 8):
        stream = StreamRedactor(CountingEmailRedactor(), Counter(), window_chars=64)
        emitted = ""
        for i in range(0, len(text), size):
            emitted += stream.feed(text[i : i + size])
            assert "jonathan" not in emitted, (size, emitted[-40:])
        assert emitted, "text before the value still flows"
        emitted += stream.flush()
        assert "jonathan" not in emitted and "<EMAIL_ADDRESS>" in emitted


def test_text_ending_inside_a_run_of_non_whitespace_is_held() -> None:
    stream = StreamRedactor(CountingEmailRedactor(), Counter(), window_chars=16)
    out = stream.feed("word " * 40 + "x" * 150)  # a run longer than the window, no @ yet
    assert out and out.endswith(" ") and "x" not in out


def test_the_analyzer_runs_once_per_half_window_not_once_per_token() -> None:
    redactor = CountingEmailRedactor()
    stream = StreamRedactor(redactor, Counter(), window_chars=64)
    text = "A sentence of an answer that goes on for a while. " * 40  # 2,040 characters
    out = [stream.feed(text[i : i + 3]) for i in range(0, len(text), 3)]  # 680 tokens
    out.append(stream.flush())
    assert "".join(out) == text
    assert redactor.calls <= len(text) // 64 + 2  # 33 runs, not 680
