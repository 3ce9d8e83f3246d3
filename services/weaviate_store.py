"""Weaviate adapter: the one place chunks are written and searched.

The access filter lives inside the Weaviate query. ``search`` takes the caller's groups as a
required keyword argument and refuses an empty set, so an unfiltered search cannot be expressed.
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import httpx
import weaviate
from weaviate.classes.aggregate import GroupByAggregate
from weaviate.classes.config import Configure, DataType, Property, Tokenization, VectorDistances
from weaviate.classes.data import DataObject
from weaviate.classes.init import AdditionalConfig, Auth, Timeout
from weaviate.classes.query import Filter, HybridFusion, MetadataQuery, Sort
from weaviate.exceptions import WeaviateBaseError, WeaviateTimeoutError
from weaviate.util import generate_uuid5

from services.errors import (
    AccessDeniedError,
    BackendTimeoutError,
    ConfigError,
    StoreUnavailableError,
)
from services.records import Chunk, DocumentInfo, FieldFilter, HealthStatus, SearchHit

log = logging.getLogger("holdfast.store")

_EXACT = Tokenization.FIELD  # ids and group names must match whole, never word by word
_PROSE = Tokenization.WORD
SCHEMA_VERSION = 2
ROUTE_TTL_S = 2.0  # how long a read of the alias target and its record is trusted


class IndexModelMismatchError(StoreUnavailableError):
    """The collection behind the alias was embedded with another model than the configured one:
    its vectors and the query's would not be comparable, so nothing is searched or written."""

    code, title = "index_model_mismatch", "The index was built with another embedding model"


@dataclass(frozen=True, slots=True)
class IndexRecord:
    """One physical chunk collection and what it records about itself."""

    name: str
    embedding_model: str
    dimensions: int
    schema_version: int | None

    def built_for(self, embedding_model: str, dimensions: int) -> bool:
        return (not embedding_model or self.embedding_model == embedding_model) and (
            not dimensions or self.dimensions == dimensions
        )


@dataclass(frozen=True, slots=True)
class WeaviateConnection:
    host: str
    http_port: int
    grpc_port: int
    api_key: str
    collection: str
    query_timeout_s: float = 30.0
    insert_timeout_s: float = 90.0
    init_timeout_s: float = 5.0
    health_timeout_s: float = 1.0


@contextmanager
def _translated(action: str) -> Iterator[None]:
    """Turn any Weaviate client error into Holdfast's hierarchy, keeping the cause."""
    try:
        yield
    except WeaviateTimeoutError as exc:
        raise BackendTimeoutError(f"weaviate timed out during {action}") from exc
    except WeaviateBaseError as exc:
        raise StoreUnavailableError(
            f"weaviate failed during {action}: {type(exc).__name__}"
        ) from exc


def _chunk_properties(chunk: Chunk) -> dict[str, Any]:
    props: dict[str, Any] = {
        "chunk_id": chunk.chunk_id,
        "doc_id": chunk.doc_id,
        "text": chunk.text,
        "source": chunk.source,
        "title": chunk.title,
        "section": chunk.section,
        "position": chunk.position,
        "content_hash": chunk.content_hash,
        "access_groups": list(chunk.access_groups),
        "parent_id": chunk.parent_id,
        "doc_type": chunk.doc_type,
        "ingested_at": chunk.ingested_at or datetime.now(UTC),
    }
    if chunk.page is not None:
        props["page"] = chunk.page
    if chunk.modified_at is not None:
        props["modified_at"] = chunk.modified_at
    if chunk.page_end is not None:
        props["page_end"] = chunk.page_end
    props["file_hash"] = chunk.file_hash
    return props


def _chunk_from(props: dict[str, Any]) -> Chunk:
    return Chunk(
        chunk_id=str(props["chunk_id"]),
        doc_id=str(props["doc_id"]),
        text=str(props["text"]),
        source=str(props.get("source") or ""),
        title=str(props.get("title") or ""),
        section=str(props.get("section") or ""),
        position=int(props.get("position") or 0),
        content_hash=str(props.get("content_hash") or ""),
        access_groups=tuple(props.get("access_groups") or ()),
        parent_id=str(props.get("parent_id") or ""),
        doc_type=str(props.get("doc_type") or ""),
        page=props.get("page"),
        modified_at=props.get("modified_at"),
        ingested_at=props.get("ingested_at"),
        page_end=props.get("page_end"),
        file_hash=str(props.get("file_hash") or ""),
    )


