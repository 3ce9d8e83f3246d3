"""What the Weaviate adapter's modules share: the connection and its client, error translation,
the mapping between chunks and stored properties, and the record each collection keeps.

``weaviate_store`` (chunk reads and writes, search), ``weaviate_versions`` (the alias and the
versioned collections behind it) and ``weaviate_reindex`` (raw copy operations) build on it.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

import httpx
import numpy as np
import weaviate
from weaviate.classes.config import Configure, ConsistencyLevel, ReplicationDeletionStrategy
from weaviate.classes.init import AdditionalConfig, Auth, Timeout
from weaviate.classes.query import Filter
from weaviate.exceptions import WeaviateBaseError, WeaviateTimeoutError

from services.errors import BackendTimeoutError, HoldfastError, StoreUnavailableError
from services.records import Chunk, DocumentInfo, FieldFilter, IndexRecord
from services.vector_cache import StoredVector, VectorKey

SCHEMA_VERSION = 2

log = logging.getLogger("holdfast.store")

# how often the current node's readiness is asked when failover nodes are configured
WATCH_INTERVAL_S = 0.5

T = TypeVar("T")


class IndexModelMismatchError(StoreUnavailableError):
    """The collection behind the alias was embedded with another model than the configured one:
    its vectors and the query's would not be comparable, so nothing is searched or written."""

    code, title = "index_model_mismatch", "The index was built with another embedding model"


@dataclass(frozen=True, slots=True)
class WeaviateEndpoint:
    """One node as a client reaches it."""

    host: str
    http_port: int
    grpc_port: int


@dataclass(frozen=True, slots=True)
class WeaviateConnection:
    """Where Weaviate is, how long each kind of call may take, and how collections are
    replicated (all from settings). The defaults are one node without replication."""

    host: str
    http_port: int
    grpc_port: int
    api_key: str
    collection: str
    query_timeout_s: float
    insert_timeout_s: float
    init_timeout_s: float
    health_timeout_s: float
    replication_factor: int = 1
    write_consistency: str = "QUORUM"
    read_consistency: str = "QUORUM"
    async_replication: bool = True
    async_frequency_s: float = 5.0
    deletion_strategy: str = "TimeBasedResolution"
    shard_count: int = 0
    failover: tuple[WeaviateEndpoint, ...] = field(default=())
    connect_wait_s: float = 0.0  # how long start-up waits for a Weaviate still starting

    @property
    def endpoints(self) -> tuple[WeaviateEndpoint, ...]:
        """The configured node first, then the failover nodes."""
        first = WeaviateEndpoint(self.host, self.http_port, self.grpc_port)
        return (first, *(e for e in self.failover if e != first))

    def collection_options(self) -> dict[str, Any]:
        """Keyword arguments of ``collections.create`` for replication and sharding ({} on one
        node without replication: the collection is created exactly as before)."""
        options: dict[str, Any] = {}
        if self.replication_factor > 1:
            options["replication_config"] = Configure.replication(
                factor=self.replication_factor,
                async_enabled=self.async_replication,
                async_config=Configure.Replication.async_config(
                    frequency=int(self.async_frequency_s * 1000)
                )
                if self.async_replication
                else None,
                deletion_strategy=ReplicationDeletionStrategy(self.deletion_strategy),
            )
        if self.shard_count > 0:
            options["sharding_config"] = Configure.sharding(desired_count=self.shard_count)
        return options


@contextmanager
def translated(action: str) -> Iterator[None]:
    """Turn any Weaviate client error into Holdfast's hierarchy, keeping the cause. The client
    wraps only some transport errors of its REST calls (a connection refused, a read timeout);
    others (a connection dropped mid-request) reach us as httpx's own."""
    try:
        yield
    except (WeaviateTimeoutError, httpx.TimeoutException) as exc:
        raise BackendTimeoutError(f"weaviate timed out during {action}") from exc
    except (WeaviateBaseError, httpx.TransportError) as exc:
        raise StoreUnavailableError(
            f"weaviate failed during {action}: {type(exc).__name__}"
        ) from exc


