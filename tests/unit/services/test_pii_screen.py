"""The screen that skips the analysis of texts no recognizer could match in: it must never skip
a text in which the full analysis finds something. The real recognizers (Presidio, spaCy's
model), no services."""

from __future__ import annotations

import pytest

from benchmarks.gateway_overhead import load_questions
from benchmarks.redaction_quality import load_set
from services import pii_screen
from services.pii_fold import fold
from services.pii_recognizers import _SECRET_PATTERNS, build_registry
from services.pii_regions import protected_regions
from services.pii_screen import ANCHORS, analysis_for
from services.presidio_redactor import PresidioRedactor
from services.redaction_profile import PERSON, SUPPORTED_ENTITIES, RedactionProfile

pytestmark = pytest.mark.unit

ALL = frozenset(SUPPORTED_ENTITIES)


def screened(text: str, entities: frozenset[str] = ALL) -> bool:
    """True when ``text`` goes to the analysis, as the redactor decides it."""
    read = fold(text).text
    return analysis_for(read, entities, protected_regions(read)) is not None


def texts() -> list[str]:
    """Every labelled snippet, each of its lines, and the benchmark's questions: thousands of
    texts with and without PII, many short like questions."""
    out: list[str] = []
    for snippet in load_set():
        out.append(snippet.text)
        out.extend(line for line in snippet.text.splitlines() if line.strip())
    out.extend(load_questions(1000))
    return sorted(set(out))


@pytest.mark.parametrize("profile", [RedactionProfile.STRICT, RedactionProfile.STRUCTURED])
def test_no_text_the_screen_skips_holds_a_finding(
    redactor: PresidioRedactor, monkeypatch: pytest.MonkeyPatch, profile: RedactionProfile
) -> None:
    corpus = texts()
    with monkeypatch.context() as unscreened:
        unscreened.setattr(pii_screen, "could_hold_value", lambda *_: True)
        full = redactor._find_many(corpus, profile)
    entities = redactor.entities(profile)
    skipped = [
        (t, spans) for t, spans in zip(corpus, full, strict=True) if not screened(t, entities)
    ]
    assert [(t, s) for t, s in skipped if s] == []
    # the screen does skip work: most texts without PII never reach the analysis
    assert len(skipped) > len(corpus) // 4
    assert redactor._find_many(corpus, profile) == full


@pytest.mark.parametrize(
    "text",
    [
        "write to dana\uff20acme-corp.example",  # fullwidth at sign, folded
        "call \u0664\u0661\u0665 tonight",  # Arabic-Indic digits, folded
        "what is fe80::1 used for",
        "set password: hunter-hunter-hunter",
        "the header reads bearer abcdefghijklmnopqrstuvwxyz",
        "the key ghp_abcdefghijklmnopqrstuvwxyzabcdefgh leaked",
        "AKIAABCDEFGHIJKLMNOP is an access key",
        "postgres://admin:hunter@db.internal/app",
        "-----BEGIN RSA PRIVATE KEY-----\nabc",
        "eyJhbGciOi.eyJzdWIiOi.signature",
        "ask Dana about the release",
    ],
)
def test_a_text_holding_an_anchor_is_analysed(text: str) -> None:
    assert screened(text)


@pytest.mark.parametrize(
    "text",
    [
        "How do I read a TOML file?",
        "What does functools.lru_cache do with typed arguments?",
        "which exceptions does json.loads raise",
        "Is asyncio.gather cancelled when one task fails?",
    ],
)
def test_a_question_with_nothing_to_find_is_skipped(text: str) -> None:
    assert not screened(text)


def test_a_name_alone_needs_the_person_type() -> None:
    assert screened("ask Dana about the release", frozenset({PERSON}))
    assert not screened("ask Dana about the release", ALL - {PERSON})


def test_a_type_the_screen_does_not_know_is_always_analysed() -> None:
    assert screened("nothing to see here", frozenset({"UK_NHS"}))


def test_every_recognizer_type_has_an_anchor() -> None:
    """A recognizer added to the registry must be given its anchor here (or it is screened as
    always matching, which costs speed, not safety: this test says to add it)."""
    registry = build_registry("en", ALL)
    types = {e for r in registry.recognizers for e in r.supported_entities}
    assert types - {PERSON} <= ANCHORS.keys()
    assert all(anchor for _, _, _, anchor in _SECRET_PATTERNS)
