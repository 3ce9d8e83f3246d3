"""One Protocol per port. The gateway and ingestion depend on these, never on an adapter."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

from services.records import (
    ChatMessage,
    Chunk,
    Completion,
    DocumentInfo,
    EntitySpan,
    FieldFilter,
    HealthStatus,
    Redaction,
    RerankScore,
    SearchHit,
)


class Store(Protocol):
    def ensure_schema(self) -> None: ...

    def upsert(self, chunks: Sequence[Chunk], vectors: Sequence[Sequence[float]]) -> int: ...

    def delete_stale(self, doc_id: str, keep_chunk_ids: Sequence[str]) -> int: ...

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

    def delete_document(self, doc_id: str) -> int: ...

    def document_hash(self, doc_id: str) -> str | None: ...

    def documents_with_hash(self, file_hash: str) -> list[DocumentInfo]: ...

    # the batched forms one ingest batch uses: one request each, whatever the batch size
    def file_hashes(self, doc_ids: Sequence[str]) -> dict[str, str]: ...

    def documents_with_hashes(
        self, file_hashes: Sequence[str]
    ) -> dict[str, list[DocumentInfo]]: ...

    def delete_documents(self, doc_ids: Sequence[str]) -> dict[str, int]: ...

    def document(self, doc_id: str) -> DocumentInfo | None: ...

    def documents(
        self, *, groups: Sequence[str] | None, limit: int, offset: int
    ) -> list[DocumentInfo]: ...


class Embedder(Protocol):
    @property
    def dimensions(self) -> int: ...

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]: ...

    def embed_query(self, text: str) -> list[float]: ...

    def count_tokens(self, text: str) -> int: ...

    def health(self) -> HealthStatus: ...


class Reranker(Protocol):
    def rerank(self, query: str, texts: Sequence[str]) -> list[RerankScore]:
        """Scores for ``texts``, best first; each names its index in ``texts``."""
        ...

    def health(self) -> HealthStatus: ...


class ModelRouter(Protocol):
    def complete(
        self, alias: str, messages: Sequence[ChatMessage], *, max_tokens: int | None = None
    ) -> Completion: ...

    def stream(
        self, alias: str, messages: Sequence[ChatMessage], *, max_tokens: int | None = None
    ) -> Iterator[str]: ...

    def health(self, alias: str) -> HealthStatus: ...


class Redactor(Protocol):
    def find(self, text: str) -> list[EntitySpan]: ...

    def redact(self, text: str) -> Redaction: ...