class WeaviateClient:
    """One lazily opened client, shared by the adapter's parts (no I/O until ``open``).

    It talks to one node at a time: the configured one, or, after that node stopped answering,
    the next of ``connection.failover`` (see ``failing_over``)."""

    def __init__(self, connection: WeaviateConnection) -> None:
        self.connection = connection
        self._client: weaviate.WeaviateClient | None = None
        self._endpoints = connection.endpoints
        self._current = 0  # index into _endpoints
        self._switch_lock = threading.Lock()
        self.failovers = 0  # node switches since start
        self.retries = 0  # calls repeated on another node after a node failure
        self._stop_watch = threading.Event()
        self._watcher: threading.Thread | None = None
        replicated = connection.replication_factor > 1
        self._read_level = ConsistencyLevel(connection.read_consistency) if replicated else None
        self._write_level = ConsistencyLevel(connection.write_consistency) if replicated else None

    @property
    def endpoint(self) -> WeaviateEndpoint:
        """The node the client talks to now."""
        return self._endpoints[self._current]

    def open(self) -> None:
        """Connect to the current node; if it refuses, to the next failover node, and so on."""
        if self._client is not None:
            return
        for step in range(len(self._endpoints)):
            index = (self._current + step) % len(self._endpoints)
            try:
                self._client = self._connect(self._endpoints[index])
            except StoreUnavailableError:
                if step + 1 == len(self._endpoints):
                    raise
                continue
            self._current = index
            break
        self._start_watch()

    def _connect(self, node: WeaviateEndpoint) -> weaviate.WeaviateClient:
        conn = self.connection
        with translated("connect"):
            return weaviate.connect_to_custom(
                http_host=node.host,
                http_port=node.http_port,
                http_secure=False,
                grpc_host=node.host,
                grpc_port=node.grpc_port,
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

    def close(self) -> None:
        self._stop_watch.set()
        if self._client is not None:
            self._client.close()
            self._client = None

    def _start_watch(self) -> None:
        """With failover nodes: a daemon thread that asks the current node's readiness every
        ``WATCH_INTERVAL_S`` and switches away from a node that stopped answering. Calls in
        flight there (the weaviate client waits up to a minute, retrying, on a node that
        refuses gRPC) then fail at once on the closed client and are repeated on the new node
        (``failing_over``)."""
        if len(self._endpoints) < 2 or self._watcher is not None:
            return
        self._stop_watch.clear()
        self._watcher = threading.Thread(target=self._watch, name="weaviate-failover", daemon=True)
        self._watcher.start()

    def _watch(self) -> None:
        while not self._stop_watch.wait(WATCH_INTERVAL_S):
            client = self._client
            if client is not None and not self.node_ready(self.endpoint):
                try:
                    self._switch_from(client)
                except HoldfastError:
                    log.warning("weaviate failover failed; trying again", exc_info=True)
        self._watcher = None

    @property
    def live(self) -> weaviate.WeaviateClient:
        """The open client (opened on first use)."""
        client = self._client
        if client is None:
            with self._switch_lock:
                self.open()
            client = self._client
        assert client is not None
        return client

    def reading(self, name: str) -> Any:
        """A handle on collection ``name`` whose reads use the read consistency level (on a
        replicated cluster; on one node the plain handle, exactly as before)."""
        handle = self.live.collections.use(name)
        return (
            handle if self._read_level is None else handle.with_consistency_level(self._read_level)
        )

    def writing(self, name: str) -> Any:
        """A handle on collection ``name`` whose writes use the write consistency level."""
        handle = self.live.collections.use(name)
        return (
            handle
            if self._write_level is None
            else handle.with_consistency_level(self._write_level)
        )

    def node_ready(self, node: WeaviateEndpoint) -> bool:
        url = f"http://{node.host}:{node.http_port}/v1/.well-known/ready"
        try:
            return httpx.get(url, timeout=self.connection.health_timeout_s).status_code == 200
        except httpx.HTTPError:
            return False

    def failing_over(self, call: Callable[[], T]) -> T:
        """``call()``; if it fails because the node the client talks to is gone (its readiness
        endpoint no longer answers 200), switch to the next ready failover node and call again.

        Bounded: at most one repeat per configured node. Without failover nodes, or when the
        node is up (the failure was the query's own, or the cluster's), the error stands."""
        attempts = len(self._endpoints)
        for attempt in range(attempts):
            client = self.live
            try:
                return call()
            except Exception as exc:
                if attempt + 1 >= attempts:
                    raise
                if self._client is client:  # not switched under the call: was it the node?
                    node_failure = isinstance(exc, (StoreUnavailableError, BackendTimeoutError))
                    if not node_failure or not self._switch_from(client):
                        raise
                # else the watcher closed this client (its node stopped answering): any error
                # of the call is that, and it is repeated on the new node
                self.retries += 1
        raise AssertionError("unreachable")  # the loop returns or raises

    def _switch_from(self, failed: weaviate.WeaviateClient | None) -> bool:
        """After a failed call made with client ``failed``: True if calling again is worth it
        (another thread switched already, or this one switched to a ready node)."""
        with self._switch_lock:
            if self._client is not failed and self._client is not None:
                return True  # another thread moved on already: use its client
            if len(self._endpoints) < 2 or self.node_ready(self.endpoint):
                return False
            gone = self.endpoint
            for step in range(1, len(self._endpoints)):
                candidate = (self._current + step) % len(self._endpoints)
                if self.node_ready(self._endpoints[candidate]):
                    break
            else:
                return False
            old, self._client = self._client, None
            self._current = candidate
            self.failovers += 1
            log.warning(
                "weaviate node %s:%d is not ready; switching to %s:%d",
                gone.host,
                gone.http_port,
                self.endpoint.host,
                self.endpoint.http_port,
            )
            if old is not None:
                try:
                    old.close()
                except Exception:  # closing the client of a dead node may fail any way
                    log.debug("closing the client of %s failed", gone.host, exc_info=True)
            self.open()
            return True


def inserted(result: Any, sent: int) -> int:
    """``sent`` if a batch insert took every object; else the first rejection, as an error."""
    if result.has_errors:
        first = next(iter(result.errors.values()))
        raise StoreUnavailableError(
            f"weaviate rejected {len(result.errors)} of {sent} chunks: {first.message}"
        )
    return sent


def chunk_properties(chunk: Chunk) -> dict[str, Any]:
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
    props["redaction"] = chunk.redaction
    return props


def chunk_from(props: dict[str, Any]) -> Chunk:
    """A stored object's properties as a ``Chunk``."""
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
        redaction=str(props.get("redaction") or ""),
    )