def chunk_from_properties(props: dict[str, Any]) -> Chunk:
    """A stored object's properties as a ``Chunk`` (a reindex re-embeds what ingestion did)."""
    return _chunk_from(props)


def _document_from(p: dict[str, Any]) -> DocumentInfo:
    return DocumentInfo(
        doc_id=str(p["doc_id"]),
        source=str(p.get("source") or ""),
        title=str(p.get("title") or ""),
        doc_type=str(p.get("doc_type") or ""),
        access_groups=tuple(p.get("access_groups") or ()),
        file_hash=str(p.get("file_hash") or ""),
        ingested_at=p.get("ingested_at"),
    )


def _schema_description(embedding_model: str, dimensions: int) -> str:
    return json.dumps(
        {
            "holdfast_schema_version": SCHEMA_VERSION,
            "embedding_model": embedding_model,
            "embedding_dimensions": dimensions,
        },
        sort_keys=True,
    )


def _record_from(name: str, description: str | None) -> IndexRecord:
    try:
        recorded = json.loads(description) if description else {}
    except ValueError:
        recorded = {}
    if not isinstance(recorded, dict):
        recorded = {}
    version = recorded.get("holdfast_schema_version")
    return IndexRecord(
        name=name,
        embedding_model=str(recorded.get("embedding_model") or ""),
        dimensions=int(recorded.get("embedding_dimensions") or 0),
        schema_version=int(version) if version is not None else None,
    )


def _weaviate_filter(condition: FieldFilter) -> Any:
    """A validated FieldFilter as a Weaviate filter (values are parameters, never query text)."""
    prop = Filter.by_property(condition.field)
    value: Any = condition.value
    if condition.op == "in":
        return prop.contains_any([str(v) for v in value] if isinstance(value, tuple) else [value])
    method: Any = {
        "eq": prop.equal,
        "ne": prop.not_equal,
        "gt": prop.greater_than,
        "gte": prop.greater_or_equal,
        "lt": prop.less_than,
        "lte": prop.less_or_equal,
        "like": prop.like,
    }[condition.op]
    return method(value)


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


