"""Index consistency under faults, against the real stack (issue 18, item 5):

- a document of 12,000 chunks (more than Weaviate deletes in one request) is deleted completely
  through DELETE /v1/documents/{id}, and a replace removes an old version of 12,000 chunks;
- a replace whose connection to Weaviate is cut mid-write leaves the old version fully
  searchable, listed and deletable (the cut is real: the store talks to Weaviate through a
  loopback proxy that the test stops after the first write request);
- a reindex with deletes before, during (behind the write fence) and after its switch, and a
  rollback after it, resurrect nothing and lose nothing.

Chunks of the big documents are written straight through the store adapter with synthetic
vectors: embedding 12,000 texts would test the embedder, not the index.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from weaviate.classes.query import Filter

from gateway.container import build_store
from gateway.models.config import PACKAGED_EMBEDDER
from gateway.models.reindex import reindex, rollback
from gateway.models.write_fence import SqliteWriteFence, write_fence_for
from gateway.security.keys import KeyStore
from gateway.security.secrets import id_key
from ingestion.identity import Identity
from ingestion.indexing import replace_documents, write_chunks
from ingestion.pipeline import ChunkingPolicy, IngestReport, ingest_files
from services.errors import HoldfastError
from services.records import Chunk
from services.weaviate_store import WeaviateStore
from tests.integration.conftest import LiveStack
from tests.integration.tcp_proxy import TcpProxy

pytestmark = pytest.mark.integration

BIG = 12_000


def _key(live: LiveStack, name: str, group: str) -> str:
    _, key = KeyStore(live.settings.keys_db).create(name, groups=[group], roles=["ingest", "query"])
    return key


def _delete(live: LiveStack, key: str, doc_id: str) -> httpx.Response:
    return httpx.delete(
        f"{live.url}/v1/documents/{doc_id}",
        headers={"Authorization": f"Bearer {key}"},
        timeout=300,
    )


def _listed(live: LiveStack, key: str) -> set[str]:
    response = httpx.get(
        f"{live.url}/v1/documents",
        params={"limit": 500},
        headers={"Authorization": f"Bearer {key}"},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    return {d["doc_id"] for d in response.json()["documents"]}


def _synthetic(doc_id: str, group: str, n: int, version: str) -> list[Chunk]:
    return [
        Chunk(
            chunk_id=f"{doc_id}-{version}-{i}",
            doc_id=doc_id,
            text=f"Paragraph {i} of the turbine maintenance manual, {version}.",
            source=f"{doc_id}.md",
            title="Turbine maintenance manual",
            section=f"Part {i // 100}",
            position=i,
            content_hash=f"{version}-{i}",
            access_groups=(group,),
            parent_id=f"{doc_id}-{i // 100}",
            doc_type="markdown",
            file_hash=version,
        )
        for i in range(n)
    ]


def _vectors(n: int, dims: int, seed: int) -> list[list[float]]:
    rows = np.random.default_rng(seed).normal(size=(n, dims)).astype(np.float32)
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).tolist()  # type: ignore[no-any-return]


def _versions(store: WeaviateStore, doc_id: str) -> dict[str, int]:
    """file hash -> chunks of ``doc_id`` stored under it (read straight from the alias)."""
    collection = store._live.collections.use(store.alias)
    found: dict[str, int] = {}
    for obj in collection.query.fetch_objects(
        filters=Filter.by_property("doc_id").equal(doc_id), limit=1000
    ).objects:
        version = str(obj.properties.get("file_hash") or "")
        found[version] = found.get(version, 0) + 1
    return found


def test_a_document_of_12000_chunks_is_deleted_completely(live_stack: LiveStack) -> None:
    c = live_stack.components
    store = c.store
    assert isinstance(store, WeaviateStore)
    key = _key(live_stack, "big-deleter", "turbines")
    doc_id = "turbine-manual-12k"
    chunks = _synthetic(doc_id, "turbines", BIG, "v1")
    started = time.monotonic()
    assert write_chunks(store, chunks, _vectors(BIG, c.embedder.dimensions, 1)) == BIG
    print(f"wrote {BIG} chunks in {time.monotonic() - started:.1f} s")
    assert store.count_document(doc_id) == BIG
    # the premise: one filtered delete matches them all but deletes QUERY_MAXIMUM_RESULTS
    dry = store._live.collections.use(store.alias).data.delete_many(
        where=Filter.by_property("doc_id").equal(doc_id), dry_run=True
    )
    assert (dry.matches, dry.successful, dry.failed) == (BIG, 10_000, 0)
    assert doc_id in _listed(live_stack, key)
    started = time.monotonic()
    response = _delete(live_stack, key, doc_id)
    print(f"DELETE of {BIG} chunks: {time.monotonic() - started:.1f} s")
    assert response.status_code == 200, response.text
    assert response.json() == {"doc_id": doc_id, "chunks_deleted": BIG}
    assert store.count_document(doc_id) == 0
    assert store.document(doc_id) is None and doc_id not in _listed(live_stack, key)


def test_a_replace_deletes_an_old_version_larger_than_one_delete_and_its_namesakes(
    live_stack: LiveStack,
) -> None:
    c = live_stack.components
    store = c.store
    dims = c.embedder.dimensions
    doc_id, namesake = "turbine-manual-replaced", "turbine-manual-other-groups"
    old = 10_500
    write_chunks(store, _synthetic(doc_id, "turbines", old, "v1"), _vectors(old, dims, 2))
    write_chunks(store, _synthetic(namesake, "turbines", 300, "n1"), _vectors(300, dims, 3))
    new = _synthetic(doc_id, "turbines", 5, "v2")
    stale = replace_documents(store, new, _vectors(5, dims, 4), namesakes={doc_id: [namesake]})
    assert stale == {doc_id: old + 300}
    assert _versions(store, doc_id) == {"v2": 5}
    assert store.count_document(namesake) == 0
    assert store.delete_documents([doc_id]) == {doc_id: 5}
    assert store.count_document(doc_id) == 0


def _parsed_at(chunks: list[Chunk], when: datetime) -> list[Chunk]:
    return [replace(chunk, ingested_at=when) for chunk in chunks]


@pytest.mark.parametrize("order", ["both-write-then-delete", "one-whole-replace-then-the-other"])
def test_two_replaces_of_one_document_at_once_leave_the_last_parsed_version_whole(
    live_stack: LiveStack, order: str
) -> None:
    """Two workers replacing one document at once: each deleted the other's version, and the
    document was left with none. Now the version parsed last stays, whole, however the writes
    and deletes interleave."""
    c = live_stack.components
    store = c.store
    assert isinstance(store, WeaviateStore)
    dims = c.embedder.dimensions
    doc_id = f"turbine-manual-raced-{order}"
    write_chunks(store, _synthetic(doc_id, "turbines", 6, "v1"), _vectors(6, dims, 11))
    now = datetime.now(UTC)
    first = _parsed_at(_synthetic(doc_id, "turbines", 4, "v2"), now)
    second = _parsed_at(_synthetic(doc_id, "turbines", 5, "v3"), now + timedelta(seconds=1))
    if order == "both-write-then-delete":
        write_chunks(store, first, _vectors(4, dims, 12))
        write_chunks(store, second, _vectors(5, dims, 13))
        store.delete_stale(first)
        store.delete_stale(second)
    else:  # the later parse finishes first; the earlier one writes and deletes after it
        replace_documents(store, second, _vectors(5, dims, 13), namesakes={})
        replace_documents(store, first, _vectors(4, dims, 12), namesakes={})
    assert _versions(store, doc_id) == {"v3": 5}
    assert store.delete_documents([doc_id]) == {doc_id: 5}


def test_a_version_dated_by_a_wrong_clock_is_still_replaced(live_stack: LiveStack) -> None:
    c = live_stack.components
    store = c.store
    assert isinstance(store, WeaviateStore)
    dims = c.embedder.dimensions
    doc_id = "turbine-manual-future-dated"
    ahead = _parsed_at(
        _synthetic(doc_id, "turbines", 3, "v1"), datetime.now(UTC) + timedelta(days=1)
    )
    write_chunks(store, ahead, _vectors(3, dims, 14))
    new = _parsed_at(_synthetic(doc_id, "turbines", 2, "v2"), datetime.now(UTC))
    assert replace_documents(store, new, _vectors(2, dims, 15), namesakes={}) == {doc_id: 3}
    assert _versions(store, doc_id) == {"v2": 2}
    assert store.delete_documents([doc_id]) == {doc_id: 2}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class CutAfterWrites:
    """The store, talking to Weaviate through loopback proxies that are stopped (every open
    connection closed, nothing listening) once ``writes`` write requests went through."""

    def __init__(self, store: WeaviateStore, proxies: Sequence[TcpProxy], writes: int) -> None:
        self._store, self._proxies, self._left = store, proxies, writes

    def upsert(self, chunks: Sequence[Chunk], vectors: Sequence[Sequence[float]]) -> int:
        written = self._store.upsert(chunks, vectors)
        self._left -= 1
        if self._left == 0:
            for proxy in self._proxies:
                proxy.stop()
        return written

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


@pytest.fixture
def proxied_store(live_stack: LiveStack) -> Iterator[tuple[WeaviateStore, list[TcpProxy]]]:
    wv = live_stack.settings.weaviate
    http, grpc = _free_port(), _free_port()
    proxies = [TcpProxy(http, wv.http_port).start(), TcpProxy(grpc, wv.grpc_port).start()]
    settings = live_stack.settings.model_copy(
        update={"weaviate": wv.model_copy(update={"http_port": http, "grpc_port": grpc})}
    )
    store = build_store(settings)
    c = live_stack.components
    store.warm_up()
    store.ensure_schema(embedding_model=c.embedder_model_id, dimensions=c.embedder.dimensions)
    try:
        yield store, proxies
    finally:
        for proxy in proxies:
            proxy.stop()
        store.close()


MANUAL = """# Pump station manual

