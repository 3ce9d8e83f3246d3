"""Weaviate adapter: the one place chunks are written and searched.

The access filter lives inside the Weaviate query. ``search`` takes the caller's groups as a
required keyword argument and refuses an empty set, so an unfiltered search cannot be expressed.

The store is three parts over one client: chunk reads and writes and search (here), the alias and
the versioned collections behind it (``weaviate_versions``), and the raw copy operations of a
reindex (``weaviate_reindex``); ``weaviate_common`` holds what they share.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import weaviate
from weaviate.classes.aggregate import GroupByAggregate
from weaviate.classes.data import DataObject
from weaviate.classes.query import Filter, HybridFusion, MetadataQuery, Sort
from weaviate.util import generate_uuid5

from services.errors import AccessDeniedError, BackendTimeoutError, StoreUnavailableError
from services.records import (
    Chunk,
    DocumentInfo,
    FieldFilter,
    HealthStatus,
    IndexRecord,
    SearchHit,
    StoredChunk,
)
from services.vector_cache import StoredVector, VectorCache
from services.weaviate_common import (
    SCHEMA_VERSION,
    IndexModelMismatchError,
    WeaviateClient,
    WeaviateConnection,
    WeaviateEndpoint,
    chunk_from,
    chunk_properties,
    cosines,
    document_from,
    inserted,
    stored_vector,
    translated,
    vector_key,
    weaviate_filter,
)
from services.weaviate_reindex import RawCollections
from services.weaviate_versions import VersionedCollections

__all__ = [
    "IndexModelMismatchError",
    "WeaviateConnection",
    "WeaviateEndpoint",
    "WeaviateStore",
]

# the BM25 half of a hybrid search reads these properties; a title match counts twice
BM25_PROPERTIES = ("text", "title^2", "section")
#: What a search or a section fetch brings back: every property a hit or a citation shows, not
#: the two dates. weaviate-client parses each DATE with strptime, about 2 ms a search of 20 hits
#: (#19 profile), and no search result, citation or prompt shows them.
HIT_PROPERTIES = (
    "chunk_id",
    "doc_id",
    "text",
    "source",
    "title",
    "section",
    "position",
    "content_hash",
    "file_hash",
    "access_groups",
    "parent_id",
    "doc_type",
    "page",
    "page_end",
    "redaction",
)
# Weaviate's two ways of merging the BM25 and vector lists, by their names in holdfast.yaml.
FUSIONS = {"ranked": HybridFusion.RANKED, "relative_score": HybridFusion.RELATIVE_SCORE}
# A filtered delete removes at most QUERY_MAXIMUM_RESULTS objects per request, so deletes repeat
# until nothing matches: at most this many rounds (10 million objects at the default cap) ...
DELETE_ROUNDS = 1000
# ... and for at most this long in all.
DELETE_TIMEOUT_S = 600.0


log = logging.getLogger("holdfast.store")
# how far a version's parse time may lie ahead of this host's clock and still count as newer
# (hosts' clocks differ a little; a version dated beyond that was written under a wrong clock)
CLOCK_SKEW = timedelta(minutes=5)


@dataclass(frozen=True)
class Version:
    """One document's version just written: its file hash, when its file was parsed (the
    chunks' ``ingested_at``; None for chunks written without one) and its chunk ids."""

    file_hash: str
    parsed_at: datetime | None
    chunk_ids: set[str]

    def itself(self, doc_id: str) -> Any:
        return Filter.by_property("doc_id").equal(doc_id) & Filter.by_property("file_hash").equal(
            self.file_hash
        )

    def others_older(self, doc_id: str, horizon: datetime) -> Any:
        """Every other version of the document, but none parsed after this one (a version
        dated past ``horizon`` was written under a wrong clock and counts as older)."""
        where = Filter.by_property("doc_id").equal(doc_id) & Filter.by_property(
            "file_hash"
        ).not_equal(self.file_hash)
        if self.parsed_at is None:
            return where
        return where & (
            Filter.by_property("ingested_at").less_than(self.parsed_at)
            | Filter.by_property("ingested_at").greater_than(horizon)
        )

    def complete_newer(self, doc_id: str, horizon: datetime) -> Any:
        """The first chunk (written last, so: complete) of a version parsed after this one,
        and not past ``horizon``."""
        assert self.parsed_at is not None
        return (
            Filter.by_property("doc_id").equal(doc_id)
            & Filter.by_property("file_hash").not_equal(self.file_hash)
            & Filter.by_property("ingested_at").greater_than(self.parsed_at)
            & Filter.by_property("ingested_at").less_or_equal(horizon)
            & Filter.by_property("position").equal(0)
        )