class WeaviateStore:
    """Chunks in one Weaviate collection, vectors brought by us (no vectorizer module)."""

    def __init__(self, connection: WeaviateConnection) -> None:
        self._conn = connection
        self._client: weaviate.WeaviateClient | None = None
        self._expect: tuple[str, int] = ("", 0)  # the embedding model this process uses
        self._route_lock = threading.RLock()
        self._route_cache: tuple[float, str | None, str | None] | None = None

    # --- lifecycle -------------------------------------------------------------------------

    def warm_up(self) -> None:
        if self._client is not None:
            return
        conn = self._conn
        with _translated("connect"):
            client = weaviate.connect_to_custom(
                http_host=conn.host,
                http_port=conn.http_port,
                http_secure=False,
                grpc_host=conn.host,
                grpc_port=conn.grpc_port,
                grpc_secure=False,
                auth_credentials=Auth.api_key(conn.api_key),
                additional_config=AdditionalConfig(
                    timeout=Timeout(
                        init=conn.init_timeout_s,
                        query=conn.query_timeout_s,
                        insert=conn.insert_timeout_s,
                    )
                ),
                skip_init_checks=True,  # the init checks call a package index; we are offline
            )
        self._client = client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    @property
    def _live(self) -> weaviate.WeaviateClient:
        if self._client is None:
            self.warm_up()
        assert self._client is not None
        return self._client

    # --- schema ----------------------------------------------------------------------------

    def ensure_schema(self, *, embedding_model: str = "", dimensions: int = 0) -> None:
        """Create the first versioned collection and the alias in front of it (idempotent).

        The configured name is an alias; reads and writes go through it, and ``holdfast reindex``
        repoints it. Each physical collection's description records the schema version and the
        embedding model id and dimension it was built with. The model given here is the one this
        process embeds with: a live collection built with another one is not refused here, but
        every search and write then fails fast (``IndexModelMismatchError``).
        """
        client = self._live
        alias = self._conn.collection
        with self._route_lock:
            self._expect = (embedding_model, dimensions)
            self._route_cache = None
        with _translated("ensure_schema"):
            target = self.alias_target()
            if target is None:
                if alias in client.collections.list_all(simple=True):
                    raise ConfigError(
                        f"collection {alias} predates versioned collections: run "
                        "`holdfast reindex` once to copy it into a versioned collection behind "
                        f"the alias {alias} (the old collection is deleted after the copy)"
                    )
                name = self.create_index(embedding_model=embedding_model, dimensions=dimensions)
                try:
                    client.alias.create(alias_name=alias, target_collection=name)
                except WeaviateBaseError:
                    if self.alias_target() is None:  # not a concurrent start that won the race
                        raise
                    client.collections.delete(name)
                return
            config = client.collections.use(target).config.get()
            self._check_recorded(config.description or "", embedding_model, dimensions)

    def _create_physical(self, name: str, description: str) -> None:
        self._live.collections.create(
            name,
            description=description,
            vector_config=Configure.Vectors.self_provided(
                vector_index_config=Configure.VectorIndex.hnsw(
                    distance_metric=VectorDistances.COSINE
                )
            ),
            inverted_index_config=Configure.inverted_index(index_timestamps=False),
            properties=[
                Property(name="chunk_id", data_type=DataType.TEXT, tokenization=_EXACT),
                Property(name="doc_id", data_type=DataType.TEXT, tokenization=_EXACT),
                Property(name="text", data_type=DataType.TEXT, tokenization=_PROSE),
                Property(name="source", data_type=DataType.TEXT, tokenization=_EXACT),
                Property(name="title", data_type=DataType.TEXT, tokenization=_PROSE),
                Property(name="section", data_type=DataType.TEXT, tokenization=_PROSE),
                Property(name="position", data_type=DataType.INT),
                Property(name="content_hash", data_type=DataType.TEXT, tokenization=_EXACT),
                Property(name="file_hash", data_type=DataType.TEXT, tokenization=_EXACT),
                Property(name="access_groups", data_type=DataType.TEXT_ARRAY, tokenization=_EXACT),
                Property(name="parent_id", data_type=DataType.TEXT, tokenization=_EXACT),
                Property(name="doc_type", data_type=DataType.TEXT, tokenization=_EXACT),
                Property(name="page", data_type=DataType.INT),
                Property(name="page_end", data_type=DataType.INT),
                Property(name="modified_at", data_type=DataType.DATE),
                Property(name="ingested_at", data_type=DataType.DATE),
            ],
        )

    def _check_recorded(self, description: str, embedding_model: str, dimensions: int) -> None:
        try:
            recorded = json.loads(description) if description else {}
        except ValueError:
            recorded = {}
        if not isinstance(recorded, dict) or "holdfast_schema_version" not in recorded:
            return  # a collection from before schema records: accepted as it is
        if recorded["holdfast_schema_version"] != SCHEMA_VERSION:
            raise ConfigError(
                f"collection {self._conn.collection} has schema version "
                f"{recorded['holdfast_schema_version']}, this gateway needs {SCHEMA_VERSION}"
            )
        for key, want in (
            ("embedding_model", embedding_model),
            ("embedding_dimensions", dimensions),
        ):
            have = recorded.get(key)
            if want and have and have != want:
                log.error(
                    "collection %s was built with %s=%r, the configured one is %r: searches and "
                    "writes will fail until `holdfast reindex` re-embeds it",
                    self._conn.collection,
                    key,
                    have,
                    want,
                )

    def schema_record(self) -> dict[str, Any]:
        """What the collection records about itself (schema version, embedding model, dims)."""
        with _translated("schema_record"):
            target = self.alias_target() or self._conn.collection
            config = self._live.collections.use(target).config.get()
        try:
            recorded = json.loads(config.description or "{}")
        except ValueError:
            return {}
        return recorded if isinstance(recorded, dict) else {}

    # --- versioned collections behind the alias (reindex) ----------------------------------

    @property
    def alias(self) -> str:
        """The configured collection name: an alias in front of the versioned collections."""
        return self._conn.collection

    @property
    def schema_version(self) -> int:
        return SCHEMA_VERSION

    def alias_target(self) -> str | None:
        """The physical collection the configured name points at, or None before the first."""
        with _translated("alias"):
            found = self._live.alias.get(alias_name=self._conn.collection)
        return found.collection if found is not None else None

    def index_records(self) -> list[IndexRecord]:
        """Every physical chunk collection of this alias (``<alias>_<n>``, and a pre-alias
        collection named like the alias), oldest first."""
        alias = self._conn.collection
        pattern = re.compile(rf"^{re.escape(alias)}(?:_(\d+))?$")
        with _translated("list collections"):
            configs = self._live.collections.list_all(simple=False)
        found: list[tuple[int, IndexRecord]] = []
        for name, config in configs.items():
            match = pattern.match(name)
            if match is None:
                continue
            found.append((int(match.group(1) or 0), _record_from(name, config.description)))
        return [record for _, record in sorted(found, key=lambda pair: pair[0])]

    def live_record(self) -> IndexRecord | None:
        """The record of the collection that searches read now."""
        target = self.alias_target()
        return next((r for r in self.index_records() if r.name == target), None)

    def create_index(self, *, embedding_model: str, dimensions: int) -> str:
        """A new, empty physical collection ``<alias>_<n+1>`` recording the model; its name."""
        used = [0]
        for record in self.index_records():
            tail = record.name[len(self._conn.collection) + 1 :]
            used.append(int(tail) if tail.isdigit() else 0)
        name = f"{self._conn.collection}_{max(used) + 1}"
        with _translated("create collection"):
            self._create_physical(name, _schema_description(embedding_model, dimensions))
        return name

    def point_alias(self, target: str) -> str | None:
        """Repoint the alias at ``target`` in one step (Weaviate swaps it atomically); returns
        the collection it pointed at before. A pre-alias collection of the same name is deleted
        first, since an alias cannot shadow a collection (that move has a short gap)."""
        client = self._live
        alias = self._conn.collection
        with _translated("point alias"):
            before = self.alias_target()
            if before is None:
                if client.collections.exists(alias):
                    client.collections.delete(alias)
                client.alias.create(alias_name=alias, target_collection=target)
            else:
                client.alias.update(alias_name=alias, new_target_collection=target)
        with self._route_lock:
            self._route_cache = None
        return before

    def drop_index(self, name: str) -> None:
        """Delete a physical collection that the alias does not point at."""
        if name == self.alias_target():
            raise ConfigError(f"{name} is the live collection; it cannot be dropped")
        if name not in {r.name for r in self.index_records()}:
            raise ConfigError(f"{name} is not a chunk collection of {self._conn.collection}")
        with _translated("drop collection"):
            self._live.collections.delete(name)

    def count_in(self, name: str) -> int:
        with _translated("count"):
            total = self._live.collections.use(name).aggregate.over_all(total_count=True)
        return int(total.total_count or 0)

    def scan(self, name: str, *, page_size: int = 256) -> Iterator[tuple[str, dict[str, Any]]]:
        """Every object of physical collection ``name`` as (uuid, properties), with the
        client's cursor iterator (no offset limit, constant memory)."""
        collection = self._live.collections.use(name)
        with _translated("scan"):
            for obj in collection.iterator(cache_size=page_size):
                yield str(obj.uuid), dict(obj.properties)

    def insert_raw(
        self, name: str, rows: Sequence[tuple[str, dict[str, Any], Sequence[float]]]
    ) -> int:
        """Write (uuid, properties, vector) rows as they are into physical collection ``name``
        (a reindex keeps every id and property; only the vector is new)."""
        if not rows:
            return 0
        objects = [
            DataObject(properties=props, uuid=uuid, vector=list(vector))
            for uuid, props, vector in rows
        ]
        with _translated("insert"):
            result = self._live.collections.use(name).data.insert_many(objects)
        if result.has_errors:
            first = next(iter(result.errors.values()))
            raise StoreUnavailableError(
                f"weaviate rejected {len(result.errors)} of {len(objects)} chunks: {first.message}"
            )
        return len(objects)

    def delete_ids(self, name: str, uuids: Sequence[str]) -> int:
        """Delete objects of physical collection ``name`` by uuid."""
        if not uuids:
            return 0
        with _translated("delete"):
            result = self._live.collections.use(name).data.delete_many(
                where=Filter.by_id().contains_any(list(uuids))
            )
        return int(result.successful)

    def _route(self) -> tuple[str | None, str | None]:
        """(collection to read, why writes are refused or None), cached for ``ROUTE_TTL_S``.

        Normally (the alias, None). If the alias points at a collection built with another
        model than this process embeds with (a reindex switched it and this process has not
        reloaded models.yaml yet, or the model was changed without a reindex), reads go to the
        newest collection still built with this process's model (kept for rollback) and writes
        are refused; with no such collection, reads are refused too.
        """
        with self._route_lock:
            model, dims = self._expect
            alias = self._conn.collection
            if not model and not dims:
                return alias, None
            now = time.monotonic()
            if self._route_cache is not None and now - self._route_cache[0] < ROUTE_TTL_S:
                return self._route_cache[1], self._route_cache[2]
            records = self.index_records()
            target = self.alias_target()
            live = next((r for r in records if r.name == target), None)
            if live is None or not live.embedding_model or live.built_for(model, dims):
                route: tuple[str | None, str | None] = (alias, None)
            else:
                older = [r for r in records if r.built_for(model, dims) and r.embedding_model]
                reason = (
                    f"the index {alias} ({live.name}) was built with embedding model "
                    f"{live.embedding_model!r} ({live.dimensions} dims) but the configured "
                    f"embedding alias uses {model!r} ({dims} dims): run `holdfast reindex` to "
                    "re-embed the chunks with the configured model, or reload models.yaml "
                    f"with {live.embedding_model!r}"
                )
                route = (older[-1].name if older else None, reason)
                if older:
                    log.warning("%s; reading from %s meanwhile", reason, older[-1].name)
            self._route_cache = (now, route[0], route[1])
            return route

    def _forget_route(self) -> bool:
        """Drop a cached route (True if there was one worth re-reading)."""
        with self._route_lock:
            had = self._route_cache is not None
            self._route_cache = None
        return had

    def _reads(self) -> Any:
        name, reason = self._route()
        if name is None:
            raise IndexModelMismatchError(str(reason))
        return self._live.collections.use(name)

    def _writes(self) -> Any:
        name, reason = self._route()
        if reason is not None:
            raise IndexModelMismatchError(str(reason))
        return self._live.collections.use(str(name))

    # --- writes ----------------------------------------------------------------------------

    def upsert(self, chunks: Sequence[Chunk], vectors: Sequence[Sequence[float]]) -> int:
        """Write chunks under UUIDs derived from their chunk ids, so a re-ingest overwrites."""
        if len(chunks) != len(vectors):
            raise ValueError("one vector per chunk")
        if not chunks:
            return 0
        for chunk in chunks:
            if not chunk.access_groups:
                raise AccessDeniedError(f"chunk {chunk.chunk_id} has no access groups")
        objects = [
            DataObject(
                properties=_chunk_properties(chunk),
                uuid=generate_uuid5(chunk.chunk_id),
                vector=list(vector),
            )
            for chunk, vector in zip(chunks, vectors, strict=True)
        ]
        collection = self._writes()
        with _translated("upsert"):
            result = collection.data.insert_many(objects)
        if result.has_errors:
            first = next(iter(result.errors.values()))
            raise StoreUnavailableError(
                f"weaviate rejected {len(result.errors)} of {len(objects)} chunks: {first.message}"
            )
        return len(objects)

    def delete_stale(self, doc_id: str, keep_chunk_ids: Sequence[str]) -> int:
        """Delete the chunks of ``doc_id`` that a newer version no longer has."""
        collection = self._writes()
        where = Filter.by_property("doc_id").equal(doc_id)
        if keep_chunk_ids:
            where = where & Filter.by_property("chunk_id").contains_none(list(keep_chunk_ids))
        with _translated("delete_stale"):
            result = collection.data.delete_many(where=where)
        return int(result.successful)

    def delete_document(self, doc_id: str) -> int:
        """Delete every chunk of ``doc_id``; returns how many were deleted."""
        collection = self._writes()
        with _translated("delete_document"):
            result = collection.data.delete_many(where=Filter.by_property("doc_id").equal(doc_id))
        return int(result.successful)

    # --- reads -----------------------------------------------------------------------------

    def _first_chunks(self, where: Any, limit: int, offset: int = 0) -> list[dict[str, Any]]:
        collection = self._reads()
        first = Filter.by_property("position").equal(0)
        with _translated("documents"):
            response = collection.query.fetch_objects(
                filters=first & where if where is not None else first,
                limit=limit,
                offset=offset,
                sort=Sort.by_property("doc_id"),
            )
        return [dict(obj.properties) for obj in response.objects]

    def document_hash(self, doc_id: str) -> str | None:
        """The file hash the indexed version of ``doc_id`` was built from, or None."""
        rows = self._first_chunks(Filter.by_property("doc_id").equal(doc_id), limit=1)
        return str(rows[0].get("file_hash") or "") if rows else None

    def documents_with_hash(self, file_hash: str) -> list[DocumentInfo]:
        """Indexed documents built from identical bytes (for dedup)."""
        rows = self._first_chunks(Filter.by_property("file_hash").equal(file_hash), limit=50)
        return [_document_from(p) for p in rows]

    def file_hashes(self, doc_ids: Sequence[str]) -> dict[str, str]:
        """doc_id -> file hash of the indexed version, for the indexed ones of ``doc_ids``
        (one query for a whole ingest batch)."""
        wanted = sorted(set(doc_ids))
        if not wanted:
            return {}
        where = Filter.by_property("doc_id").contains_any(wanted)
        rows = self._first_chunks(where, limit=2 * len(wanted))
        return {str(p["doc_id"]): str(p.get("file_hash") or "") for p in rows}

    def documents_with_hashes(self, file_hashes: Sequence[str]) -> dict[str, list[DocumentInfo]]:
        """file hash -> indexed documents built from those bytes (dedup of a whole batch)."""
        wanted = sorted({h for h in file_hashes if h})
        if not wanted:
            return {}
        where = Filter.by_property("file_hash").contains_any(wanted)
        found: dict[str, list[DocumentInfo]] = {}
        for p in self._first_chunks(where, limit=min(10_000, 50 * len(wanted))):
            found.setdefault(str(p.get("file_hash") or ""), []).append(_document_from(p))
        return found

    def delete_documents(self, doc_ids: Sequence[str]) -> dict[str, int]:
        """Delete every chunk of ``doc_ids`` in one request; doc_id -> chunks deleted."""
        wanted = sorted(set(doc_ids))
        if not wanted:
            return {}
        collection = self._writes()
        where = Filter.by_property("doc_id").contains_any(wanted)
        with _translated("delete_documents"):
            groups = collection.aggregate.over_all(
                filters=where,
                group_by=GroupByAggregate(prop="doc_id", limit=len(wanted)),
                total_count=True,
            ).groups
            present = {str(g.grouped_by.value): int(g.total_count or 0) for g in groups}
            collection.data.delete_many(where=where)
        return {d: present.get(d, 0) for d in wanted}

    def documents(
        self, *, groups: Sequence[str] | None, limit: int, offset: int
    ) -> list[DocumentInfo]:
        """One page of documents; ``groups=None`` lists all (admins), else only those readable
        by ``groups`` (an empty set reads nothing)."""
        where = None
        if groups is not None:
            allowed = sorted({g for g in groups if g})
            if not allowed:
                return []
            where = Filter.by_property("access_groups").contains_any(allowed)
        return [_document_from(p) for p in self._first_chunks(where, limit=limit, offset=offset)]

    def document(self, doc_id: str) -> DocumentInfo | None:
        rows = self._first_chunks(Filter.by_property("doc_id").equal(doc_id), limit=1)
        return _document_from(rows[0]) if rows else None

    def chunk_texts(self) -> list[tuple[str, str, str]]:
        """(chunk_id, title, text) of every stored chunk: audits and tests read back with it."""
        collection = self._reads()
        with _translated("chunk_texts"):
            return [
                (
                    str(o.properties["chunk_id"]),
                    str(o.properties.get("title") or "")
                    + " "
                    + str(o.properties.get("section") or ""),
                    str(o.properties["text"]),
                )
                for o in collection.iterator(
                    return_properties=["chunk_id", "title", "section", "text"]
                )
            ]

    def count_document(self, doc_id: str) -> int:
        collection = self._reads()
        with _translated("count"):
            total = collection.aggregate.over_all(
                total_count=True, filters=Filter.by_property("doc_id").equal(doc_id)
            ).total_count
        return int(total or 0)

    def search(
        self,
        *,
        groups: Sequence[str],
        query: str,
        vector: Sequence[float],
        limit: int,
        alpha: float,
        filters: Sequence[FieldFilter] = (),
        collection: str | None = None,
    ) -> list[SearchHit]:
        """Hybrid BM25 + vector search (relative-score fusion) over the chunks readable by
        ``groups`` only; ``filters`` narrow it further, never widen it. ``collection`` names a
        physical collection to search instead of the alias (a reindex compares two)."""
        allowed = sorted({g for g in groups if g})
        if not allowed:
            raise AccessDeniedError("the caller belongs to no access group")
        where = Filter.by_property("access_groups").contains_any(allowed)
        for condition in filters:
            where = where & _weaviate_filter(condition)

        def hybrid(source: Any) -> Any:
            with _translated("search"):
                return source.query.hybrid(
                    query=query,
                    vector=list(vector),
                    alpha=alpha,
                    limit=limit,
                    query_properties=["text", "title^2", "section"],
                    fusion_type=HybridFusion.RELATIVE_SCORE,
                    filters=where,
                    include_vector=True,
                    return_metadata=MetadataQuery(score=True),
                )

        if collection:
            response = hybrid(self._live.collections.use(collection))
        else:
            try:
                response = hybrid(self._reads())
            except StoreUnavailableError:
                if not self._forget_route():
                    raise
                # the alias may have moved under a cached route (e.g. to other dimensions)
                response = hybrid(self._reads())
        hits = []
        for obj in response.objects:
            stored = obj.vector.get("default") if isinstance(obj.vector, dict) else obj.vector
            similarity = _cosine(vector, cast(Sequence[float], stored)) if stored else 0.0
            hits.append(
                SearchHit(
                    chunk=_chunk_from(dict(obj.properties)),
                    score=float(obj.metadata.score or 0.0),
                    similarity=similarity,
                )
            )
        return hits

    def section_chunks(self, *, groups: Sequence[str], parent_ids: Sequence[str]) -> list[Chunk]:
        """Every chunk of the given parent sections that ``groups`` may read (for widening)."""
        allowed = sorted({g for g in groups if g})
        if not allowed or not parent_ids:
            return []
        collection = self._reads()
        where = Filter.by_property("access_groups").contains_any(allowed) & Filter.by_property(
            "parent_id"
        ).contains_any(list(parent_ids))
        with _translated("section_chunks"):
            response = collection.query.fetch_objects(filters=where, limit=200)
        return [_chunk_from(dict(obj.properties)) for obj in response.objects]

    def count(self) -> int:
        collection = self._reads()
        with _translated("count"):
            total = collection.aggregate.over_all(total_count=True).total_count
        return int(total or 0)

    def health(self) -> HealthStatus:
        """Readiness from Weaviate's own endpoint, bounded by a short timeout of its own."""
        url = f"http://{self._conn.host}:{self._conn.http_port}/v1/.well-known/ready"
        try:
            response = httpx.get(url, timeout=self._conn.health_timeout_s)
        except httpx.HTTPError as exc:
            return HealthStatus("weaviate", False, f"unreachable: {type(exc).__name__}")
        ok = response.status_code == 200
        return HealthStatus("weaviate", ok, "" if ok else f"HTTP {response.status_code}")
