"""Replacing a document under store faults, with deterministic fake ports: the new version is
written whole before the old one is deleted, a write that fails part-way leaves the old version
whole (and takes back what it got in), the store writes run inside the write lease, and a new
version's chunk ids never equal the old one's. The real Weaviate: tests/integration/
test_index_consistency.py."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from test_ingest_batch import BatchStore
from test_pipeline_chunks import DOC, POLICY, FakeEmbedder, write

from ingestion.identity import Identity
from ingestion.pipeline import IngestOptions, ingest_batch
from services.errors import StoreUnavailableError

pytestmark = pytest.mark.unit

KEY = Identity(b"unit-test-id-key-0123456789")
NEW = DOC.replace("25 days", "30 days").replace("the portal", "the new portal")


class FaultyStore(BatchStore):
    """Fails the ``fail_at``-th write from now on (after it, like a connection cut mid-batch);
    ``cleanup_fails``: the deletes fail too (the store is gone, not just one request)."""

    def __init__(self) -> None:
        super().__init__()
        self.fail_at: int | None = None
        self.cleanup_fails = False

    def upsert(self, chunks: Sequence[Any], vectors: Sequence[Sequence[float]]) -> int:
        if self.fail_at is not None:
            self.fail_at -= 1
            if self.fail_at == 0:
                raise StoreUnavailableError("weaviate failed during upsert: connection reset")
        ids = {c.chunk_id for c in chunks}  # a chunk id is an object id: written again, replaced
        self.upserted = [c for c in self.upserted if c.chunk_id not in ids]
        return super().upsert(chunks, vectors)

    def delete_chunks(self, chunk_ids: Sequence[str]) -> int:
        if self.cleanup_fails:
            raise StoreUnavailableError("weaviate failed during delete_chunks")
        self.events.append(("delete_chunks", len(chunk_ids)))
        gone = set(chunk_ids)
        before = len(self.upserted)
        self.upserted = [c for c in self.upserted if c.chunk_id not in gone]
        return before - len(self.upserted)

    def version_of(self, doc_id: str) -> set[str]:
        return {c.file_hash for c in self.upserted if c.doc_id == doc_id}


def _index(store: FaultyStore, path: Path, lease: Any = None) -> Any:
    options = IngestOptions(groups=("hr",), identity=KEY, redact=False, chunking=POLICY)
    kwargs = {"write_lease": lease} if lease is not None else {}
    [result] = ingest_batch(
        [(path, "policy.md")],
        options=options,
        store=store,
        embedder=FakeEmbedder(),
        redactor=None,
        **kwargs,
    )
    return result


def test_a_new_version_never_reuses_an_old_chunk_id(tmp_path: Path) -> None:
    store = FaultyStore()
    path = write(tmp_path, "policy.md", DOC)
    first = _index(store, path)
    old = {c.chunk_id for c in store.upserted}
    # the same text at the same position in another version of the file
    write(tmp_path, "policy.md", DOC + "\n## Parking\n\nPark in lot B.\n")
    second = _index(store, path)
    assert second.status == "indexed" and second.stale_deleted == first.chunks
    assert not old & {c.chunk_id for c in store.upserted}


def test_a_write_that_fails_part_way_leaves_the_old_version_whole(tmp_path: Path) -> None:
    store = FaultyStore()
    path = write(tmp_path, "policy.md", DOC)
    first = _index(store, path)
    old = sorted((c.chunk_id, c.text) for c in store.upserted)
    write(tmp_path, "policy.md", NEW)
    store.fail_at = 2  # the rest of the document goes in, its first chunk does not
    store.events.clear()
    with pytest.raises(StoreUnavailableError, match="connection reset"):
        _index(store, path)
    assert sorted((c.chunk_id, c.text) for c in store.upserted) == old
    assert store.file_hashes([first.doc_id]) == {first.doc_id: store.upserted[0].file_hash}
    assert [e[0] for e in store.events] == ["upsert", "delete_chunks"]  # nothing stale deleted


def test_when_the_cleanup_fails_too_the_old_version_stays_whole_and_the_next_upload_settles(
    tmp_path: Path,
) -> None:
    store = FaultyStore()
    path = write(tmp_path, "policy.md", DOC)
    first = _index(store, path)
    old_hash = store.upserted[0].file_hash
    write(tmp_path, "policy.md", NEW)
    store.fail_at, store.cleanup_fails = 2, True
    with pytest.raises(StoreUnavailableError, match="connection reset"):
        _index(store, path)
    # the old version is whole and still the indexed one; the new partial chunk waits
    assert len([c for c in store.upserted if c.file_hash == old_hash]) == first.chunks
    assert store.file_hashes([first.doc_id]) == {first.doc_id: old_hash}
    assert len(store.version_of(first.doc_id)) == 2
    store.fail_at, store.cleanup_fails = None, False
    again = _index(store, path)
    assert again.status == "indexed"
    assert store.version_of(first.doc_id) == {store.upserted[-1].file_hash} != {old_hash}
    assert len([c for c in store.upserted if c.doc_id == first.doc_id]) == again.chunks


def test_the_store_writes_and_deletes_run_inside_the_write_lease(tmp_path: Path) -> None:
    store = FaultyStore()
    path = write(tmp_path, "policy.md", DOC)
    _index(store, path)
    write(tmp_path, "policy.md", NEW)
    store.events.clear()

    @contextmanager
    def lease() -> Iterator[None]:
        store.events.append(("lease",))
        yield
        store.events.append(("lease returned",))

    _index(store, path, lease)
    assert [e[0] for e in store.events] == [
        "lease",
        "upsert",
        "upsert",
        "delete_stale",
        "lease returned",
    ]