def document_from(p: dict[str, Any]) -> DocumentInfo:
    return DocumentInfo(
        doc_id=str(p["doc_id"]),
        source=str(p.get("source") or ""),
        title=str(p.get("title") or ""),
        doc_type=str(p.get("doc_type") or ""),
        access_groups=tuple(p.get("access_groups") or ()),
        file_hash=str(p.get("file_hash") or ""),
        ingested_at=p.get("ingested_at"),
    )


def schema_description(embedding_model: str, dimensions: int) -> str:
    """What a physical collection records about itself, in its description."""
    return json.dumps(
        {
            "holdfast_schema_version": SCHEMA_VERSION,
            "embedding_model": embedding_model,
            "embedding_dimensions": dimensions,
        },
        sort_keys=True,
    )


def recorded(description: str | None) -> dict[str, Any]:
    """A collection description as the dict ``schema_description`` wrote ({} if it is not)."""
    try:
        found = json.loads(description) if description else {}
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def record_from(name: str, description: str | None) -> IndexRecord:
    found = recorded(description)
    version = found.get("holdfast_schema_version")
    return IndexRecord(
        name=name,
        embedding_model=str(found.get("embedding_model") or ""),
        dimensions=int(found.get("embedding_dimensions") or 0),
        schema_version=int(version) if version is not None else None,
    )


def weaviate_filter(condition: FieldFilter) -> Any:
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


def stored_vector(obj: Any) -> Sequence[float] | None:
    """A returned object's vector (the default one of a named-vector collection), if it came."""
    vector = obj.vector.get("default") if isinstance(obj.vector, dict) else obj.vector
    return cast("Sequence[float] | None", vector)


def vector_key(collection: str, model: str, obj: Any) -> VectorKey:
    """What a hit's stored vector depends on (``services/vector_cache.py``): where it is, the
    model the search was routed for, and what the model read (title, section path, body), from
    the hit's returned properties."""
    props = obj.properties
    return VectorKey(
        collection=collection,
        model=model,
        object_id=str(obj.uuid),
        title=str(props.get("title") or ""),
        section=str(props.get("section") or ""),
        content_hash=str(props.get("content_hash") or ""),
    )


def cosines(query: Sequence[float], stored: Sequence[StoredVector]) -> list[float]:
    """Cosine similarity of ``query`` to each stored vector (0.0 where a hit brought none, or a
    vector is all zeros), in one matrix product."""
    scores = [0.0] * len(stored)
    rows = [i for i, vector in enumerate(stored) if vector is not None and len(vector)]
    if not rows:
        return scores
    q = np.asarray(query, dtype=np.float64)
    matrix = np.asarray([stored[i] for i in rows], dtype=np.float64)
    if matrix.shape[1] != q.shape[0]:
        raise ValueError(f"vectors of {matrix.shape[1]} dims against a {q.shape[0]}-dim query")
    norms = np.linalg.norm(matrix, axis=1) * np.linalg.norm(q)
    dots = matrix @ q
    similarity = np.divide(dots, norms, out=np.zeros_like(dots), where=norms > 0)
    for i, value in zip(rows, similarity.tolist(), strict=True):
        scores[i] = float(value)
    return scores
