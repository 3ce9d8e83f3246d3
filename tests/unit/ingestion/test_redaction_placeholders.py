"""Placeholders per document: one value, one number, in every chunk, title and section path."""

from __future__ import annotations

import re
from collections.abc import Sequence

import pytest

from ingestion.redaction import redact_groups
from services.records import Chunk, EntitySpan, Redaction
from services.redaction_profile import RedactionProfile

pytestmark = pytest.mark.unit

EMAIL = re.compile(r"[\w.]+@[\w.-]+\.\w+")
NAMES = re.compile(r"Dana Whitfield|Marcus Bell")


class SpanRedactor:
    """Finds e-mail addresses everywhere and the two names only in texts that say "HR"."""

    def __init__(self) -> None:
        self.profiles: list[RedactionProfile | None] = []

    def find(self, text: str, *, profile: RedactionProfile | None = None) -> list[EntitySpan]:
        spans = [EntitySpan(m.start(), m.end(), "EMAIL_ADDRESS") for m in EMAIL.finditer(text)]
        if "HR" in text and profile is not RedactionProfile.STRUCTURED:
            spans += [EntitySpan(m.start(), m.end(), "PERSON") for m in NAMES.finditer(text)]
        return spans

    def find_many(
        self, texts: Sequence[str], *, profile: RedactionProfile | None = None
    ) -> list[list[EntitySpan]]:
        self.profiles.append(profile)
        return [self.find(t, profile=profile) for t in texts]

    def redact(self, text: str) -> Redaction:
        raise AssertionError("the span path is used")


def chunk(doc: str, n: int, text: str, title: str = "Leave", section: str = "Policy") -> Chunk:
    return Chunk(
        chunk_id=f"{doc}-{n}",
        doc_id=doc,
        text=text,
        source=f"{doc}.md",
        title=title,
        section=section,
        position=n,
        content_hash="",
        access_groups=("hr",),
        parent_id=f"{doc}-p",
    )


def test_one_value_keeps_one_number_across_a_documents_chunks() -> None:
    doc = [
        chunk("a", 0, "HR: Dana Whitfield (dana@acme-corp.com) manages Marcus Bell."),
        chunk("a", 1, "HR: Marcus Bell reports to Dana Whitfield; mail dana@acme-corp.com."),
    ]
    [(out, tally)] = redact_groups([doc], SpanRedactor())
    assert out[0].text == "HR: <PERSON_1> (<EMAIL_ADDRESS_1>) manages <PERSON_2>."
    assert out[1].text == "HR: <PERSON_2> reports to <PERSON_1>; mail <EMAIL_ADDRESS_1>."
    assert tally == {"PERSON": 4, "EMAIL_ADDRESS": 2}


def test_titles_and_sections_share_the_documents_numbering() -> None:
    doc = [chunk("a", 0, "HR note: Dana Whitfield is on leave.", title="HR: Dana Whitfield")]
    [(out, _)] = redact_groups([doc], SpanRedactor())
    assert out[0].title == "HR: <PERSON_1>"
    assert out[0].text == "HR note: <PERSON_1> is on leave."


def test_a_name_found_in_one_chunk_is_replaced_in_the_others() -> None:
    doc = [
        chunk("a", 0, "HR: Dana Whitfield joined in March."),
        chunk("a", 1, "The budget owner is Dana Whitfield."),  # the redactor misses it here
    ]
    [(out, _)] = redact_groups([doc], SpanRedactor())
    assert out[1].text == "The budget owner is <PERSON_1>."


def test_each_document_is_numbered_on_its_own() -> None:
    a = [chunk("a", 0, "HR: Marcus Bell")]
    b = [chunk("b", 0, "HR: Dana Whitfield and Marcus Bell")]
    [(out_a, _), (out_b, _)] = redact_groups([a, b], SpanRedactor())
    assert out_a[0].text == "HR: <PERSON_1>"
    assert out_b[0].text == "HR: <PERSON_1> and <PERSON_2>"


def test_the_profile_reaches_the_redactor_and_none_changes_nothing() -> None:
    redactor = SpanRedactor()
    doc = [chunk("a", 0, "HR: Dana Whitfield, dana@acme-corp.com")]
    [(out, _)] = redact_groups([doc], redactor, profile=RedactionProfile.STRUCTURED)
    assert out[0].text == "HR: Dana Whitfield, <EMAIL_ADDRESS_1>"
    assert redactor.profiles == [RedactionProfile.STRUCTURED]
    [(same, nothing)] = redact_groups([doc], redactor, profile=RedactionProfile.NONE)
    assert same == doc and not nothing


def test_a_redactor_that_only_redacts_is_still_used() -> None:
    class Plain:
        def redact(self, text: str) -> Redaction:
            n = len(EMAIL.findall(text))
            return Redaction(EMAIL.sub("<EMAIL_ADDRESS>", text), {"EMAIL_ADDRESS": n} if n else {})

    [(out, tally)] = redact_groups([[chunk("a", 0, "Mail x@corp.com.")]], Plain())  # type: ignore[arg-type]
    assert out[0].text == "Mail <EMAIL_ADDRESS>." and tally == {"EMAIL_ADDRESS": 1}
