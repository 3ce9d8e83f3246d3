"""Store calls of one ingest batch: one lookup for all files, one delete, two bulk writes.

Write order makes a killed batch safe to resume: every chunk but the first of each document is
written first, the first chunks (position 0) last. Whether a document is indexed, and from which
file hash, is read from its first chunk, so a document is never seen as indexed before all its
chunks are in; a half-written one is deleted whole and written again on the next run.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from services.ports import DocumentStore
from services.records import Chunk, DocumentInfo

WRITE_BATCH = 512  # objects per bulk write request


def indexed_hashes(store: DocumentStore, doc_ids: Sequence[str]) -> dict[str, str]:
    """doc_id -> file hash of its indexed version, for those of ``doc_ids`` that are indexed."""
    return store.file_hashes(doc_ids)


def twins_by_hash(store: DocumentStore, hashes: Sequence[str]) -> dict[str, list[DocumentInfo]]:
    """file hash -> indexed documents built from those bytes (for dedup across paths)."""
    return store.documents_with_hashes(hashes)


def replaceable_namesakes(
    store: DocumentStore,
    uploads: Sequence[tuple[str, str]],
    groups: Sequence[str],
    writer_groups: Sequence[str] | None,
) -> dict[str, list[str]]:
    """For each ``(source, doc_id)`` being uploaded to ``groups``: the ids of other documents of
    that name that it replaces. One is replaced when its groups overlap ``groups`` (within a
    group, a name is one document) and the uploader may write every one of its groups
    (``writer_groups``; None: every group). Any other namesake is left alone and never named."""
    if not uploads:
        return {}
    target = set(groups)
    writable = None if writer_groups is None else set(writer_groups)
    named = store.documents_named([source for source, _ in uploads])
    out: dict[str, list[str]] = {}
    for source, doc_id in uploads:
        out[doc_id] = [
            d.doc_id
            for d in named.get(source, [])
            if d.doc_id != doc_id
            and set(d.access_groups) & target
            and (writable is None or set(d.access_groups) <= writable)
        ]
    return out


def delete_documents(store: DocumentStore, doc_ids: Sequence[str]) -> dict[str, int]:
    """Delete every chunk of ``doc_ids``; doc_id -> chunks deleted."""
    if not doc_ids:
        return {}
    return store.delete_documents(doc_ids)


def _write(store: DocumentStore, pairs: Iterable[tuple[Chunk, Sequence[float]]]) -> int:
    items = list(pairs)
    written = 0
    for i in range(0, len(items), WRITE_BATCH):
        part = items[i : i + WRITE_BATCH]
        written += store.upsert([c for c, _ in part], [v for _, v in part])
    return written


def write_chunks(
    store: DocumentStore, chunks: Sequence[Chunk], vectors: Sequence[Sequence[float]]
) -> int:
    """Bulk-write ``chunks``: the rest of every document first, its first chunk last."""
    pairs = list(zip(chunks, vectors, strict=True))
    rest = [(c, v) for c, v in pairs if c.position != 0]
    heads = [(c, v) for c, v in pairs if c.position == 0]
    return _write(store, rest) + _write(store, heads)