CONNECT_RETRY_S = 2.0  # between connection attempts while Weaviate starts
# how long a failed search waits for the route to be read again before its one repeat
REROUTE_WAIT_S = 2.0


class WeaviateStore:
    """Chunks in versioned Weaviate collections behind one alias, vectors brought by us (no
    vectorizer module). Every limit comes from settings; the constructor does no I/O."""

    def __init__(
        self,
        connection: WeaviateConnection,
        *,
        section_fetch_limit: int,
        twins_per_hash: int,
        max_query_results: int,
        route_ttl_s: float,
        fusion: str = "ranked",
        delete_rounds: int = DELETE_ROUNDS,
        delete_timeout_s: float = DELETE_TIMEOUT_S,
        hit_vector_cache: int = 0,
    ) -> None:
        self._conn = connection
        self._client = WeaviateClient(connection)
        self._versions = VersionedCollections(self._client, route_ttl_s=route_ttl_s)
        self.search_repeats = 0  # searches repeated once after re-reading the route
        self._raw = RawCollections(self._client)
        self._section_limit = section_fetch_limit
        self._twins_per_hash = twins_per_hash
        self._max_results = max_query_results
        self._fusion = FUSIONS[fusion]
        self._delete_rounds = delete_rounds
        self._delete_timeout_s = delete_timeout_s
        self._hit_vectors = VectorCache(hit_vector_cache)

    # --- lifecycle -------------------------------------------------------------------------

    def warm_up(self, *, wait: bool = False, sleep: Callable[[float], None] = time.sleep) -> None:
        """Connect. A long-running process (``wait``: the gateway, a worker) waits up to
        ``connect_wait_s`` for a Weaviate that is not up yet: on a cluster the pods start in any
        order, and a gateway that exits instead restarts only after the kubelet's growing
        back-off (seen: the chart run under podman, Weaviate ready 13 s after the gateway first
        tried). A one-off command fails at once."""
        deadline = time.monotonic() + (self._conn.connect_wait_s if wait else 0.0)
        attempt = 0
        while True:
            attempt += 1
            try:
                self._client.open()
                return
            except (StoreUnavailableError, BackendTimeoutError) as exc:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise
                log.warning(
                    "weaviate at %s:%d not reachable yet (%s, attempt %d); retrying %.0f s more",
                    self._client.endpoint.host,
                    self._client.endpoint.http_port,
                    exc,
                    attempt,
                    left,
                )
                sleep(min(CONNECT_RETRY_S, left))

    def close(self) -> None:
        self._client.close()

    @property
    def _live(self) -> weaviate.WeaviateClient:
        return self._client.live

    # --- schema and the versioned collections behind the alias (see weaviate_versions) -----

    def ensure_schema(self, *, embedding_model: str = "", dimensions: int = 0) -> None:
        """Create the first versioned collection and the alias in front of it (idempotent).

        The configured name is an alias; reads and writes go through it, and ``holdfast reindex``
        repoints it. The model given here is the one this process embeds with: a live collection
        built with another one is not refused here, but every search and write then fails fast
        (``IndexModelMismatchError``). Empty values expect nothing.
        """
        if self._versions.expected_model != f"{embedding_model}:{dimensions}":
            self._hit_vectors.clear()  # kept for the former model: never asked for again
        self._versions.ensure_schema(embedding_model=embedding_model, dimensions=dimensions)

    def schema_record(self) -> dict[str, Any]:
        """What the live collection records about itself (schema version, embedding model)."""
        return self._versions.schema_record()

    @property
    def alias(self) -> str:
        """The configured collection name: an alias in front of the versioned collections."""
        return self._versions.alias

    @property
    def schema_version(self) -> int:
        return SCHEMA_VERSION

    def alias_target(self) -> str | None:
        """The physical collection the configured name points at, or None before the first."""
        return self._versions.alias_target()

    def index_records(self) -> list[IndexRecord]:
        return self._versions.index_records()

    @property
    def fusion(self) -> Any:
        """The hybrid fusion every search uses (a weaviate-client ``HybridFusion``)."""
        return self._fusion

    def live_record(self) -> IndexRecord | None:
        """The record of the collection that searches read now."""
        return self._versions.live_record()

    def create_index(self, *, embedding_model: str, dimensions: int) -> str:
        return self._versions.create_index(embedding_model=embedding_model, dimensions=dimensions)

    def _create_physical(self, name: str, description: str) -> None:
        self._versions.create_physical(name, description)

    def point_alias(self, target: str) -> str | None:
        return self._versions.point_alias(target)

    def drop_index(self, name: str) -> None:
        self._versions.drop_index(name)

    # --- raw operations on one physical collection (reindex, see weaviate_reindex) ---------

    def count_in(self, name: str) -> int:
        return self._raw.count_in(name)

    def scan(self, name: str, *, page_size: int) -> Iterator[StoredChunk]:
        return self._raw.scan(name, page_size=page_size)

    def insert_raw(
        self, name: str, rows: Sequence[tuple[str, dict[str, Any], Sequence[float]]]
    ) -> int:
        return self._raw.insert_raw(name, rows)

    def delete_ids(self, name: str, uuids: Sequence[str]) -> int:
        return self._raw.delete_ids(name, uuids)

    def object_id(self, chunk_id: str) -> str:
        return str(generate_uuid5(chunk_id))

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
                properties=chunk_properties(chunk),
                uuid=self.object_id(chunk.chunk_id),
                vector=list(vector),
            )
            for chunk, vector in zip(chunks, vectors, strict=True)
        ]
        collection = self._versions.writes()
        with translated("upsert"):
            result = collection.data.insert_many(objects)
        return inserted(result, len(objects))

    def _delete_matching(self, collection: Any, where: Any, action: str) -> int:
        """Delete every object ``where`` matches, however many; returns how many were deleted.

        Weaviate deletes at most QUERY_MAXIMUM_RESULTS objects per filtered delete and reports
        success, so one request can leave objects behind: this repeats until a round matches
        nothing, for at most ``delete_rounds`` rounds and ``delete_timeout_s`` seconds."""
        deleted = 0
        deadline = time.monotonic() + self._delete_timeout_s
        for _ in range(self._delete_rounds):
            with translated(action):
                result = collection.data.delete_many(where=where)
            deleted += int(result.successful)
            if result.failed:
                raise StoreUnavailableError(
                    f"weaviate failed to delete {result.failed} of {result.matches} chunks "
                    f"during {action} ({deleted} deleted so far)"
                )
            if not result.matches:
                return deleted
            if time.monotonic() > deadline:
                break
        raise BackendTimeoutError(
            f"chunks still matched after {deleted} were deleted during {action} (bounded at "
            f"{self._delete_rounds} rounds and {self._delete_timeout_s:.0f} s); run it again"
        )

    def _counts_by_doc(self, collection: Any, where: Any, doc_ids: int) -> dict[str, int]:
        """doc_id -> how many chunks ``where`` matches, in one request (uncapped counts)."""
        groups = collection.aggregate.over_all(
            filters=where,
            group_by=GroupByAggregate(prop="doc_id", limit=doc_ids),
            total_count=True,
        ).groups
        return {str(g.grouped_by.value): int(g.total_count or 0) for g in groups}

    def delete_stale(self, current: Sequence[Chunk]) -> dict[str, int]:
        """``current`` are the chunks just written: each document's new version, whole. Delete
        every other chunk of those documents that is older; doc_id -> chunks deleted.

        A new version's chunk ids never equal an older one's (the file hash is part of them), so
        this is what an older version left: chunks of another file hash parsed earlier (one
        filter for the whole batch) and, rarely, chunks of this very file hash chunked
        otherwise (an interrupted earlier write under other settings), found by counting.

        Two replaces of one document may run at once (two workers): the version parsed last
        wins. A writer never deletes a version parsed after its own, and it takes its own back
        if such a version is already complete (its first chunk is written last), so the
        document keeps exactly one whole version however the two interleave, never none."""
        versions: dict[str, Version] = {}
        for chunk in current:
            versions.setdefault(
                chunk.doc_id, Version(chunk.file_hash, chunk.ingested_at, set())
            ).chunk_ids.add(chunk.chunk_id)
        if not versions:
            return {}
        collection = self._versions.writes()
        horizon = datetime.now(UTC) + CLOCK_SKEW
        older = Filter.any_of([v.others_older(doc_id, horizon) for doc_id, v in versions.items()])
        with translated("delete_stale"):
            found = self._counts_by_doc(collection, older, len(versions))
        self._delete_matching(collection, older, "delete_stale")
        same = Filter.any_of([v.itself(doc_id) for doc_id, v in versions.items()])
        with translated("delete_stale"):
            left = self._counts_by_doc(collection, same, len(versions))
        for doc_id, version in versions.items():
            if left.get(doc_id, 0) > len(version.chunk_ids):
                where = version.itself(doc_id) & Filter.by_property("chunk_id").contains_none(
                    sorted(version.chunk_ids)
                )
                found[doc_id] = found.get(doc_id, 0) + self._delete_matching(
                    collection, where, "delete_stale"
                )
        self._take_back_superseded(collection, versions, horizon)
        return {doc_id: found.get(doc_id, 0) for doc_id in versions}

    def _take_back_superseded(
        self, collection: Any, versions: dict[str, Version], horizon: datetime
    ) -> None:
        """Delete the versions just written that a complete, later-parsed version of the same
        document already replaced (a concurrent replace that finished first)."""
        dated = {doc_id: v for doc_id, v in versions.items() if v.parsed_at is not None}
        if not dated:
            return
        newer = Filter.any_of([v.complete_newer(doc_id, horizon) for doc_id, v in dated.items()])
        with translated("delete_stale"):
            superseded = self._counts_by_doc(collection, newer, len(dated))
        for doc_id in superseded:
            version = dated[doc_id]
            log.warning(
                "a version of %s parsed later was written meanwhile; this one (file %s) is "
                "taken back (two replaces of one document ran at once: the last parsed wins)",
                doc_id,
                version.file_hash,
            )
            self._delete_matching(collection, version.itself(doc_id), "delete_stale")

    def delete_chunks(self, chunk_ids: Sequence[str]) -> int:
        """Delete chunks by chunk id (what a failed write got in before it failed)."""
        uuids = [self.object_id(c) for c in chunk_ids]
        if not uuids:
            return 0
        return self._raw.delete_ids(self._versions.writes().name, uuids)

    def delete_document(self, doc_id: str) -> int:
        """Delete every chunk of ``doc_id``, however many; returns how many were deleted."""
        collection = self._versions.writes()
        where = Filter.by_property("doc_id").equal(doc_id)
        return self._delete_matching(collection, where, "delete_document")

    # --- reads -----------------------------------------------------------------------------

    def _first_chunks(self, where: Any, limit: int, offset: int = 0) -> list[dict[str, Any]]:
        first = Filter.by_property("position").equal(0)

        def fetch() -> Any:
            collection = self._versions.reads()
            with translated("documents"):
                return collection.query.fetch_objects(
                    filters=first & where if where is not None else first,
                    limit=limit,
                    offset=offset,
                    sort=Sort.by_property("doc_id"),
                )

        response = self._client.failing_over(fetch)
        return [dict(obj.properties) for obj in response.objects]

    def document_hash(self, doc_id: str) -> str | None:
        """The file hash the indexed version of ``doc_id`` was built from, or None."""
        rows = self._first_chunks(Filter.by_property("doc_id").equal(doc_id), limit=1)
        return str(rows[0].get("file_hash") or "") if rows else None

    def documents_with_hash(self, file_hash: str) -> list[DocumentInfo]:
        """Indexed documents built from identical bytes (for dedup)."""
        rows = self._first_chunks(
            Filter.by_property("file_hash").equal(file_hash), limit=self._twins_per_hash
        )
        return [document_from(p) for p in rows]

    def file_hashes(self, doc_ids: Sequence[str]) -> dict[str, str]:
        """doc_id -> file hash of the indexed version, for the indexed ones of ``doc_ids``
        (one query for a whole ingest batch)."""
        wanted = sorted(set(doc_ids))
        if not wanted:
            return {}
        where = Filter.by_property("doc_id").contains_any(wanted)
        rows = self._first_chunks(where, limit=min(self._max_results, 2 * len(wanted)))
        found: dict[str, set[str]] = {}
        for p in rows:
            found.setdefault(str(p["doc_id"]), set()).add(str(p.get("file_hash") or ""))
        # two first chunks: a replace wrote its new version and had not yet deleted the old one
        # (or failed to); "" matches no file, so the next upload of either version settles it
        return {doc_id: min(hashes) if len(hashes) == 1 else "" for doc_id, hashes in found.items()}

    def documents_with_hashes(self, file_hashes: Sequence[str]) -> dict[str, list[DocumentInfo]]:
        """file hash -> indexed documents built from those bytes (dedup of a whole batch)."""
        return self._documents_by("file_hash", file_hashes)

    def documents_named(self, sources: Sequence[str]) -> dict[str, list[DocumentInfo]]:
        """source -> indexed documents uploaded under that name, in any groups (one query for
        a whole ingest batch; only ingestion's replacement check reads it, never a caller)."""
        return self._documents_by("source", sources)

    def _documents_by(self, prop: str, values: Sequence[str]) -> dict[str, list[DocumentInfo]]:
        """value -> indexed documents whose ``prop`` has that value, in one query."""
        wanted = sorted({v for v in values if v})
        if not wanted:
            return {}
        where = Filter.by_property(prop).contains_any(wanted)
        found: dict[str, list[DocumentInfo]] = {}
        for p in self._first_chunks(
            where, limit=min(self._max_results, self._twins_per_hash * len(wanted))
        ):
            found.setdefault(str(p.get(prop) or ""), []).append(document_from(p))
        return found

    def delete_documents(self, doc_ids: Sequence[str]) -> dict[str, int]:
        """Delete every chunk of ``doc_ids``, however many; doc_id -> chunks it had."""
        wanted = sorted(set(doc_ids))
        if not wanted:
            return {}
        collection = self._versions.writes()
        where = Filter.by_property("doc_id").contains_any(wanted)
        with translated("delete_documents"):
            present = self._counts_by_doc(collection, where, len(wanted))
        self._delete_matching(collection, where, "delete_documents")
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
        return [document_from(p) for p in self._first_chunks(where, limit=limit, offset=offset)]

    def document(self, doc_id: str) -> DocumentInfo | None:
        rows = self._first_chunks(Filter.by_property("doc_id").equal(doc_id), limit=1)
        return document_from(rows[0]) if rows else None

    def chunk_texts(self) -> list[tuple[str, str, str]]:
        """(chunk_id, title, text) of every stored chunk: audits and tests read back with it."""
        collection = self._versions.reads()
        with translated("chunk_texts"):
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
        def total() -> Any:
            collection = self._versions.reads()
            with translated("count"):
                return collection.aggregate.over_all(
                    total_count=True, filters=Filter.by_property("doc_id").equal(doc_id)
                ).total_count

        return int(self._client.failing_over(total) or 0)

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
        """Hybrid BM25 + vector search (the configured fusion) over the chunks readable by
        ``groups`` only; ``filters`` narrow it further, never widen it. ``collection`` names a
        physical collection to search instead of the alias (a reindex compares two)."""
        allowed = sorted({g for g in groups if g})
        if not allowed:
            raise AccessDeniedError("the caller belongs to no access group")
        where = Filter.by_property("access_groups").contains_any(allowed)
        for condition in filters:
            where = where & weaviate_filter(condition)

        def hybrid(source: Any) -> Any:
            with translated("search"):
                return source.query.hybrid(
                    query=query,
                    vector=list(vector),
                    alpha=alpha,
                    limit=limit,
                    query_properties=list(BM25_PROPERTIES),
                    fusion_type=self._fusion,
                    filters=where,
                    include_vector=not self._hit_vectors.enabled,
                    return_metadata=MetadataQuery(score=True),
                    return_properties=list(HIT_PROPERTIES),
                )

        def searched(source: Any) -> tuple[list[Any], list[StoredVector]]:
            objects = list(hybrid(source).objects)
            return objects, self._vectors_of(source, objects)

        def routed() -> tuple[list[Any], list[StoredVector]]:
            if collection:
                return searched(self._client.reading(collection))
            try:
                return searched(self._versions.reads())
            except StoreUnavailableError as exc:
                # the alias may have moved under the route (e.g. to other dimensions), or the
                # cluster is between leaders: read the route again (waiting a bounded time) and
                # try once more
                if not self._versions.reroute(wait_s=REROUTE_WAIT_S):
                    raise
                log.warning("search failed (%r); tried once more after re-reading the route", exc)
                self.search_repeats += 1
                return searched(self._versions.reads())

        # a node that died under the call: once more on the next ready node (failover nodes)
        objects, stored = self._client.failing_over(routed)
        similarities = cosines(vector, stored)
        return [
            SearchHit(
                chunk=chunk_from(dict(obj.properties)),
                score=float(obj.metadata.score or 0.0),
                similarity=similarity,
            )
            for obj, similarity in zip(objects, similarities, strict=True)
        ]

    @property
    def hit_vector_lookups(self) -> tuple[int, int] | None:
        """Hits scored with a kept vector and hits whose vector was fetched so far, or None
        when no vectors are kept."""
        cache = self._hit_vectors
        return (cache.hits, cache.misses) if cache.enabled else None

    def _vectors_of(self, source: Any, objects: Sequence[Any]) -> list[StoredVector]:
        """The stored vector of each hit: brought with the hits (no cache), or from the cache,
        with those it lacks fetched by id in one call (``services/vector_cache.py`` says why)."""
        if not self._hit_vectors.enabled:
            return [stored_vector(o) for o in objects]
        model = self._versions.expected_model
        keys = [vector_key(source.name, model, o) for o in objects]
        found: list[StoredVector] = list(self._hit_vectors.lookup(keys))
        missing = [i for i, v in enumerate(found) if v is None]
        if missing:
            with translated("search"):
                fetched = source.query.fetch_objects(
                    filters=Filter.by_id().contains_any([objects[i].uuid for i in missing]),
                    limit=len(missing),
                    include_vector=True,
                    return_properties=[],
                )
            by_id = {str(o.uuid): stored_vector(o) for o in fetched.objects}
            for i in missing:
                stored = by_id.get(keys[i].object_id)
                if stored:
                    found[i] = self._hit_vectors.keep(keys[i], stored)
        return found

    def section_chunks(self, *, groups: Sequence[str], parent_ids: Sequence[str]) -> list[Chunk]:
        """Every chunk of the given parent sections that ``groups`` may read (for widening)."""
        allowed = sorted({g for g in groups if g})
        if not allowed or not parent_ids:
            return []
        where = Filter.by_property("access_groups").contains_any(allowed) & Filter.by_property(
            "parent_id"
        ).contains_any(list(parent_ids))

        def fetch() -> Any:
            collection = self._versions.reads()
            with translated("section_chunks"):
                return collection.query.fetch_objects(
                    filters=where, limit=self._section_limit, return_properties=list(HIT_PROPERTIES)
                )

        response = self._client.failing_over(fetch)
        return [chunk_from(dict(obj.properties)) for obj in response.objects]

    def count(self) -> int:
        def total() -> Any:
            collection = self._versions.reads()
            with translated("count"):
                return collection.aggregate.over_all(total_count=True).total_count

        return int(self._client.failing_over(total) or 0)

    @property
    def failovers(self) -> tuple[int, int]:
        """(node switches, calls repeated on another node) since start: each is a node that
        stopped answering under a read, none a failed read."""
        return self._client.failovers, self._client.retries

    def health(self) -> HealthStatus:
        """Readiness from Weaviate's own endpoint (of the node the client talks to now),
        bounded by a short timeout of its own."""
        node = self._client.endpoint
        url = f"http://{node.host}:{node.http_port}/v1/.well-known/ready"
        try:
            response = httpx.get(url, timeout=self._conn.health_timeout_s)
        except httpx.HTTPError as exc:
            return HealthStatus("weaviate", False, f"unreachable: {type(exc).__name__}")
        ok = response.status_code == 200
        return HealthStatus("weaviate", ok, "" if ok else f"HTTP {response.status_code}")
