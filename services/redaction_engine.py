"""From Presidio's raw findings to the spans Holdfast replaces.

For one text: the protected regions (code, identifiers, table headers, URLs, paths), Presidio's
recognizers (the registry of ``pii_recognizers``), then per type a rule and a threshold, the
second opinion on names, and one span per place (the more specific type wins an overlap).
spaCy runs once per batch of texts outside this class (``nlp.pipe``), with only the components
a profile needs: NER for names, nothing but the tokenizer otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from presidio_analyzer import AnalyzerEngine
from presidio_analyzer.nlp_engine import NlpArtifacts

from services.pii_person import Lexicons, PersonJudge
from services.pii_regions import (
    CODE,
    CONFIG_KEY,
    FUNCTION_CALL,
    IDENTIFIER,
    INLINE_CODE,
    PATH,
    TABLE_HEADER,
    URL,
    Region,
    protected_regions,
)
from services.pii_values import (
    is_documentation_email,
    is_non_personal_ip,
    is_test_card,
    phone_score,
    ssn_score,
    trim_phone,
)
from services.records import EntitySpan
from services.redaction_profile import (
    CREDIT_CARD,
    EMAIL_ADDRESS,
    IBAN_CODE,
    IP_ADDRESS,
    PERSON,
    PHONE_NUMBER,
    SECRET,
    US_SSN,
)

_ALL = frozenset(
    {CODE, INLINE_CODE, FUNCTION_CALL, IDENTIFIER, CONFIG_KEY, TABLE_HEADER, URL, PATH}
)
_STRUCTURE = frozenset({FUNCTION_CALL, IDENTIFIER, CONFIG_KEY, TABLE_HEADER, PATH})

#: Which protected regions a value of each type may not touch. Names and phone numbers are
#: never looked for in code; a value with a checkable shape (a key, a card, an address pasted in
#: a log line) is still found in a code block, but never in an identifier or a header.
BLOCKED_BY: dict[str, frozenset[str]] = {
    PERSON: _ALL,
    PHONE_NUMBER: _ALL,
    IP_ADDRESS: _STRUCTURE,
    EMAIL_ADDRESS: frozenset({FUNCTION_CALL, CONFIG_KEY, TABLE_HEADER}),
    US_SSN: _STRUCTURE | {URL},
    CREDIT_CARD: _STRUCTURE | {URL},
    IBAN_CODE: _STRUCTURE | {URL},
    SECRET: frozenset({CONFIG_KEY, TABLE_HEADER}),
}

#: The score a finding needs, after the rules below have rescored it.
THRESHOLDS: dict[str, float] = {
    EMAIL_ADDRESS: 0.5,
    PHONE_NUMBER: 0.5,
    US_SSN: 0.5,
    CREDIT_CARD: 0.5,
    IBAN_CODE: 0.5,
    IP_ADDRESS: 0.5,
    SECRET: 0.5,
}

#: Of two overlapping findings, the more specific type wins.
PRIORITY = {
    SECRET: 8,
    CREDIT_CARD: 7,
    IBAN_CODE: 6,
    US_SSN: 5,
    EMAIL_ADDRESS: 4,
    IP_ADDRESS: 3,
    PHONE_NUMBER: 2,
    PERSON: 1,
}


def _touches(start: int, end: int, regions: Sequence[Region], kinds: frozenset[str]) -> bool:
    return any(r.kind in kinds and r.start < end and start < r.end for r in regions)


def _score(entity: str, text: str, start: int, end: int, score: float) -> float:
    value = text[start:end]
    if entity == EMAIL_ADDRESS and is_documentation_email(value):
        return 0.0
    if entity == IP_ADDRESS and is_non_personal_ip(value, text, start, end):
        return 0.0
    if entity == CREDIT_CARD and is_test_card(value):
        return 0.0
    if entity == PHONE_NUMBER:
        return phone_score(value, text, start, end)
    if entity == US_SSN:
        return ssn_score(value, text, start, end, score)
    return score


def _trim(entity: str, text: str, start: int, end: int) -> tuple[int, int]:
    if entity == PHONE_NUMBER:
        return trim_phone(text, start, end)
    if entity == EMAIL_ADDRESS:  # "user=jane@corp.com" in a log line: the address only
        at = text.find("@", start, end)
        cut = max(text.rfind(c, start, at) for c in "=:;,<(\"'")
        if cut >= start:
            return cut + 1, end
    return start, end


def resolve(spans: Sequence[EntitySpan]) -> list[EntitySpan]:
    """One span per place: a name loses to any value with a shape; otherwise the longer span
    (an IBAN holds a card-like run of digits), then the more specific type, wins."""
    ranked = sorted(
        spans,
        key=lambda s: (
            s.entity_type == PERSON,
            -(s.end - s.start),
            -PRIORITY.get(s.entity_type, 0),
        ),
    )
    kept: list[EntitySpan] = []
    for span in ranked:
        if not any(k.start < span.end and span.start < k.end for k in kept):
            kept.append(span)
    return sorted(kept, key=lambda s: s.start)


class PiiEngine:
    """Presidio's analyzer with Holdfast's rules; ``spans`` takes a text and its spaCy output."""

    def __init__(self, analyzer: AnalyzerEngine, lexicons: Lexicons, language: str) -> None:
        self._analyzer = analyzer
        self._judge = PersonJudge(lexicons)
        self._language = language
        self._supported = frozenset(analyzer.get_supported_entities(language))

    def spans(
        self,
        text: str,
        artifacts: NlpArtifacts,
        entities: frozenset[str],
        regions: Sequence[Region] | None = None,
    ) -> list[EntitySpan]:
        """The spans to replace in ``text``; ``regions`` are its protected regions if known."""
        wanted = entities & self._supported
        if not wanted or not text.strip():
            return []
        regions = protected_regions(text) if regions is None else regions
        results: list[Any] = self._analyzer.analyze(
            text=text,
            language=self._language,
            entities=sorted(wanted),
            score_threshold=0.0,
            nlp_artifacts=artifacts,
        )
        found: list[EntitySpan] = []
        ner: list[tuple[int, int]] = []
        for r in results:
            entity = r.entity_type
            start, end = _trim(entity, text, r.start, r.end)
            if entity not in wanted or _touches(start, end, regions, BLOCKED_BY[entity]):
                continue
            if entity == PERSON:
                ner.append((start, end))
            elif _score(entity, text, start, end, r.score) >= THRESHOLDS.get(entity, 0.5):
                found.append(EntitySpan(start, end, entity))
        if PERSON in wanted:
            blocked = [r for r in regions if r.kind in BLOCKED_BY[PERSON]]
            taken = [(s.start, s.end) for s in found]
            for start, end in self._judge.names(text, ner, blocked):
                if not any(a < end and start < b for a, b in taken):
                    found.append(EntitySpan(start, end, PERSON))
        return resolve(found)
