"""A search's similarities come from the hits' stored vectors, whether the store brought them
with the hits (no cache) or kept them from an earlier search (``services/vector_cache.py``),
on the real stack's Weaviate with the packaged embedder. A chunk rewritten in place under
another title is never scored with its old vector."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import numpy as np
import pytest

from gateway.container import build_store
from services.records import Chunk
from services.weaviate_store import WeaviateStore
from tests.integration.conftest import LiveStack

pytestmark = pytest.mark.integration

GROUP = "hit-vectors"
DOC = "hit-vectors-doc"
QUESTION = "How often is the lighthouse lamp serviced?"


def _cosine(a: list[float], b: list[float]) -> float:
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(x @ y / (np.linalg.norm(x) * np.linalg.norm(y)))


def _chunk(text: str) -> Chunk:
    return Chunk(
        chunk_id=f"{DOC}-0",
        doc_id=DOC,
        text=text,
        source="lighthouse.md",
        title="Lighthouse keeping",
        section="Lamp",
        position=0,
        content_hash="lamp-v1",
        access_groups=(GROUP,),
        parent_id=f"{DOC}-lamp",
    )


def _store_lamp(store: WeaviateStore, live_stack: LiveStack) -> tuple[Chunk, list[float]]:
    """The lamp chunk written with its real vector, and the question's vector."""
    embedder = live_stack.components.embedder
    chunk = _chunk("The lighthouse lamp is serviced every six months by the keeper.")
    stored = embedder.embed_documents([chunk.text])[0]
    store.upsert([chunk], [stored])
    return chunk, stored


@pytest.fixture
def stores(live_stack: LiveStack) -> Iterator[tuple[WeaviateStore, WeaviateStore]]:
    """A store that keeps hit vectors and one that brings them with every search."""
    settings = live_stack.settings
    cached = build_store(settings)
    uncached = build_store(
        settings.model_copy(
            update={"weaviate": settings.weaviate.model_copy(update={"hit_vector_cache": 0})}
        )
    )
    for store in (cached, uncached):
        store.warm_up()
    try:
        yield cached, uncached
    finally:
        cached.delete_document(DOC)
        cached.close()
        uncached.close()


def test_similarities_from_kept_vectors_equal_those_from_vectors_brought_with_the_hits(
    live_stack: LiveStack, stores: tuple[WeaviateStore, WeaviateStore]
) -> None:
    cached, uncached = stores
    chunk, stored = _store_lamp(cached, live_stack)
    question = live_stack.components.embedder.embed_query(QUESTION)

    def search(store: WeaviateStore) -> float:
        hits = store.search(groups=[GROUP], query=QUESTION, vector=question, limit=5, alpha=0.75)
        assert [h.chunk.chunk_id for h in hits] == [chunk.chunk_id]
        return hits[0].similarity

    expected = _cosine(question, stored)
    assert expected > 0.3  # a real match, not a zero vector
    brought = search(uncached)
    fetched = search(cached)  # not kept yet: fetched by id
    kept = search(cached)  # kept from the search before
    assert brought == pytest.approx(expected, abs=1e-5)
    assert fetched == brought
    assert kept == brought
    assert cached._hit_vectors.hits >= 1


def test_a_chunk_rewritten_in_place_with_another_heading_is_scored_with_its_new_vector(
    live_stack: LiveStack, stores: tuple[WeaviateStore, WeaviateStore]
) -> None:
    cached, _ = stores
    embedder = live_stack.components.embedder
    chunk, _ = _store_lamp(cached, live_stack)
    question = embedder.embed_query(QUESTION)
    before = cached.search(groups=[GROUP], query=QUESTION, vector=question, limit=5, alpha=0.75)
    # the same object (same id, same body), now under another title, embedded afresh
    moved = replace(chunk, title="Harbour accounts")
    vector = embedder.embed_documents(["Harbour accounts: fees, invoices and tax returns."])[0]
    cached.upsert([moved], [vector])
    after = cached.search(groups=[GROUP], query=QUESTION, vector=question, limit=5, alpha=0.75)
    assert [h.chunk.title for h in after] == ["Harbour accounts"]
    assert after[0].similarity == pytest.approx(_cosine(question, vector), abs=1e-5)
    assert after[0].similarity != pytest.approx(before[0].similarity, abs=1e-3)
