"""Store calls of one ingest batch: one lookup for all files, bulk writes, then the deletes.

A changed document is replaced by writing its new version beside the old one, then deleting
every chunk of any other version (a new version's chunk ids never equal the old one's: the file
hash is part of them). So a failure at any point leaves a document readable whole: while
writing, the old version is untouched (the new chunks got in so far are deleted again, best
effort); after writing, the new version is whole and only the old one's leftovers wait for the
next replace or delete. Between the last write and the delete, a search can see both versions
of the document, never neither.

Within the writes, every chunk but the first of each document goes first, the first chunks
(position 0) last. Whether a document is indexed, and from which file hash, is read from its
first chunk, so a version is never seen as indexed before all its chunks are in; a document
with two first chunks is mid-replace and counts as indexed from no file (``file_hashes``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence

from services.ports import DocumentStore
from services.records import Chunk, DocumentInfo

log = logging.getLogger("holdfast.ingest")

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


def replace_documents(
    store: DocumentStore,
    chunks: Sequence[Chunk],
    vectors: Sequence[Sequence[float]],
    *,
    namesakes: Mapping[str, Sequence[str]],
) -> dict[str, int]:
    """Index new versions: write ``chunks`` (each document's new version whole), then delete
    what they replace: the documents' chunks of any other version, and the other documents
    that ``namesakes`` names for each. doc_id -> chunks deleted on its behalf.

    A failed write raises after deleting the new chunks it may have got in (best effort: if
    that fails too, they stay searchable beside the intact old version until the document is
    next replaced or deleted); the old versions and the namesakes are untouched."""
    try:
        write_chunks(store, chunks, vectors)
    except Exception:
        try:
            store.delete_chunks([c.chunk_id for c in chunks])
        except Exception as exc:  # the write's own error is the one to raise
            log.warning("partial new chunks of a failed write were not deleted: %s", exc)
        raise
    stale = store.delete_stale(chunks)
    gone = delete_documents(store, sorted({n for names in namesakes.values() for n in names}))
    return {
        doc_id: count + sum(gone.get(n, 0) for n in namesakes.get(doc_id, ()))
        for doc_id, count in stale.items()
    }
