"""One Protocol per port. The gateway and ingestion depend on these, never on an adapter."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Protocol, runtime_checkable

from services.cancellation import Cancellation
from services.records import (
    ChatMessage,
    Chunk,
    Completion,
    DocumentInfo,
    EntitySpan,
    FieldFilter,
    HealthStatus,
    IndexRecord,
    Redaction,
    RerankScore,
    SearchHit,
    StoredChunk,
)


class Lifecycle(Protocol):
    """An adapter that opens its clients or loads its models in ``warm_up`` (its constructor does
    no I/O) and releases them in ``close``."""

    def warm_up(self) -> None: ...

    def close(self) -> None: ...


class Store(Protocol):
    def ensure_schema(self) -> None: ...

    def upsert(self, chunks: Sequence[Chunk], vectors: Sequence[Sequence[float]]) -> int: ...

    def delete_stale(self, current: Sequence[Chunk]) -> dict[str, int]:
        """``current`` are the chunks just written, each document's new version whole: delete
        every other chunk of those documents (however many); doc_id -> chunks deleted."""
        ...

    def delete_chunks(self, chunk_ids: Sequence[str]) -> int:
        """Delete chunks by chunk id; how many were deleted."""
        ...

    def search(
        self,
        *,
        groups: Sequence[str],
        query: str,
        vector: Sequence[float],
        limit: int,
        alpha: float,
        filters: Sequence[FieldFilter] = (),
    ) -> list[SearchHit]: ...

    def section_chunks(
        self, *, groups: Sequence[str], parent_ids: Sequence[str]
    ) -> list[Chunk]: ...

    def count(self) -> int: ...

    def health(self) -> HealthStatus: ...


class DocumentStore(Store, Protocol):
    """Document-level operations ingestion needs on top of chunk writes and search."""

    def delete_document(self, doc_id: str) -> int:
        """Delete every chunk of ``doc_id``, however many; how many were deleted."""
        ...

    def document_hash(self, doc_id: str) -> str | None: ...

    def documents_with_hash(self, file_hash: str) -> list[DocumentInfo]: ...

    # the batched forms one ingest batch uses: one request each, whatever the batch size
    def file_hashes(self, doc_ids: Sequence[str]) -> dict[str, str]: ...

    def documents_with_hashes(
        self, file_hashes: Sequence[str]
    ) -> dict[str, list[DocumentInfo]]: ...

    def documents_named(self, sources: Sequence[str]) -> dict[str, list[DocumentInfo]]: ...

    def delete_documents(self, doc_ids: Sequence[str]) -> dict[str, int]:
        """Delete every chunk of ``doc_ids``, however many; doc_id -> chunks it had."""
        ...

    def document(self, doc_id: str) -> DocumentInfo | None: ...

    def documents(
        self, *, groups: Sequence[str] | None, limit: int, offset: int
    ) -> list[DocumentInfo]: ...


class IndexCatalog(Protocol):
    """The versioned physical collections behind the store's alias, read only: which one searches
    read now, and which embedding model each was built with."""

    @property
    def alias(self) -> str:
        """The configured collection name: an alias in front of the versioned collections."""
        ...

    @property
    def schema_version(self) -> int:
        """The schema version this adapter writes."""
        ...

    def alias_target(self) -> str | None:
        """The physical collection the alias points at, or None before the first."""
        ...

    def index_records(self) -> list[IndexRecord]:
        """Every physical collection of the alias, oldest first."""
        ...

    def live_record(self) -> IndexRecord | None:
        """The record of the collection that searches read now."""
        ...


class VersionedIndex(IndexCatalog, Protocol):
    """What a reindex does with physical collections: create one, copy every stored chunk into
    it unchanged but for the vector, search it beside the live one, repoint the alias at it in
    one step, and drop the ones no longer kept."""

    def create_index(self, *, embedding_model: str, dimensions: int) -> str: ...

    def point_alias(self, target: str) -> str | None:
        """Repoint the alias at ``target``; returns the collection it pointed at before."""
        ...

    def drop_index(self, name: str) -> None: ...

    def count_in(self, name: str) -> int: ...

    def scan(self, name: str, *, page_size: int) -> Iterator[StoredChunk]: ...

    def insert_raw(
        self, name: str, rows: Sequence[tuple[str, dict[str, Any], Sequence[float]]]
    ) -> int:
        """Write (uuid, properties, vector) rows as they are into collection ``name``."""
        ...

    def delete_ids(self, name: str, uuids: Sequence[str]) -> int: ...

    def object_id(self, chunk_id: str) -> str:
        """The stored object's id for a chunk id (what ``upsert`` writes it under)."""
        ...

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
        """``Store.search``; ``collection`` names a physical collection to search instead of
        the alias (the reindex gate compares two)."""
        ...


