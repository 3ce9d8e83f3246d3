"""Typed, stable placeholders (``<PERSON_1>``, ``<EMAIL_ADDRESS_2>``), written by
presidio-anonymizer with an operator of Holdfast's own.

One ``Placeholders`` numbers the values of one document (or one request): the same value always
gets the same number, so two mentions of one person stay one entity for retrieval and for the
model. It keeps no value: only a keyed hash of (type, normalised value) and a count per type,
and it lives only as long as the document's redaction.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

from presidio_anonymizer import AnonymizerEngine
from presidio_anonymizer.entities import InvalidParamError, OperatorConfig, RecognizerResult
from presidio_anonymizer.operators import Operator, OperatorType

from services.pii_fold import fold
from services.records import EntitySpan, Redaction

OPERATOR_NAME = "holdfast_placeholder"
_COMPACT = frozenset({"PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "US_SSN", "IP_ADDRESS"})


def _normalise(entity_type: str, value: str) -> str:
    value = fold(value).text  # a value written with look-alike characters is the same value
    if entity_type in _COMPACT:  # "+1 415 555 0187" and "+1-415-555-0187" are one number
        return re.sub(r"[^0-9A-Za-z:]", "", value).upper()
    return " ".join(value.split()).casefold()


class Placeholders:
    """Numbers the values of one document per entity type, first mention first."""

    def __init__(self) -> None:
        self._salt = os.urandom(16)  # the keys cannot be matched against a list of values
        self._numbers: dict[bytes, int] = {}
        self._used: Counter[str] = Counter()

    def label(self, entity_type: str, value: str) -> str:
        key = hashlib.blake2b(
            f"{entity_type}\0{_normalise(entity_type, value)}".encode(), key=self._salt
        ).digest()
        number = self._numbers.get(key)
        if number is None:
            self._used[entity_type] += 1
            number = self._numbers[key] = self._used[entity_type]
        return f"<{entity_type}_{number}>"

    @property
    def distinct(self) -> dict[str, int]:
        """How many distinct values of each type were numbered (counts only)."""
        return dict(self._used)


class TypedPlaceholder(Operator):
    """presidio-anonymizer operator: replace a value with its ``Placeholders`` label."""

    def operate(self, text: str, params: dict[str, Any] | None = None) -> str:
        assert params is not None
        placeholders: Placeholders = params["placeholders"]
        return placeholders.label(str(params["entity_type"]), text)

    def validate(self, params: dict[str, Any] | None = None) -> None:
        if not isinstance((params or {}).get("placeholders"), Placeholders):
            raise InvalidParamError("placeholders must be a Placeholders instance")

    def operator_name(self) -> str:
        return OPERATOR_NAME

    def operator_type(self) -> OperatorType:
        return OperatorType.Anonymize


_engine: AnonymizerEngine | None = None


def _anonymizer() -> AnonymizerEngine:
    global _engine
    if _engine is None:
        engine = AnonymizerEngine()  # type: ignore[no-untyped-call]
        engine.add_anonymizer(TypedPlaceholder)
        _engine = engine
    return _engine


def without_overlaps(spans: Sequence[EntitySpan]) -> list[EntitySpan]:
    """Keep the earliest, then longest, of overlapping spans."""
    kept: list[EntitySpan] = []
    for span in sorted(spans, key=lambda s: (s.start, -(s.end - s.start))):
        if kept and span.start < kept[-1].end:
            continue
        kept.append(span)
    return kept


def anonymize(
    text: str, spans: Sequence[EntitySpan], placeholders: Placeholders | None = None
) -> Redaction:
    """Replace ``spans`` with presidio-anonymizer: ``<TYPE_n>`` from ``placeholders``, or the
    untyped ``<TYPE>`` without one. Counts are replacements per type."""
    kept = [s for s in without_overlaps(spans) if 0 <= s.start < s.end <= len(text)]
    if not kept:
        return Redaction(text=text)
    if placeholders is not None:
        for span in kept:  # number in reading order (the anonymizer works from the end)
            placeholders.label(span.entity_type, text[span.start : span.end])
        operator = OperatorConfig(OPERATOR_NAME, {"placeholders": placeholders})
    else:
        operator = OperatorConfig("replace")
    result = _anonymizer().anonymize(
        text=text,
        analyzer_results=[RecognizerResult(s.entity_type, s.start, s.end, 1.0) for s in kept],
        operators={"DEFAULT": operator},
        merge_entities_with_spaces=False,
    )
    counts = Counter(s.entity_type for s in kept)
    return Redaction(text=result.text, counts=dict(counts))


def apply_spans(
    text: str, spans: Sequence[EntitySpan], placeholders: Placeholders | None = None
) -> Redaction:
    """Replace each span with ``<ENTITY_TYPE>`` (or ``<ENTITY_TYPE_n>`` from ``placeholders``);
    pure (no model), so streaming can reuse it on a prefix. Not an adapter: the gateway's query
    path may import it."""
    return anonymize(text, spans, placeholders)
