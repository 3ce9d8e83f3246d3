"""Held patterns match as ``regex`` does and keep the GIL; the PII recognizers use them."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
import regex

from services.pii_recognizers import build_registry
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


def _seconds(match_all: Callable[[], object]) -> float:
    start = time.perf_counter()
    match_all()
    return time.perf_counter() - start


def test_a_held_pattern_keeps_the_gil_while_a_plain_one_lets_it_go() -> None:
    source = r"\d{3}-\d{4}"
    plain, kept = regex.compile(source), held(source)
    with _busy_python_thread(0.2):
        # five calls: a plain pattern waits for the GIL after each (about 0.2 s a call)
        waited = _seconds(lambda: [list(plain.finditer(TEXT)) for _ in range(5)])
        kept_s = _seconds(lambda: [list(kept.finditer(TEXT)) for _ in range(5)])
    assert waited > 0.3  # the check can fail: the plain pattern does let go
    assert kept_s < waited / 3


def test_every_pattern_of_the_built_recognizers_is_held() -> None:
    registry = build_registry("en", frozenset(SUPPORTED_ENTITIES))
    patterns = [p for r in registry.recognizers for p in getattr(r, "patterns", None) or ()]
    assert patterns  # email, SSN, card, IP, IBAN
    for recognizer in registry.recognizers:
        for pattern in getattr(recognizer, "patterns", None) or ():
            assert isinstance(pattern.compiled_regex, HeldPattern), recognizer.name
            assert pattern.compiled_with_flags == recognizer.global_regex_flags
