"""PII redaction of chunks before they are embedded or stored.

Every text field that is stored or embedded is redacted: body, title and section path. Each
distinct text goes to the redactor once per call, whatever the number of chunks repeating it.
Only counts per entity type are kept, never the values.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace

from services.ports import Redactor
from services.records import Chunk, Redaction


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _redact_all(redactor: Redactor, texts: list[str]) -> list[Redaction]:
    many = getattr(redactor, "redact_many", None)
    if many is not None:
        return list(many(texts))
    return [redactor.redact(t) for t in texts]


def _fields(chunk: Chunk) -> tuple[str, str, str]:
    return chunk.text, chunk.title, chunk.section


def redact_groups(
    groups: Sequence[Sequence[Chunk]], redactor: Redactor
) -> list[tuple[list[Chunk], Counter[str]]]:
    """Redact every text field that is stored or embedded (body, title, section path) of every
    group of chunks in one redactor call; per group, the redacted chunks and the counts per
    entity type (each distinct text of a group counted once). Never the values."""
    unique = list(dict.fromkeys(t for chunks in groups for c in chunks for t in _fields(c)))
    cleaned = dict(zip(unique, _redact_all(redactor, unique), strict=True))
    out = []
    for chunks in groups:
        tally: Counter[str] = Counter()
        for text in dict.fromkeys(t for c in chunks for t in _fields(c)):
            tally.update(cleaned[text].counts)
        redacted = []
        for chunk in chunks:
            text, title, section = (cleaned[t].text for t in _fields(chunk))
            if (text, title, section) != _fields(chunk):
                chunk = replace(
                    chunk, text=text, title=title, section=section, content_hash=_sha(text)
                )
            redacted.append(chunk)
        out.append((redacted, tally))
    return out


def redact_chunks(chunks: list[Chunk], redactor: Redactor, tally: Counter[str]) -> list[Chunk]:
    """``redact_groups`` for one group of chunks, adding its counts to ``tally``."""
    [(redacted, counts)] = redact_groups([chunks], redactor)
    tally.update(counts)
    return redacted
