"""Upload fields stored before any document is parsed: file names and upload metadata.

A file name becomes the document's source (in the index, the jobs store, citations), and is
often personal data itself ("review-jane-doe.md"); upload metadata is kept with the job. Both
are redacted with the upload's profile before anything stores them. A value in a file name
becomes ``<TYPE_tag>``, the tag a keyed hash of the value: two files whose names differ only in
their personal part stay two documents, the same name always redacts the same way (so a new
version still replaces the old), and no tag can be turned back into its value without the
server's key. The type suffix is kept, so the file is still read as what it is.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import PurePosixPath
from typing import Any

from ingestion.identity import Identity
from ingestion.redaction import find_spans
from services.ports import Redactor
from services.records import EntitySpan
from services.redaction_profile import RedactionProfile

_PLACEHOLDER = re.compile(r"<[A-Z][A-Z0-9_]*_[0-9a-f]{8}>")
_PASSES = 3


def _tagged(text: str, spans: Sequence[EntitySpan], identity: Identity) -> str:
    out, last = [], 0
    for span in sorted(spans, key=lambda s: (s.start, s.start - s.end)):
        if span.start < last:  # overlapping finds: the first (longest) one stands
            continue
        value = text[span.start : span.end]
        out.append(text[last : span.start])
        out.append(f"<{span.entity_type}_{identity.tag(span.entity_type, value)}>")
        last = span.end
    out.append(text[last:])
    return "".join(out)


def _outside_placeholders(text: str, spans: Sequence[EntitySpan]) -> list[EntitySpan]:
    taken = [(m.start(), m.end()) for m in _PLACEHOLDER.finditer(text)]
    return [s for s in spans if not any(a <= s.start and s.end <= b for a, b in taken)]


def _redact_texts(
    texts: list[str], redactor: Redactor, profile: RedactionProfile, identity: Identity
) -> list[str]:
    """Up to ``_PASSES`` passes: values packed side by side without context words (a file name
    listing a phone number next to a card number) are not all found at once, but once their
    neighbours are placeholders, they are."""
    out = list(texts)
    pending = list(range(len(out)))
    for _ in range(_PASSES):
        found = find_spans(redactor, [out[i] for i in pending], profile)
        if found is None:  # a redactor that only redacts: its own placeholders
            return [redactor.redact(t).text for t in texts]
        still = []
        for i, spans in zip(pending, found, strict=True):
            fresh = _outside_placeholders(out[i], spans)
            if fresh:
                out[i] = _tagged(out[i], fresh, identity)
                still.append(i)
        pending = still
        if not pending:
            break
    return out


def redact_names(
    names: Sequence[str],
    redactor: Redactor | None,
    profile: RedactionProfile,
    identity: Identity,
) -> list[str]:
    """File names as they may be stored: every PII value in the name (not its type suffix)
    replaced by a tagged placeholder, in one redactor call."""
    if redactor is None or profile is RedactionProfile.NONE or not names:
        return list(names)
    suffixes = [
        PurePosixPath(n).suffix if len(PurePosixPath(n).suffix) <= 16 else "" for n in names
    ]
    stems = [n[: len(n) - len(s)] if s else n for n, s in zip(names, suffixes, strict=True)]
    cleaned = _redact_texts(stems, redactor, profile, identity)
    return [c + s for c, s in zip(cleaned, suffixes, strict=True)]


def redact_metadata(
    metadata: dict[str, Any],
    redactor: Redactor | None,
    profile: RedactionProfile,
    identity: Identity,
) -> dict[str, Any]:
    """Upload metadata with every string in it (keys included) redacted like a file name."""
    if redactor is None or profile is RedactionProfile.NONE or not metadata:
        return dict(metadata)
    strings: list[str] = []

    def collect(value: Any) -> None:
        if isinstance(value, str):
            strings.append(value)
        elif isinstance(value, dict):
            for k, v in value.items():
                collect(k)
                collect(v)
        elif isinstance(value, list):
            for v in value:
                collect(v)

    collect(metadata)
    unique = list(dict.fromkeys(strings))
    clean = dict(zip(unique, _redact_texts(unique, redactor, profile, identity), strict=True))

    def rebuild(value: Any) -> Any:
        if isinstance(value, str):
            return clean[value]
        if isinstance(value, dict):
            return {clean[k]: rebuild(v) for k, v in value.items()}
        if isinstance(value, list):
            return [rebuild(v) for v in value]
        return value

    result: dict[str, Any] = rebuild(metadata)
    return result
