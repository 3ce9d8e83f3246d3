"""File names and upload metadata are redacted before anything stores them, with keyed tags."""

from __future__ import annotations

import re
from collections.abc import Sequence

import pytest

from ingestion.identity import Identity
from ingestion.upload_fields import redact_metadata, redact_names
from services.records import EntitySpan, Redaction
from services.redaction_profile import RedactionProfile

pytestmark = pytest.mark.unit

KEY = Identity(b"unit-test-id-key-0123456789")
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
NAMES = re.compile(r"Jane Doe|John Roe")


class SpanFinder:
    """Finds e-mail addresses and two names, the way Presidio reports spans."""

    def __init__(self) -> None:
        self.calls: list[Sequence[str]] = []

    def find_many(
        self, texts: Sequence[str], profile: RedactionProfile | None = None
    ) -> list[list[EntitySpan]]:
        self.calls.append(list(texts))
        out = []
        for text in texts:
            spans = [EntitySpan(m.start(), m.end(), "EMAIL_ADDRESS") for m in EMAIL.finditer(text)]
            spans += [EntitySpan(m.start(), m.end(), "PERSON") for m in NAMES.finditer(text)]
            out.append(spans)
        return out

    def redact(self, text: str) -> Redaction:
        raise AssertionError("spans are used when the redactor reports them")


def test_personal_parts_of_file_names_become_tags_and_the_suffix_stays() -> None:
    finder = SpanFinder()
    names = ["reviews/Jane Doe.md", "reviews/John Roe.md", "mail to jane@corp.example.de.pdf"]
    out = redact_names(names, finder, RedactionProfile.STRICT, KEY)
    assert len(finder.calls) == 2  # one call for the whole upload, one pass that finds no more
    assert out[0].startswith("reviews/<PERSON_") and out[0].endswith(">.md")
    assert out[0] != out[1]  # two people's files stay two documents
    assert out[2].startswith("mail to <EMAIL_ADDRESS_") and out[2].endswith(".pdf")
    assert not any("Jane" in o or "corp.example" in o for o in out)
    assert redact_names(names, finder, RedactionProfile.STRICT, KEY) == out  # stable
    other = Identity(b"another-key-0123456789abcdef")
    assert redact_names(names, finder, RedactionProfile.STRICT, other)[0] != out[0]


def test_no_redaction_for_raw_uploads_or_without_a_redactor() -> None:
    names = ["reviews/Jane Doe.md"]
    assert redact_names(names, SpanFinder(), RedactionProfile.NONE, KEY) == names
    assert redact_names(names, None, RedactionProfile.STRICT, KEY) == names


def test_metadata_strings_are_redacted_keys_included_and_other_values_kept() -> None:
    meta = {"owner": "Jane Doe", "Jane Doe": [1, "x jane@corp.example.de"], "pages": 3}
    out = redact_metadata(meta, SpanFinder(), RedactionProfile.STRICT, KEY)
    text = repr(out)
    assert "Jane" not in text and "corp.example" not in text
    assert out["pages"] == 3
    [list_value] = [v for k, v in out.items() if k.startswith("<PERSON_")]
    assert list_value[0] == 1 and list_value[1].startswith("x <EMAIL_ADDRESS_")