class ManagedStore(DocumentStore, IndexCatalog, Lifecycle, Protocol):
    """The store a gateway process holds: chunk writes, search and documents, the alias reads,
    and its lifecycle."""

    def warm_up(self, *, wait: bool = False) -> None:
        """Connect; with ``wait``, keep trying for a while when the store is still starting."""
        ...

    def ensure_schema(self, *, embedding_model: str = "", dimensions: int = 0) -> None:
        """Create the first collection behind the alias if there is none; from now on, reads
        and writes expect vectors of ``embedding_model`` with ``dimensions`` (empty: any)."""
        ...


class Embedder(Protocol):
    @property
    def dimensions(self) -> int: ...

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]: ...

    def embed_query(self, text: str) -> list[float]: ...

    def count_tokens(self, text: str) -> int: ...

    def health(self) -> HealthStatus: ...


@runtime_checkable
class WindowedEmbedder(Protocol):
    """An embedder that knows its window: how many word-pieces it reads (special tokens
    included); text past it is cut off, so chunking sizes chunks to fit."""

    @property
    def max_tokens(self) -> int: ...


def embedding_window(embedder: object) -> int | None:
    """The embedder's window when it knows it (in-process models), else None (remote servers)."""
    return embedder.max_tokens if isinstance(embedder, WindowedEmbedder) else None


class Reranker(Protocol):
    def rerank(self, query: str, texts: Sequence[str]) -> list[RerankScore]:
        """Scores for ``texts``, best first; each names its index in ``texts``."""
        ...

    def health(self) -> HealthStatus: ...


class TextStream(Protocol):
    """Text pieces of one streamed answer. ``close`` ends the model call early and releases its
    connection, so the model server stops generating (a caller that stops reading calls it)."""

    def __iter__(self) -> Iterator[str]: ...

    def __next__(self) -> str: ...

    def close(self) -> None: ...


class ModelRouter(Protocol):
    """Chat by alias. ``cancel``, when given, is checked while the model answers: once it is
    set, the call closes its connection to the model server and raises
    ``RequestCancelledError``."""

    def complete(
        self,
        alias: str,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int | None = None,
        cancel: Cancellation | None = None,
    ) -> Completion: ...

    def stream(
        self,
        alias: str,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int | None = None,
        cancel: Cancellation | None = None,
    ) -> TextStream: ...

    def health(self, alias: str) -> HealthStatus: ...


class ManagedRouter(ModelRouter, Protocol):
    """The router a gateway process holds: the request path's port, opened in ``warm_up``, and
    a ``complete`` that a reload's probe can keep from falling back to another alias."""

    def warm_up(self) -> None: ...

    def complete(
        self,
        alias: str,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int | None = None,
        use_fallbacks: bool = True,
        cancel: Cancellation | None = None,
    ) -> Completion: ...


class Redactor(Protocol):
    def find(self, text: str) -> list[EntitySpan]: ...

    def redact(self, text: str) -> Redaction: ...


class ManagedRedactor(Redactor, Lifecycle, Protocol):
    """The redactor a gateway process holds; ``health`` says whether its analyzer loaded (until
    it has, every request that needs redaction is refused)."""

    def health(self) -> bool: ...