## Start-up

Open valve V7 before the priming pump starts; the gauge must read {pressure} bar.

## Shutdown

Close valve V7, then stop the {pump} pump and log the hour meter.

## Alarms

A red beacon on panel P2 means {alarm}.
"""


def _manual(folder: Path, version: int) -> Path:
    path = folder / "pump-station.md"
    values = (
        {"pressure": "2.5", "pump": "priming", "alarm": "low suction pressure"}
        if version == 1
        else {"pressure": "3.1", "pump": "booster", "alarm": "seal leakage"}
    )
    path.write_text(MANUAL.format(**values), encoding="utf-8")
    return path


def _ingest(live: LiveStack, store: Any, path: Path, group: str) -> IngestReport:
    c, chunking = live.components, live.settings.chunking
    return ingest_files(
        [path],
        groups=[group],
        store=store,
        embedder=c.embedder,
        redactor=c.redactor,
        policy=ChunkingPolicy(chunking.max_tokens, chunking.overlap_tokens),
        identity=Identity(id_key(live.settings)),
    )


def _search(live: LiveStack, key: str, query: str) -> str:
    response = live.post("/v1/search", {"query": query, "top_k": 10}, key)
    assert response.status_code == 200, response.text
    return " ".join(r["text"] for r in response.json()["results"])


def test_a_replace_cut_off_mid_write_leaves_the_old_version_searchable_and_deletable(
    live_stack: LiveStack, tmp_path: Path, proxied_store: tuple[WeaviateStore, list[TcpProxy]]
) -> None:
    group = "pump-station"
    key = _key(live_stack, "pump-operator", group)
    store = live_stack.components.store
    assert isinstance(store, WeaviateStore)
    first = _ingest(live_stack, store, _manual(tmp_path, 1), group)
    [old] = first.files
    assert old.status == "indexed" and old.chunks >= 2
    old_versions = _versions(store, old.doc_id)
    [old_hash] = old_versions
    # version 2 through a connection that is cut after its first write request: the rest of
    # the document went in, its first chunk and every later request did not
    proxied, proxies = proxied_store
    cut = CutAfterWrites(proxied, proxies, writes=1)
    started = time.monotonic()
    with pytest.raises(HoldfastError):
        _ingest(live_stack, cut, _manual(tmp_path, 2), group)
    print(f"the cut replace failed after {time.monotonic() - started:.1f} s")
    # the clean-up could not reach Weaviate either: the new partial chunks wait beside the
    # old version, which is whole, still the indexed one, and found by search
    versions = _versions(store, old.doc_id)
    assert versions[old_hash] == old.chunks and len(versions) == 2
    assert store.file_hashes([old.doc_id]) == {old.doc_id: old_hash}
    info = store.document(old.doc_id)
    assert info is not None and info.file_hash == old_hash
    assert old.doc_id in _listed(live_stack, key)
    found = _search(live_stack, key, "what does a red beacon on panel P2 mean")
    assert "low suction pressure" in found
    assert "2.5 bar" in _search(live_stack, key, "gauge pressure before the priming pump starts")
    # and it is deletable, whole: the partial new chunks with it
    response = _delete(live_stack, key, old.doc_id)
    assert response.status_code == 200, response.text
    assert response.json()["chunks_deleted"] == sum(versions.values())
    assert store.count_document(old.doc_id) == 0
    assert old.doc_id not in _listed(live_stack, key)


def test_a_replace_that_fails_mid_write_takes_back_its_partial_chunks_and_a_retry_settles(
    live_stack: LiveStack, tmp_path: Path
) -> None:
    group = "pump-station-2"
    key = _key(live_stack, "pump-operator-2", group)
    store = live_stack.components.store
    assert isinstance(store, WeaviateStore)
    [old] = _ingest(live_stack, store, _manual(tmp_path, 1), group).files

    class FailsSecondWrite:  # the store refuses the second write request; deletes still work
        writes = 0

        def upsert(self, chunks: Sequence[Chunk], vectors: Sequence[Sequence[float]]) -> int:
            self.writes += 1
            if self.writes == 2:
                raise HoldfastError("injected: the second write request fails")
            return store.upsert(chunks, vectors)

        def __getattr__(self, name: str) -> Any:
            return getattr(store, name)

    with pytest.raises(HoldfastError, match="injected"):
        _ingest(live_stack, FailsSecondWrite(), _manual(tmp_path, 2), group)
    [old_hash] = _versions(store, old.doc_id)
    assert _versions(store, old.doc_id) == {old_hash: old.chunks}  # old whole, nothing new
    assert "low suction pressure" in _search(live_stack, key, "red beacon on panel P2")
    [new] = _ingest(live_stack, store, _manual(tmp_path, 2), group).files
    assert new.status == "indexed" and new.stale_deleted == old.chunks
    versions = _versions(store, old.doc_id)
    assert old_hash not in versions and sum(versions.values()) == new.chunks
    found = _search(live_stack, key, "red beacon on panel P2")
    assert "seal leakage" in found and "low suction pressure" not in found
    assert _delete(live_stack, key, old.doc_id).json()["chunks_deleted"] == new.chunks


def _memo(folder: Path, name: str, topic: str) -> Path:
    path = folder / f"{name}.md"
    path.write_text(
        f"# {topic.title()} memo\n\nThe {topic} audit for the east wing is due on 4 May; "
        f"send the {topic} checklist to facilities before then.\n",
        encoding="utf-8",
    )
    return path


class TimedFence(SqliteWriteFence):
    """The installation's real fence file, noting when the fence came down."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.lowered: list[float] = []

    def lower_fence(self, token: str) -> None:
        super().lower_fence(token)
        self.lowered.append(time.monotonic())


