"""The reindex procedure against an in-memory ``VersionedIndex``: every chunk copied with its id
and properties and a new vector, writes during the copy re-synced, the gate's refusal kept, one
generation back kept for a rollback. The real Weaviate runs in tests/integration/test_reindex."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from gateway.models.reindex import (
    GateVerdict,
    ReindexRefusedError,
    ReindexResult,
    drop_old,
    reindex,
    rollback,
)
from ingestion.identity import Identity, legacy_doc_id
from ingestion.pipeline import embedding_input
from services.errors import ConfigError
from services.records import HealthStatus, IndexRecord, SearchHit, StoredChunk
from services.weaviate_common import chunk_from

pytestmark = pytest.mark.unit

ALIAS = "Chunks"


class MemoryIndex:
    """Physical collections as dicts uuid -> (properties, vector), behind one alias."""

    schema_version = 2

    def __init__(self) -> None:
        self.alias = ALIAS
        self.collections: dict[str, dict[str, tuple[dict[str, Any], list[float]]]] = {}
        self.records: dict[str, IndexRecord] = {}
        self.target: str | None = None

    def alias_target(self) -> str | None:
        return self.target

    def index_records(self) -> list[IndexRecord]:
        return list(self.records.values())

    def live_record(self) -> IndexRecord | None:
        return self.records.get(self.target or "")

    def create_index(self, *, embedding_model: str, dimensions: int) -> str:
        name = f"{ALIAS}_{len(self.records) + 1}"
        self.collections[name] = {}
        self.records[name] = IndexRecord(name, embedding_model, dimensions, 2)
        return name

    def point_alias(self, target: str) -> str | None:
        before, self.target = self.target, target
        return before

    def drop_index(self, name: str) -> None:
        if name == self.target:
            raise ConfigError("live")
        del self.collections[name], self.records[name]

    def count_in(self, name: str) -> int:
        return len(self.collections[name])

    def scan(self, name: str, *, page_size: int) -> Iterator[StoredChunk]:
        for uuid, (props, _) in list(self.collections[name].items()):
            yield StoredChunk(uuid, dict(props), chunk_from(props))

    def insert_raw(
        self, name: str, rows: Sequence[tuple[str, dict[str, Any], Sequence[float]]]
    ) -> int:
        for uuid, props, vector in rows:
            self.collections[name][uuid] = (dict(props), list(vector))
        return len(rows)

    def delete_ids(self, name: str, uuids: Sequence[str]) -> int:
        for uuid in uuids:
            self.collections[name].pop(uuid, None)
        return len(uuids)

    def object_id(self, chunk_id: str) -> str:
        return f"uuid-{chunk_id}"

    def search(self, **kwargs: Any) -> list[SearchHit]:
        return []

    # what a test does to the live collection meanwhile (an ingest through the alias)
    def write(self, uuid: str, text: str, groups: Sequence[str] = ("staff",)) -> None:
        assert self.target is not None
        props = {"chunk_id": uuid, "doc_id": "d", "text": text, "access_groups": list(groups)}
        self.collections[self.target][uuid] = (props, [0.0, 0.0])


class LengthEmbedder:
    """Two dimensions: the text's length, and 1."""

    dimensions = 2

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        return [[float(len(t)), 1.0] for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return [float(len(text)), 1.0]

    def count_tokens(self, text: str) -> int:
        return len(text)

    def health(self) -> HealthStatus:
        return HealthStatus("embedder", True)


class PreAliasIndex(MemoryIndex):
    """An install from before aliases: a plain collection named like the alias. As in Weaviate,
    making the alias deletes that collection first, and from then on the alias's name resolves to
    its target wherever a collection name is taken."""

    def __init__(self) -> None:
        super().__init__()
        self.collections[ALIAS] = {}
        self.records[ALIAS] = IndexRecord(ALIAS, "", 0, None)

    def point_alias(self, target: str) -> str | None:
        if self.target is None:
            del self.collections[ALIAS], self.records[ALIAS]
        return super().point_alias(target)

    def _resolved(self, name: str) -> str:
        return self.target if name == ALIAS and self.target is not None else name

    def count_in(self, name: str) -> int:
        return super().count_in(self._resolved(name))

    def scan(self, name: str, *, page_size: int) -> Iterator[StoredChunk]:
        return super().scan(self._resolved(name), page_size=page_size)

    def insert_raw(
        self, name: str, rows: Sequence[tuple[str, dict[str, Any], Sequence[float]]]
    ) -> int:
        return super().insert_raw(self._resolved(name), rows)

    def delete_ids(self, name: str, uuids: Sequence[str]) -> int:
        return super().delete_ids(self._resolved(name), uuids)


def _vector(props: dict[str, Any]) -> list[float]:
    """The vector ingestion would have written for these properties, with the new model."""
    return LengthEmbedder().embed_query(embedding_input(chunk_from(props)))


def _index(chunks: int = 5) -> MemoryIndex:
    index = MemoryIndex()
    index.create_index(embedding_model="old", dimensions=3)
    index.point_alias(f"{ALIAS}_1")
    for i in range(chunks):
        index.write(f"c{i}", f"text number {i}", groups=("staff", f"g{i % 2}"))
    return index


def _idle() -> str | None:
    return None


KEY = Identity(b"unit-test-id-key-0123456789")


def run(index: MemoryIndex, *, batch_size: int = 64, **kwargs: Any) -> ReindexResult:
    return reindex(index, LengthEmbedder(), identity=KEY, batch_size=batch_size, **kwargs)


def test_every_chunk_is_copied_with_its_id_and_properties_and_a_new_vector() -> None:
    index = _index()
    result = run(index, embedding_model="new", jobs_busy=_idle, batch_size=2)
    assert result.switched and index.target == result.shadow == f"{ALIAS}_2"
    assert result.source == f"{ALIAS}_1" and result.chunks == 5 and result.resynced == 0
    old, new = index.collections[result.source], index.collections[result.shadow]
    assert {u: p for u, (p, _) in new.items()} == {u: p for u, (p, _) in old.items()}
    assert all(v == _vector(p) for p, v in new.values())
    assert result.groups == ["g0", "g1", "staff"]
    assert index.records[result.shadow].embedding_model == "new"


def test_writes_during_the_copy_are_resynced_before_the_switch() -> None:
    index = _index()

    def meanwhile(done: int) -> None:
        if done and "late" not in index.collections[f"{ALIAS}_1"]:
            index.write("late", "written during the copy")  # new
            index.write("c0", "changed during the copy")  # changed
            del index.collections[f"{ALIAS}_1"]["c4"]  # deleted

    result = run(
        index,
        embedding_model="new",
        jobs_busy=_idle,
        batch_size=2,
        on_progress=meanwhile,
    )
    assert result.switched and result.resynced >= 2
    shadow = index.collections[result.shadow]
    assert set(shadow) == set(index.collections[result.source]) == {"c0", "c1", "c2", "c3", "late"}
    props, vector = shadow["c0"]
    assert props["text"] == "changed during the copy"
    assert vector == _vector(props)


def test_a_refused_gate_keeps_the_live_collection_and_leaves_the_shadow() -> None:
    index = _index()

    def gate(live: str, shadow: str, groups: list[str]) -> GateVerdict:
        return GateVerdict(live={"ndcg@10": 1.0}, shadow={"ndcg@10": 0.5}, failures=["worse"])

    result = run(index, embedding_model="new", jobs_busy=_idle, gate=gate)
    assert not result.switched and index.target == f"{ALIAS}_1"
    assert index.count_in(result.shadow) == 5  # kept for inspection
    forced = run(index, embedding_model="new", jobs_busy=_idle, gate=gate, force=True)
    assert forced.switched and forced.forced and index.target == forced.shadow
    assert result.shadow in forced.dropped  # the refused shadow goes at the next switch


def test_a_busy_ingest_queue_refuses_the_reindex_before_anything_is_created() -> None:
    index = _index()
    with pytest.raises(ReindexRefusedError, match="job-7"):
        run(index, embedding_model="new", jobs_busy=lambda: "job-7")
    assert list(index.records) == [f"{ALIAS}_1"]


def test_one_generation_back_is_kept_and_rollback_and_drop_old_use_it() -> None:
    index = _index()
    first = run(index, embedding_model="new", jobs_busy=_idle)
    second = run(index, embedding_model="newer", jobs_busy=_idle)
    assert second.dropped == [first.source]  # the oldest generation goes
    assert sorted(index.records) == [first.shadow, second.shadow]
    back = rollback(index, load_embedder=lambda record: LengthEmbedder())
    assert (back.source, back.target, back.synced) == (second.shadow, first.shadow, 0)
    assert index.target == first.shadow
    assert drop_old(index) == [second.shadow] and list(index.records) == [first.shadow]
    with pytest.raises(ReindexRefusedError):
        rollback(index, load_embedder=lambda record: LengthEmbedder())


def test_chunks_with_unkeyed_ids_move_to_keyed_ids_and_others_keep_theirs() -> None:
    """The migration of issue 16 item 2: a reindex re-derives unkeyed ids from what is stored."""
    index = _index(chunks=2)  # these carry ids that are not of the legacy form: kept as they are
    raw_sha = "ab" * 32
    legacy = {
        "chunk_id": "0123456789abcdef0123456789abcdef",
        "doc_id": legacy_doc_id("/srv/docs/phones.md"),
        "source": "/srv/docs/phones.md",
        "text": "Call <PHONE_NUMBER_1> for access.",
        "section": "Contacts",
        "position": 0,
        "content_hash": "unkeyed",
        "parent_id": "unkeyed",
        "file_hash": raw_sha,
        "access_groups": ["ops"],
    }
    index.collections[f"{ALIAS}_1"]["legacy"] = (legacy, [0.0, 0.0])
    result = run(index, embedding_model="same", jobs_busy=_idle)
    assert result.switched and result.rekeyed == 1 and result.chunks == 3
    shadow = index.collections[result.shadow]
    assert {"c0", "c1"} <= set(shadow) and "legacy" not in shadow
    [(uuid, (props, _))] = [(u, v) for u, v in shadow.items() if u not in {"c0", "c1"}]
    doc_id = KEY.doc_id("/srv/docs/phones.md", ["ops"])
    content_hash = KEY.content_hash(legacy["text"])
    assert props["doc_id"] == doc_id and props["content_hash"] == content_hash
    assert props["chunk_id"] == KEY.chunk_id(doc_id, 0, content_hash)
    assert uuid == f"uuid-{props['chunk_id']}"
    assert props["parent_id"] == KEY.parent_id(doc_id, "Contacts")
    # keyed as ingestion keys a file's bytes (a re-upload of a format whose parser has been
    # revised since counts as changed, and is parsed again)
    assert props["file_hash"] == KEY.file_hash(raw_sha)
    again = run(index, embedding_model="same", jobs_busy=_idle)
    assert again.rekeyed == 0  # idempotent: keyed ids are never keyed twice


def _unkeyed(source: str, position: int, text: str) -> dict[str, Any]:
    """A chunk as releases before keyed ids stored it."""
    return {
        "chunk_id": f"{legacy_doc_id(source)}-{position}",
        "doc_id": legacy_doc_id(source),
        "source": source,
        "text": text,
        "position": position,
        "access_groups": ["staff"],
    }


def test_migrating_a_pre_alias_collection_keeps_every_chunk_moved_to_keyed_ids() -> None:
    """The old collection has the alias's name: after the switch that name reads the new
    collection, so a re-sync from it would take every rekeyed chunk for deleted."""
    index = PreAliasIndex()
    for i in range(3):
        index.collections[ALIAS][f"old-{i}"] = (_unkeyed("/docs/a.md", i, f"text {i}"), [0.0])
    result = run(index, embedding_model="new", jobs_busy=_idle)
    assert result.switched and result.source == ALIAS and result.rekeyed == 3
    assert index.target == result.shadow and ALIAS not in index.collections
    assert index.count_in(ALIAS) == 3 and result.resynced == 0
