"""Held patterns match as ``regex`` does and keep the GIL; the PII recognizers use them."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
import regex
from presidio_analyzer.predefined_recognizers import IbanRecognizer

from services.pii_recognizers import IBAN_START, GatedIbanRecognizer, build_registry
from services.redaction_profile import SUPPORTED_ENTITIES
from services.regex_held import HeldPattern, held

pytestmark = pytest.mark.unit

TEXT = "Mail jane.doe@example.com or call 555-0100; key=AKIA0123456789ABCDEF. " * 20


def _spans(found: object) -> object:
    return None if found is None else found.span()  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("source", "flags"),
    [(r"[\w.]+@[\w.]+", 0), (r"\d{3}-\d{4}", 0), (r"(?P<k>key)=(\w+)", regex.I), (r"Mail", 0)],
)
def test_a_held_pattern_finds_what_the_plain_pattern_finds(source: str, flags: int) -> None:
    plain, kept = regex.compile(source, flags), held(source, flags)
    assert [m.span() for m in kept.finditer(TEXT)] == [m.span() for m in plain.finditer(TEXT)]
    assert kept.findall(TEXT) == plain.findall(TEXT)
    assert kept.sub("<X>", TEXT) == plain.sub("<X>", TEXT)
    assert _spans(kept.search(TEXT)) == _spans(plain.search(TEXT))
    assert _spans(kept.match(TEXT)) == _spans(plain.match(TEXT))
    assert _spans(kept.fullmatch("555-0100")) == _spans(plain.fullmatch("555-0100"))
    assert [m.span() for m in kept.finditer(TEXT, timeout=1.0)] == [  # Presidio passes a timeout
        m.span() for m in plain.finditer(TEXT, timeout=1.0)
    ]


@contextmanager
def _busy_python_thread(switch_interval_s: float) -> Iterator[None]:
    """Another thread running Python, and a long switch interval: a thread that lets go of the
    GIL waits about that long to take it back."""
    stop = threading.Event()

    def spin() -> None:
        n = 0
        while not stop.is_set():
            n += 1

    before = sys.getswitchinterval()
    sys.setswitchinterval(switch_interval_s)
    spinner = threading.Thread(target=spin, daemon=True)
    spinner.start()
    try:
        yield
    finally:
        stop.set()
        spinner.join()
        sys.setswitchinterval(before)


SWITCH_INTERVAL_S = 0.2


def _seconds(match_all: Callable[[], object]) -> float:
    start = time.perf_counter()
    match_all()
    return time.perf_counter() - start


def _longest_of(call: Callable[[], object], *, calls: int = 50, for_s: float = 0.0) -> float:
    """The longest of ``calls`` runs (or of runs for ``for_s`` seconds, whichever is more),
    stopping at the first that waited a switch interval.

    Whether a thread that lets go of the GIL loses it is a race: the busy thread must be on a
    core at that moment. On a quiet machine it wins the first call; with both cores busy
    elsewhere it wins seldom (once in five calls in a CI run, never in 50 with four spinning
    processes here), so the let-go side is given seconds. The kept side must not run as long:
    past one switch interval without a let-go, the busy thread asks for the GIL and gets it."""
    longest, deadline = 0.0, time.perf_counter() + for_s
    done = 0
    while done < calls or time.perf_counter() < deadline:
        longest = max(longest, _seconds(call))
        done += 1
        if longest > SWITCH_INTERVAL_S * 0.75:
            break
    return longest


def test_a_held_pattern_keeps_the_gil_while_a_plain_one_lets_it_go() -> None:
    source = r"\d{3}-\d{4}"
    plain, kept = regex.compile(source), held(source)
    with _busy_python_thread(SWITCH_INTERVAL_S):
        waited = _longest_of(lambda: list(plain.finditer(TEXT)), for_s=5.0)
        kept_s = _longest_of(lambda: list(kept.finditer(TEXT)))
    assert waited > SWITCH_INTERVAL_S * 0.75  # the check can fail: the plain pattern lets go
    assert kept_s < SWITCH_INTERVAL_S / 4


def test_every_pattern_of_the_built_recognizers_is_held() -> None:
    registry = build_registry("en", frozenset(SUPPORTED_ENTITIES))
    patterns = [p for r in registry.recognizers for p in getattr(r, "patterns", None) or ()]
    # email, SSN, card, IP, IBAN; Presidio's IBAN matching reads the pattern's string, not
    # its compiled form, so the IBAN recognizer is gated instead (the tests below)
    assert patterns
    for recognizer in registry.recognizers:
        for pattern in getattr(recognizer, "patterns", None) or ():
            assert isinstance(pattern.compiled_regex, HeldPattern), recognizer.name
            assert pattern.compiled_with_flags == recognizer.global_regex_flags


def test_the_iban_gate_is_the_start_of_presidios_own_pattern() -> None:
    """If Presidio changes its IBAN pattern, the gate must be derived again from the new one."""
    (pattern,) = IbanRecognizer.PATTERNS
    assert pattern.regex.startswith(r"(?<![A-Z0-9])([A-Z]{2}[0-9]{2}(?:")
    assert pattern.regex.startswith(IBAN_START, len(r"(?<![A-Z0-9])("))
    assert not GatedIbanRecognizer().global_regex_flags & regex.IGNORECASE


@pytest.mark.parametrize(
    "text",
    [
        "Pay to DE89 3704 0044 0532 0130 00 by Friday.",
        "IBAN GB82WEST12345698765432, or FR1420041010050500013M02606.",
        "Not an IBAN: DE00 0000 0000 0000 0000 00 and AB12 short.",
        "How do I sort a list of dictionaries by a key?",
        "de89 3704 0044 0532 0130 00 in lower case",
    ],
)
def test_the_gated_iban_recognizer_finds_what_presidios_finds_in_capitals(text: str) -> None:
    def spans(recognizer: IbanRecognizer, read: str) -> list[tuple[int, int, float]]:
        return [(r.start, r.end, r.score) for r in recognizer.analyze(read, ["IBAN_CODE"])]

    assert spans(GatedIbanRecognizer(), text) == spans(IbanRecognizer(), text.upper())


def test_the_iban_gate_keeps_the_gil_on_a_text_without_one() -> None:
    gated, plain = GatedIbanRecognizer(), IbanRecognizer()
    # long enough that the busy thread takes the GIL before the match ends (it races a short one)
    question = "How do I read a file line by line in Python? " * 40
    with _busy_python_thread(SWITCH_INTERVAL_S):
        waited = _longest_of(lambda: plain.analyze(question, ["IBAN_CODE"]), for_s=5.0)
        kept_s = _longest_of(lambda: gated.analyze(question, ["IBAN_CODE"]))
    assert waited > SWITCH_INTERVAL_S * 0.75  # the check can fail: Presidio's matching lets go
    assert kept_s < SWITCH_INTERVAL_S / 4
