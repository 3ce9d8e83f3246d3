"""PII redaction of chunks before they are embedded or stored.

Every text field that is stored or embedded is redacted: body, title and section path. Each
distinct text goes to the redactor once per call, whatever the number of chunks repeating it.

A redactor that reports spans (``find_many`` / ``find``) gets typed, stable placeholders per
document (one group of chunks): the same value is ``<PERSON_1>`` in every chunk, title and
section of that document, and a full name found in one chunk is replaced in the others too.
The numbering holds keyed hashes, never values, and lives only while one call runs. Only counts
per entity type leave this module.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from services.pii_person import mentions_of
from services.pii_regions import protected_regions
from services.ports import Redactor
from services.records import Chunk, EntitySpan, Redaction
from services.redaction_placeholders import Placeholders, anonymize
from services.redaction_profile import PERSON, RedactionProfile


def _kwargs(profile: RedactionProfile | None) -> dict[str, Any]:
    return {} if profile is None else {"profile": profile}


def find_spans(
    redactor: Redactor, texts: list[str], profile: RedactionProfile | None
) -> list[list[EntitySpan]] | None:
    """Spans per text in one call where the redactor can; None when it only redacts."""
    many = getattr(redactor, "find_many", None)
    if many is not None:
        return [list(s) for s in many(texts, **_kwargs(profile))]
    find = getattr(redactor, "find", None)
    if find is not None:
        return [list(find(t, **_kwargs(profile))) for t in texts]
    return None


def _redact_all(
    redactor: Redactor, texts: list[str], profile: RedactionProfile | None
) -> list[Redaction]:
    many = getattr(redactor, "redact_many", None)
    if many is not None:
        return list(many(texts, **_kwargs(profile)))
    return [redactor.redact(t, **_kwargs(profile)) for t in texts]


def _fields(chunk: Chunk) -> tuple[str, str, str]:
    return chunk.text, chunk.title, chunk.section


def _in_reading_order(chunks: Sequence[Chunk]) -> list[str]:
    """Distinct texts of one document: title and section path before the body they head."""
    return list(dict.fromkeys(t for c in chunks for t in (c.title, c.section, c.text)))


def _numbered(texts: list[str], spans: dict[str, list[EntitySpan]]) -> dict[str, Redaction]:
    """One document's texts with placeholders numbered across all of them; full names found in
    one text are replaced wherever else they occur in the document."""
    names = {t[s.start : s.end] for t in texts for s in spans[t] if s.entity_type == PERSON}
    placeholders = Placeholders()
    out = {}
    for text in texts:
        found = spans[text]
        if names and text.strip():
            taken = [(s.start, s.end) for s in found]
            blocked = protected_regions(text)
            extra = mentions_of(text, names, taken, blocked)
            found = found + [EntitySpan(s, e, PERSON) for s, e in extra]
        out[text] = anonymize(text, found, placeholders) if found else Redaction(text=text)
    return out


def redact_groups(
    groups: Sequence[Sequence[Chunk]],
    redactor: Redactor,
    *,
    profile: RedactionProfile | None = None,
) -> list[tuple[list[Chunk], Counter[str]]]:
    """Redact every text field that is stored or embedded (body, title, section path) of every
    group of chunks (one group: one document) in one redactor call, with ``profile`` (default:
    the redactor's own); per group, the redacted chunks and the counts per entity type (each
    distinct text of a group counted once). Never the values."""
    if profile is RedactionProfile.NONE:
        return [(list(chunks), Counter()) for chunks in groups]
    unique = list(dict.fromkeys(t for chunks in groups for c in chunks for t in _fields(c)))
    found = find_spans(redactor, unique, profile)
    if found is None:
        cleaned = dict(zip(unique, _redact_all(redactor, unique, profile), strict=True))
    spans = dict(zip(unique, found, strict=True)) if found is not None else {}
    out = []
    for chunks in groups:
        if found is not None:
            cleaned = _numbered(_in_reading_order(chunks), spans)
        tally: Counter[str] = Counter()
        for text in dict.fromkeys(t for c in chunks for t in _fields(c)):
            tally.update(cleaned[text].counts)
        redacted = []
        for chunk in chunks:
            text, title, section = (cleaned[t].text for t in _fields(chunk))
            if (text, title, section) != _fields(chunk):
                chunk = replace(chunk, text=text, title=title, section=section)
            redacted.append(chunk)
        out.append((redacted, tally))
    return out


def redact_chunks(
    chunks: list[Chunk],
    redactor: Redactor,
    tally: Counter[str],
    *,
    profile: RedactionProfile | None = None,
) -> list[Chunk]:
    """``redact_groups`` for one group of chunks, adding its counts to ``tally``."""
    [(redacted, counts)] = redact_groups([chunks], redactor, profile=profile)
    tally.update(counts)
    return redacted
