"""Which texts could hold PII at all, decided before any analysis runs.

Most questions hold none: of the 130 benchmark questions, 119 have no digit, no ``@``, no ``:``
or ``=``, no key prefix and no capitalised word that could be a name. Presidio's analysis and
spaCy's tokenizer still cost such a question 0.3 ms of CPU at best and about 1 ms on a request
path whose embedding has just run (issue 19's profile). A recognizer can only match where its
anchor is: an e-mail address holds ``@``, a phone number, SSN, card or IBAN holds digits, an IP
address digits or ``:``, a secret its pattern's anchor (``pii_recognizers.SECRET_ANCHORS``), and a
name a capitalised word ``pii_person.may_hold_name`` counts (the same rule chooses the texts
spaCy's NER reads: ``analysis_for`` makes both choices in one place). A text with none of them
for the types asked for has nothing to find; every other text gets the full analysis, so the screen
can only skip work, never a finding (``tests/unit/services/test_pii_screen.py`` compares both
ways over the redaction set).

The screen reads the folded copy the recognizers read (``pii_fold``), so a fullwidth at sign or an
Arabic-Indic digit counts as what it folds to.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Literal

from services.pii_person import may_hold_name
from services.pii_recognizers import SECRET_ANCHORS
from services.pii_regions import Region
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
from services.regex_held import HeldPattern, held

#: What a text must hold for each value recognizer to match in it (names: ``may_hold_name``).
ANCHORS: dict[str, str] = {
    EMAIL_ADDRESS: "@",
    PHONE_NUMBER: r"\d",
    US_SSN: r"\d",
    CREDIT_CARD: r"\d",
    IBAN_CODE: r"\d",
    IP_ADDRESS: r"\d|:",
    SECRET: SECRET_ANCHORS,
}


@lru_cache(maxsize=64)
def _anchor_of(entities: frozenset[str]) -> HeldPattern | None:
    """One pattern for the anchors of ``entities`` (None when none of them has one)."""
    parts = sorted({f"(?:{ANCHORS[e]})" for e in entities if e in ANCHORS})
    return held("|".join(parts)) if parts else None


def could_hold_value(text: str, entities: frozenset[str]) -> bool:
    """Whether a value recognizer for ``entities`` could match in ``text`` (the folded copy).
    Names are not screened here: ``analysis_for`` asks ``may_hold_name`` first.
    An entity type this module does not know always counts as a match."""
    if entities - ANCHORS.keys() - {PERSON}:
        return True
    anchor = _anchor_of(entities)
    return anchor is not None and anchor.search(text) is not None


Analysis = Literal["names and values", "values"]


def analysis_for(text: str, entities: frozenset[str], regions: Sequence[Region]) -> Analysis | None:
    """What ``text`` (the folded copy, with its protected regions) needs: spaCy's NER with the
    recognizers where a name could be kept, the recognizers alone where only a value could be
    found, nothing where nothing could (the one place this is decided)."""
    if PERSON in entities and may_hold_name(text, regions):
        return "names and values"
    return "values" if could_hold_value(text, entities) else None