def test_a_reindex_and_its_rollback_with_concurrent_deletes_resurrect_nothing(
    live_stack: LiveStack, tmp_path: Path
) -> None:
    c = live_stack.components
    store = c.store
    assert isinstance(store, WeaviateStore)
    group = "east-wing"
    key = _key(live_stack, "facilities", group)
    docs = {
        topic: _ingest(live_stack, store, _memo(tmp_path, topic, topic), group).files[0].doc_id
        for topic in ("asbestos", "boiler", "chiller", "elevator")
    }
    shared = write_fence_for(live_stack.settings)  # the file the gateway's writers lease from
    assert isinstance(shared, SqliteWriteFence)
    fence = TimedFence(shared.path)
    total: list[int] = []
    copied: list[int] = []
    during: list[tuple[int, str, float]] = []

    def delete_during_copy(n: int) -> None:
        copied.append(n)
        if sum(copied) >= total[0] and not during:  # everything copied: only a re-sync knows
            assert store.delete_document(docs["asbestos"]) > 0
            during.append((0, "copy", time.monotonic()))

    def delete_behind_fence() -> None:
        response = _delete(live_stack, key, docs["boiler"])
        during.append((response.status_code, response.text, time.monotonic()))

    fenced_delete: list[threading.Thread] = []

    def jobs_busy() -> str | None:
        if fence.fence_holder() and not fenced_delete:  # the last re-sync is about to run
            fenced_delete.append(threading.Thread(target=delete_behind_fence))
            fenced_delete[0].start()
            time.sleep(1.0)  # the DELETE is in, and waiting
        return None

    result = reindex(
        store,
        c.embedder,
        embedding_model=PACKAGED_EMBEDDER,
        jobs_busy=jobs_busy,
        identity=Identity(id_key(live_stack.settings)),
        batch_size=64,
        fence=fence,
        on_total=total.append,
        on_progress=delete_during_copy,
    )
    fenced_delete[0].join(30)
    assert result.switched and store.alias_target() == result.shadow
    [(_, _, _), (status, text, answered)] = during
    assert status == 200, text
    assert answered > fence.lowered[0]  # it waited for the switch, then deleted in the new one
    live = result.shadow
    assert store.count_document(docs["asbestos"]) == store.count_document(docs["boiler"]) == 0
    # after the switch: one more delete, and a new document
    assert _delete(live_stack, key, docs["chiller"]).status_code == 200
    late = _ingest(live_stack, store, _memo(tmp_path, "fountain", "fountain"), group).files[0]
    assert late.status == "indexed"
    back = rollback(store, load_embedder=lambda record: c.embedder, fence=fence, batch_size=64)
    assert (back.source, back.target) == (live, result.source)
    assert store.alias_target() == result.source
    assert back.synced >= late.chunks + 1
    for topic in ("asbestos", "boiler", "chiller"):
        assert store.count_document(docs[topic]) == 0, topic  # nothing resurrected
    assert store.count_document(docs["elevator"]) > 0 and store.count_document(late.doc_id) > 0
    listed = _listed(live_stack, key)
    assert listed == {docs["elevator"], late.doc_id}
    found = _search(live_stack, key, "audit for the east wing checklist")
    assert "fountain" in found and "elevator" in found
    assert not any(t in found for t in ("asbestos", "boiler", "chiller"))
