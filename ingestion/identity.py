"""Ids of documents and chunks: keyed, and derived only from what may be stored.

Every id and hash that reaches the index is an HMAC under a server secret, so none of them can be
brute-forced back to the text it was derived from (a chunk id over a short text with a phone
number in it, a section heading with a name). Chunk ids, parent ids and content hashes are taken
*after* redaction; the document id and the file hash are taken from the raw file name and bytes
(they never store either: only the keyed digest). With the same secret the ids are stable, so an
unchanged file is still recognised and a changed one replaces its old version.

A document's identity is its source name *and* its access groups: two groups' files with the
same name are two documents, so an upload can never overwrite a document its uploader may not
write. Replacing a same-named document in other groups is a separate, checked step (see
``ingestion.pipeline``).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

ID_SCHEME = "hmac-sha256-v1"  # recorded with each collection; reindex re-derives older schemes
MIN_KEY_BYTES = 16


@dataclass(frozen=True, slots=True)
class Identity:
    """Derives every stored id from ``key`` (the server's id secret)."""

    key: bytes

    def __post_init__(self) -> None:
        if len(self.key) < MIN_KEY_BYTES:
            raise ValueError(f"the id key must be at least {MIN_KEY_BYTES} bytes")

    def _mac(self, kind: str, *parts: str) -> str:
        message = "\x1f".join((kind, *parts)).encode()
        return hmac.new(self.key, message, hashlib.sha256).hexdigest()

    def doc_id(self, source: str, groups: Iterable[str]) -> str:
        """One document per (source name, set of access groups)."""
        return self._mac("doc", source, "\x1e".join(sorted(set(groups))))[:32]

    def source_key(self, source: str) -> str:
        """Finds every document uploaded under ``source``, whatever its groups."""
        return self._mac("source", source)[:32]

    def file_hash(self, sha256_hex: str) -> str:
        """The file's sha256, keyed: equal bytes give equal hashes, and nothing else leaks."""
        return self._mac("file", sha256_hex)

    def content_hash(self, text: str) -> str:
        return self._mac("text", text)

    def chunk_id(self, doc_id: str, position: int, content_hash: str, version: str = "") -> str:
        """``version`` is the file hash of the document version the chunk belongs to: a new
        version's chunks never share an id with the old one's, so a replace writes the new
        version beside the old before it deletes the old (``ingestion.indexing``). Empty only
        where ids are re-derived for chunks stored before versions were part of them."""
        parts = (doc_id, str(position), content_hash, *((version,) if version else ()))
        return self._mac("chunk", *parts)[:32]

    def parent_id(self, doc_id: str, section: str) -> str:
        return self._mac("section", doc_id, section)[:32]

    def tag(self, entity_type: str, value: str) -> str:
        """A short keyed name for a redacted value: equal values get equal tags."""
        return self._mac("tag", entity_type, value)[:8]


def legacy_doc_id(source: str) -> str:
    """The unkeyed document id of releases before keyed ids (a hash of the name alone)."""
    return hashlib.sha256(f"file\x1f{source}".encode()).hexdigest()[:32]


def rekeyed(properties: dict[str, Any], identity: Identity) -> dict[str, Any] | None:
    """A stored chunk's properties with keyed ids, when it still has the unkeyed ones (else
    None: it is left as it is). Everything is re-derived from what is stored: the text and
    section as redacted, the source name and groups, and the file's sha256 (keyed as ingestion
    now keys it), so a file uploaded again afterwards is still recognised as unchanged."""
    source = str(properties.get("source") or "")
    if properties.get("doc_id") != legacy_doc_id(source):
        return None
    out = dict(properties)
    doc_id = identity.doc_id(source, [str(g) for g in properties.get("access_groups") or ()])
    content_hash = identity.content_hash(str(properties.get("text") or ""))
    out["doc_id"] = doc_id
    out["content_hash"] = content_hash
    out["chunk_id"] = identity.chunk_id(doc_id, int(properties.get("position") or 0), content_hash)
    out["parent_id"] = identity.parent_id(doc_id, str(properties.get("section") or ""))
    if properties.get("file_hash"):
        out["file_hash"] = identity.file_hash(str(properties["file_hash"]))
    return out
