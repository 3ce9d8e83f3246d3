"""The Weaviate adapter's pure parts: cosine of search hits, the record a collection keeps, the
chunk <-> properties mapping, and a constructor that does no I/O (no Weaviate here)."""

from __future__ import annotations

import dataclasses
import math
import time
from datetime import UTC, datetime

import pytest

from services.errors import AccessDeniedError, BackendTimeoutError, StoreUnavailableError
from services.records import Chunk, IndexRecord
from services.weaviate_common import (
    SCHEMA_VERSION,
    WeaviateConnection,
    chunk_from,
    chunk_properties,
    cosines,
    record_from,
    schema_description,
)
from services.weaviate_store import CONNECT_RETRY_S, WeaviateStore

pytestmark = pytest.mark.unit


def _store() -> WeaviateStore:
    # a port nothing listens on: any I/O would fail loudly
    connection = WeaviateConnection(
        host="127.0.0.1",
        http_port=9,
        grpc_port=9,
        api_key="k",
        collection="Chunks",
        query_timeout_s=0.1,
        insert_timeout_s=0.1,
        init_timeout_s=0.1,
        health_timeout_s=0.1,
    )
    return WeaviateStore(
        connection,
        section_fetch_limit=10,
        twins_per_hash=5,
        max_query_results=100,
        route_ttl_s=1.0,
    )


def test_cosines_score_each_stored_vector_in_order() -> None:
    query = [1.0, 2.0, 2.0]
    stored: list[list[float] | None] = [[1.0, 2.0, 2.0], [2.0, -1.0, 0.0], [3.0, 0.0, 4.0]]
    scores = cosines(query, stored)
    assert scores[0] == pytest.approx(1.0)
    assert scores[1] == pytest.approx(0.0)
    assert scores[2] == pytest.approx((3.0 + 8.0) / (3.0 * 5.0))
    assert all(isinstance(s, float) for s in scores)


def test_a_hit_without_a_vector_or_with_a_zero_vector_scores_zero() -> None:
    scores = cosines([1.0, 0.0], [None, [0.0, 0.0], [], [0.0, 3.0], [2.0, 0.0]])
    assert scores == [0.0, 0.0, 0.0, pytest.approx(0.0), pytest.approx(1.0)]
    assert cosines([0.0, 0.0], [[1.0, 1.0]]) == [0.0]
    assert cosines([1.0], []) == []


def test_cosines_refuse_vectors_of_other_dimensions() -> None:
    with pytest.raises(ValueError, match="dims"):
        cosines([1.0, 0.0, 0.0], [[1.0, 0.0]])


def test_cosines_agree_with_the_textbook_formula_on_real_sized_vectors() -> None:
    query = [math.sin(i) for i in range(384)]
    other = [math.cos(i / 3) for i in range(384)]
    dot = sum(a * b for a, b in zip(query, other, strict=True))
    expected = dot / (math.sqrt(sum(a * a for a in query)) * math.sqrt(sum(b * b for b in other)))
    assert cosines(query, [other])[0] == pytest.approx(expected, abs=1e-12)


def test_a_collection_record_round_trips_through_its_description() -> None:
    record = record_from("Chunks_3", schema_description("local/bge-small", 384))
    assert record == IndexRecord("Chunks_3", "local/bge-small", 384, SCHEMA_VERSION)
    assert record.built_for("local/bge-small", 384)
    assert not record.built_for("local/bge-small", 768)
    assert not record.built_for("ollama/nomic", 384)
    assert record.built_for("", 0)  # nothing expected: any collection will do


@pytest.mark.parametrize("description", [None, "", "not json", "[1, 2]"])
def test_a_collection_from_before_schema_records_has_an_empty_record(
    description: str | None,
) -> None:
    assert record_from("Chunks", description) == IndexRecord("Chunks", "", 0, None)


def test_a_chunk_round_trips_through_its_stored_properties() -> None:
    chunk = Chunk(
        chunk_id="c1",
        doc_id="d1",
        text="Badges are renewed every spring.",
        source="handbook.md",
        title="Handbook",
        section="Badges",
        position=2,
        content_hash="h",
        access_groups=("staff", "hr"),
        parent_id="p1",
        doc_type="markdown",
        page=3,
        modified_at=datetime(2024, 5, 1, tzinfo=UTC),
        ingested_at=datetime(2024, 5, 2, tzinfo=UTC),
        page_end=4,
        file_hash="f",
    )
    props = chunk_properties(chunk)
    assert props["access_groups"] == ["staff", "hr"]
    assert chunk_from(props) == chunk


