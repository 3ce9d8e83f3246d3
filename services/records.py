"""Typed records that cross package boundaries."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class Chunk:
    """One retrievable piece of a document, with everything needed to cite and filter it."""

    chunk_id: str
    doc_id: str
    text: str
    source: str
    title: str
    section: str
    position: int
    content_hash: str
    access_groups: tuple[str, ...]
    parent_id: str
    doc_type: str = "markdown"
    page: int | None = None
    modified_at: datetime | None = None
    ingested_at: datetime | None = None
    page_end: int | None = None
    file_hash: str = ""  # hash of the whole source file: unchanged files and duplicates skip
    # the redaction profile the chunk was stored with ("" when not recorded: an older index)
    redaction: str = ""


@dataclass(frozen=True, slots=True)
class DocumentInfo:
    """One indexed document as listed to a caller (from its first chunk)."""

    doc_id: str
    source: str
    title: str
    doc_type: str
    access_groups: tuple[str, ...]
    file_hash: str
    ingested_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class SearchHit:
    """A retrieved chunk. ``score`` is the fused hybrid score (relative within one query);
    ``similarity`` is the cosine similarity to the query vector (comparable across queries)."""

    chunk: Chunk
    score: float
    similarity: float


@dataclass(frozen=True, slots=True)
class Redaction:
    """Redacted text and how many values of each entity type were replaced (never the values)."""

    text: str
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True, slots=True)
class EntitySpan:
    """Where a PII value sits in a text: offsets and type only, never the value itself."""

    start: int
    end: int
    entity_type: str


@dataclass(frozen=True, slots=True)
class FieldFilter:
    """One validated metadata condition; the store turns it into its own query filter."""

    field: str
    op: str  # eq | ne | in | gt | gte | lt | lte | like
    value: str | int | float | datetime | tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: str
    content: str


@dataclass(frozen=True, slots=True)
class Completion:
    """A model's answer. ``alias`` is the models.yaml alias that served it, ``model`` the concrete
    provider model; ``fallback_used`` says a fallback alias answered because the primary failed."""

    text: str
    model: str
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    alias: str | None = None
    fallback_used: bool = False


@dataclass(frozen=True, slots=True)
class RerankScore:
    """Relevance of the text at ``index`` (in the list the caller passed) to the query."""

    index: int
    score: float


@dataclass(frozen=True, slots=True)
class HealthStatus:
    name: str
    ok: bool
    detail: str = ""


@dataclass(frozen=True, slots=True)
class IndexRecord:
    """One physical chunk collection behind the store's alias and what it records about itself:
    the embedding model and dimension its vectors were built with, and its schema version."""

    name: str
    embedding_model: str
    dimensions: int
    schema_version: int | None

    def built_for(self, embedding_model: str, dimensions: int) -> bool:
        return (not embedding_model or self.embedding_model == embedding_model) and (
            not dimensions or self.dimensions == dimensions
        )


@dataclass(frozen=True, slots=True)
class StoredChunk:
    """One stored object of a physical collection as a reindex copies it: its id, its properties
    exactly as stored (compared between passes and written back unchanged) and the chunk they
    describe (what is re-embedded)."""

    uuid: str
    properties: dict[str, Any]
    chunk: Chunk