def test_the_store_constructor_does_no_io_and_search_refuses_an_empty_group_set() -> None:
    store = _store()
    assert store.alias == "Chunks"
    with pytest.raises(AccessDeniedError):
        store.search(groups=["", ""], query="q", vector=[1.0], limit=3, alpha=0.5)
    assert store.section_chunks(groups=[], parent_ids=["p1"]) == []
    assert store.section_chunks(groups=["staff"], parent_ids=[]) == []
    store.close()  # never opened: nothing to close


def test_health_reports_an_unreachable_server_without_raising() -> None:
    status = _store().health()
    assert status.name == "weaviate" and not status.ok


def test_searches_bring_back_every_property_but_the_dates() -> None:
    """A property added to the schema must be added to HIT_PROPERTIES (or left out on purpose
    here): a search that silently dropped it would hand callers chunks without it."""
    from weaviate.classes.config import DataType

    from services.weaviate_store import HIT_PROPERTIES
    from services.weaviate_versions import chunk_properties_schema

    schema = chunk_properties_schema()
    dates = {p.name for p in schema if p.dataType == DataType.DATE}
    assert dates == {"modified_at", "ingested_at"}
    assert set(HIT_PROPERTIES) == {p.name for p in schema} - dates


def _waiting_store(wait_s: float) -> WeaviateStore:
    """Ports 9 and 10 on loopback: nothing listens, so every connection is refused at once."""
    connection = dataclasses.replace(_store()._conn, grpc_port=10, connect_wait_s=wait_s)
    return WeaviateStore(
        connection, section_fetch_limit=10, twins_per_hash=5, max_query_results=100, route_ttl_s=1
    )


def test_start_up_waits_for_a_weaviate_that_is_still_starting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On a cluster the gateway's pod may start before Weaviate's: it retries instead of
    exiting into the kubelet's back-off."""
    store = _waiting_store(60.0)
    outcomes = [StoreUnavailableError("refused"), BackendTimeoutError("init"), None]

    def open_once() -> None:
        outcome = outcomes.pop(0)
        if outcome is not None:
            raise outcome

    monkeypatch.setattr(store._client, "open", open_once)
    slept: list[float] = []
    store.warm_up(wait=True, sleep=slept.append)
    assert outcomes == [] and slept == [CONNECT_RETRY_S, CONNECT_RETRY_S]


def test_start_up_gives_up_on_an_unreachable_weaviate_after_its_wait() -> None:
    store = _waiting_store(0.3)
    slept: list[float] = []
    started = time.monotonic()
    with pytest.raises(StoreUnavailableError, match="connect"):
        store.warm_up(wait=True, sleep=lambda s: (slept.append(s), time.sleep(min(s, 0.05))))
    assert len(slept) >= 1 and all(0 < s <= CONNECT_RETRY_S for s in slept)
    assert time.monotonic() - started < 10


@pytest.mark.parametrize(("wait", "wait_s"), [(True, 0.0), (False, 60.0)])
def test_a_one_off_command_or_no_wait_fails_at_once(wait: bool, wait_s: float) -> None:
    """``holdfast reindex`` with the stack down says so at once instead of waiting."""
    slept: list[float] = []
    with pytest.raises(StoreUnavailableError):
        _waiting_store(wait_s).warm_up(wait=wait, sleep=slept.append)
    assert slept == []


def test_kept_hit_vectors_are_dropped_when_the_process_reads_for_another_model() -> None:
    from services.vector_cache import VectorKey

    store = WeaviateStore(
        dataclasses.replace(_store()._conn, grpc_port=10),
        section_fetch_limit=10,
        twins_per_hash=5,
        max_query_results=100,
        route_ttl_s=1.0,
        hit_vector_cache=8,
    )
    kept = store._hit_vectors
    kept.keep(VectorKey("Chunks", ":0", "a", "T", "S", "h"), [1.0, 0.0])
    with pytest.raises(StoreUnavailableError):  # the unreachable Weaviate fails the call
        store.ensure_schema(embedding_model="minilm", dimensions=2)
    assert len(kept) == 0
    assert store.hit_vector_lookups == (0, 0)
